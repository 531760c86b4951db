"""Shared by tests/test_site.py and tests/test_html_export.py: Chromium with every request off the
machine refused or answered from files here, a static file server on 127.0.0.1, and the explorer's
slider driven with the keyboard."""

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
RUN_FLAG = "SITE_TESTS"
STEP_MS = 20_000


def skip_unless_asked():
    """These tests build the site (or an export) first: they run under `make test-site`, not `make test`."""
    if os.environ.get(RUN_FLAG) != "1":
        pytest.skip(f"the course-site tests run with `make test-site` ({RUN_FLAG}=1)", allow_module_level=True)


def find_chromium():
    named = os.environ.get("CHROMIUM")
    for candidate in ([shutil.which(named)] if named else ["/usr/bin/chromium", shutil.which("chromium")]):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = "Chromium is not installed (apt-get install chromium, or CHROMIUM=/path/to/chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true, so the site tests must run: {message}", pytrace=False)
    pytest.skip(message)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class StaticServer:
    """A folder served on 127.0.0.1 from a thread of this process; stop() ends it."""

    def __init__(self, folder):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class OffMachine:
    """Every request to another host: answered from a local file where `served` maps it, else refused.
    Both kinds are recorded, with the URL."""

    def __init__(self, served=()):
        self.served = list(served)  # (compiled regex on the URL, function match -> Path)
        self.refused, self.answered = [], []

    def __call__(self, route):
        url = route.request.url
        if re.match(r"^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/", url) or url.startswith(("data:", "blob:")):
            route.continue_()
            return
        for pattern, to_path in self.served:
            match = pattern.match(url)
            if match and to_path(match).is_file():
                path = to_path(match)
                self.answered.append(url)
                content_type = "text/css" if path.suffix == ".css" else "application/javascript"
                route.fulfill(status=200, body=path.read_bytes(), content_type=content_type,
                              headers={"Access-Control-Allow-Origin": "*"})
                return
        self.refused.append(url)
        route.abort()


def open_browser(playwright, chromium):
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)


def new_page(browser, off_machine, viewport=None):
    """A page in a fresh context with `off_machine` routing; its console errors collect in page.errors."""
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    context.route("**/*", off_machine)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda message: page.errors.append(f"console.{message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(f"page error: {error}"))
    page.on("response", lambda response: page.errors.append(f"HTTP {response.status}: {response.url}")
            if response.status >= 400 else None)
    return page


# The explorer's picture (explorer/picture.js) and the rank slider in the same cell output.
EXPLORER_OUTPUT_JS = """() => {
  const canvas = document.querySelector('canvas.svd-picture-canvas[data-rank]');
  if (!canvas) return null;
  let scope = canvas.parentElement;
  while (scope && !scope.querySelector('.noUi-handle')) scope = scope.parentElement;
  const handle = scope && [...scope.querySelectorAll('.noUi-handle')].find((h) => h.offsetParent !== null);
  return handle ? { rank: canvas.dataset.rank, value: handle.getAttribute('aria-valuenow') } : null;
}"""


def press_on_slider(page, key):
    """Focus the explorer's visible rank slider handle and press `key`; return data-rank before."""
    page.wait_for_function(EXPLORER_OUTPUT_JS, timeout=STEP_MS)
    before = page.evaluate(EXPLORER_OUTPUT_JS)
    page.evaluate("""() => {
      const canvas = document.querySelector('canvas.svd-picture-canvas[data-rank]');
      let scope = canvas.parentElement;
      while (scope && !scope.querySelector('.noUi-handle')) scope = scope.parentElement;
      const handle = [...scope.querySelectorAll('.noUi-handle')].find((h) => h.offsetParent !== null);
      handle.scrollIntoView({ block: 'center' });
      handle.focus();
    }""")
    page.keyboard.press(key)
    return before


def wait_for_rank(page, rank):
    page.wait_for_function("(rank) => document.querySelector('canvas.svd-picture-canvas').dataset.rank === rank",
                           arg=str(rank), timeout=STEP_MS)


def readouts_note(page):
    """What the explorer says about its readouts, once it says that they need the kernel."""
    page.wait_for_function("() => /need/.test(document.querySelector('.svd-picture-readouts')?.textContent || '')",
                           timeout=STEP_MS)
    return page.inner_text(".svd-picture-readouts")
