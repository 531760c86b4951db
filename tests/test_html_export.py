"""An HTML export of the executed 06 (`jupyter nbconvert --to html`) with no kernel, in Chromium.

The export carries the widget state saved in the notebook (the factors included) and loads
require.js, the widget manager and anywidget's front end from CDNs. Here every request off the
machine is answered from the same npm packages the course site vendors (site/package-lock.json),
or refused and recorded. ArrowRight on the rank slider must repaint the picture (the canvas's
data-rank), and the readouts must say they need the kernel. Run with `make test-site`.
"""

import importlib.util
import re
import subprocess
import sys
import time

import pytest
from site_support import (
    ROOT,
    OffMachine,
    StaticServer,
    find_chromium,
    new_page,
    open_browser,
    press_on_slider,
    readouts_note,
    skip_unless_asked,
    wait_for_rank,
)

skip_unless_asked()

NODE_MODULES = ROOT / "site" / "node_modules"
NOTEBOOK = ROOT / "notebooks" / "06_explorer.ipynb"
# The export's CDN URLs -> the vendored files (the version in the URL is a range such as @* or @~0.11.*).
SERVED = [
    (re.compile(r"^https://cdnjs\.cloudflare\.com/ajax/libs/require\.js/[^/]+/require(\.min)?\.js$"),
     lambda m: NODE_MODULES / "requirejs" / "require.js"),
    (re.compile(r"^https://(unpkg\.com|cdn\.jsdelivr\.net/npm)/@jupyter-widgets/html-manager@[^/]+/dist/([\w.-]+)$"),
     lambda m: NODE_MODULES / "@jupyter-widgets" / "html-manager" / "dist" / m.group(2)),
    (re.compile(r"^https://(unpkg\.com|cdn\.jsdelivr\.net/npm)/anywidget@[^/]+/dist/index\.js$"),
     lambda m: NODE_MODULES / "anywidget" / "dist" / "index.js"),
]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """06 exported to HTML in a temporary folder, and site/node_modules in place (npm ci)."""
    spec = importlib.util.spec_from_file_location("site_build", ROOT / "site" / "build.py")
    site_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site_build)
    site_build.npm_install()
    out = tmp_path_factory.mktemp("export")
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", "--output-dir", str(out), str(NOTEBOOK)],
                   check=True, capture_output=True)
    page = out / "06_explorer.html"
    assert "application/vnd.jupyter.widget-state+json" in page.read_text(encoding="utf-8")
    return out


def test_export_slider_repaints_without_kernel(export, browser_report):
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    server = StaticServer(export)
    off_machine = OffMachine(SERVED)
    try:
        with sync_playwright() as playwright:
            browser = open_browser(playwright, chromium)
            page = new_page(browser, off_machine)
            page.goto(server.url + "06_explorer.html", wait_until="load", timeout=60_000)
            start = time.perf_counter()
            before = press_on_slider(page, "ArrowRight")
            first_picture_s = time.perf_counter() - start
            rank = int(before["rank"]) + 1
            wait_for_rank(page, rank)
            note = readouts_note(page)
            browser.close()
    finally:
        server.stop()
    assert "need the kernel" in note, note
    assert any("anywidget" in url for url in off_machine.answered), off_machine.answered
    refused = sorted(set(off_machine.refused))
    browser_report.append(f"html export of 06: ArrowRight repainted rank {before['rank']} -> {rank} "
                          f"(explorer shown {first_picture_s:.1f} s after load); readouts: {note!r}")
    browser_report.append(f"html export of 06: served from the vendored npm packages: {sorted(set(off_machine.answered))}")
    browser_report.append(f"html export of 06: refused: {refused}")
    # Only MathJax (which the export loads from a CDN and the explorer does not need) may be refused.
    assert all("mathjax" in url.lower() for url in refused), refused
