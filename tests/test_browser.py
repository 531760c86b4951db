"""Every notebook run in JupyterLab in headless Chromium, and the rank slider in Lab and in Voila.

What a student would see, checked in a real browser (DESIGN.md, check 4):

* each notebook in notebooks/ opens in JupyterLab and runs top to bottom (Run All) with no
  error output, no "Error displaying widget", and no error in the browser console;
* where a notebook shows a slider next to a picture (the rank explorer), moving the slider with
  the keyboard (ArrowRight, End, Home, PageUp) and the mouse (a click on the track, a drag of the
  handle) changes the picture, and the readout shows the new rank;
* the time from a key press to the new picture painted (median of 20 presses: keydown, then the
  picture's data-rank changing, then the next animation frame, all timed inside the page), for
  the notebooks' explorers and for 0.26, 1 and 4-megapixel images, printed at the end of the run
  and written to screenshots/latency.txt, with the kernel's share of it;
* the picture's two paths (explorer/picture.js): the default run checks and prints the path
  the page's guard picks (WebGL2 on a hardware renderer, the JS running sum on a software one
  such as this Chromium's SwiftShader, or with no WebGL2); WebGL2 forced on (picture.paint_with,
  test only) agrees with the kernel within one level, grey and colour, jumps, works with no
  kernel, and falls back to JS when its context is lost;
* the explorer also works as an app in Voila (notebooks/06_explorer.ipynb);
* uploads through the real file chooser, in Lab and in Voila: a file that is not an image, and
  9, 12 and 30 MB files made by the test, each showing its own name on screen (picture status or
  error) and leaving a working slider, with the time from file chosen to picture for a 12 MP and a
  24 MP JPEG; and on a server left at Tornado's default 10 MiB message limit, and on one whose
  limit is below the upload's 1 MiB pieces, where the student must get a clear message, never
  silence.

A full-page screenshot of every notebook after running, and of the Voila app, goes to screenshots/
(git-ignored).

JupyterLab and Voila serve a temporary copy of notebooks/ with temporary Jupyter config, data,
runtime and settings folders, so the tests never save into the committed notebooks and do not
depend on your own Jupyter setup. Lab's news, update checks and autosave are turned off. Like
`make lab`, the servers read the repo's jupyter_config/ (JUPYTER_CONFIG_PATH) and run with the
machine's default thread count: OMP_NUM_THREADS and friends are removed from their environment.
SVD_BASELINE_HELPERS=/path/to/an/old/helpers.py also times that file's RankExplorer in the same
run, side by side (the old PNG picture, for before/after figures).

Needs Chromium: Debian's `chromium` package (`sudo apt-get install chromium`), or any Chromium
named by CHROMIUM=/path/to/chromium. Without it these tests skip locally, and fail when CI=true.
SVD_BROWSER_NOTEBOOKS=/some/folder runs the notebook tests on the notebooks in another folder (used
to check that the tests catch a broken widget). Run only these tests with
`pytest tests/test_browser.py -q`.
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = Path(os.environ.get("SVD_BROWSER_NOTEBOOKS") or ROOT / "notebooks").resolve()
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
EXPLORER_NOTEBOOK = "06_explorer.ipynb"
SCREENSHOTS = ROOT / "screenshots"
LATENCY_FILE = SCREENSHOTS / "latency.txt"

# --no-sandbox: the tests may run as root (containers, CI). --enable-unsafe-swiftshader: WebGL2
# on Chromium's software renderer where there is no GPU (Playwright passes it too; newer Chromium
# gives no WebGL without it), so that the picture's WebGL2 path can be tested (it paints with it
# when told to, and its guard picks the JS path there by default). The rest keep a headless
# Chromium off the network: without them it fills the log with failed background requests.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
MAX_SCREENSHOT_HEIGHT = 16000  # pixels; Chromium's limit for one capture is 16384

# Time limits for each step, in seconds. Every wait polls a condition; none is a fixed sleep.
SERVER_START_S = 60
OPEN_S = 60  # open a notebook and start its kernel
RUN_ALL_S = 120  # run one notebook top to bottom
STEP_S = 15  # one slider move, or one browser action
LATENCY_PRESSES = 20
# DESIGN.md (issue 21): key press to the next frame after the new picture is painted, median:
# one 60 Hz frame, 17 ms, at 1 and 4 megapixels, grey and colour, on any server; the page
# rebuilds the picture from the factors. The smallest size is held to the same target.
LATENCY_SIDES = {512: 17, 1000: 17, 2048: 17}  # square image side -> target in ms
JUMP_TARGET_MS = 50  # Home / End: rank 1 <-> the largest rank
JUMP_PRESSES = 6
TARGET_LATENCY_MS = LATENCY_SIDES[1000]
# A median above this many times the target fails the test, so that only a broken or badly
# regressed slider fails, never a busy machine; the real medians are printed either way.
LATENCY_LIMIT_FACTOR = float(os.environ.get("SVD_LATENCY_LIMIT_FACTOR", 10))
UPLOAD_S = 120  # file chosen to picture or message, on a loaded two-core machine
FEEDBACK_LIMIT_MS = 1000  # file chosen to its name on screen: target 100 ms, 10x for a busy machine

# Console errors that are not about the notebooks, each identified precisely. None are needed
# so far: Lab's news and update checks are turned off in its settings, and requests to other
# hosts (Voila's lab template links Font Awesome from cdn.jsdelivr.net) are answered with an
# empty body so that the tests never depend on the internet; those are listed in the report.
IGNORED_CONSOLE_ERRORS: list[re.Pattern] = []

# Inside a notebook's outputs, text that means a widget or a cell failed.
# "Loading widget..." is Lab's placeholder for a widget view whose model never arrives.
FAILURE_TEXT = re.compile(
    r"Error displaying widget|model not found|Loading widget\.\.\.|Traceback \(most recent call last\)"
)


def _ci():
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _cannot_run(reason):
    message = (
        f"{reason}. Install Chromium with `sudo apt-get install chromium`, or set CHROMIUM=/path/to/chromium."
    )
    if _ci():
        pytest.fail(f"CI=true, so the browser tests must run: {message}", pytrace=False)
    pytest.skip(message)


def find_chromium():
    """The Chromium to use and None, or None and why there is none."""
    named = os.environ.get("CHROMIUM")
    if named:
        path = shutil.which(named)
        if path is None:
            return None, f"CHROMIUM={named} is not an executable file"
        return path, None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate, None
    return None, "Chromium is not installed (looked for /usr/bin/chromium and chromium on PATH)"


# ---------------------------------------------------------------------------
# Servers: JupyterLab and Voila, each in its own process group
# ---------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    url: str
    token: str
    log: Path

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def _answers(server, ready_path):
    """Whether the server is up: `ready_path` answers 200, or (None) the port accepts a connection."""
    try:
        if ready_path is None:
            with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=2):
                return True
        return _get(server.url + ready_path)[0] == 200
    except OSError:
        return False


def start_server(name, argv, *, cwd, env, port, token, log, ready_path):
    """Start a server in a new session and wait until it answers (see `_answers`)."""
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, process, f"http://127.0.0.1:{port}", token, log)
    deadline = time.monotonic() + SERVER_START_S
    try:
        while not _answers(server, ready_path):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer within {SERVER_START_S} s:\n{server.log_tail()}")
            time.sleep(0.2)
        return server
    except BaseException:
        stop_server(server)
        raise


def stop_server(server):
    """Stop the server, its process group, and its kernels (which run in sessions of their own).

    TERM first (the server shuts its kernels down), then KILL whatever is left.
    """
    import psutil  # installed with ipykernel

    process = server.process
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        children = []
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    try:  # anything left in the group (the server leads it, so the group id is its pid)
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:  # psutil checks that the pid still names the same process
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


def shutdown_kernels(server):
    """Ask the server to shut down every running kernel (Lab keeps them after a tab closes)."""
    headers = {"Authorization": f"token {server.token}"}
    try:
        request = urllib.request.Request(server.url + "/api/kernels", headers=headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            kernels = json.load(response)
        for kernel in kernels:
            request = urllib.request.Request(
                f"{server.url}/api/kernels/{kernel['id']}", method="DELETE", headers=headers
            )
            urllib.request.urlopen(request, timeout=10).close()
    except OSError:
        pass  # the server is going away anyway; stop_server ends it


def jupyter_env(root, repo_config=True):
    """Environment with temporary Jupyter and IPython folders under `root`, as `make lab` runs:
    the repo's jupyter_config/ (unless repo_config=False: a server left at its defaults) and
    no thread pin, so kernels use the machine's default number of threads."""
    env = dict(os.environ)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(variable, None)
    for variable, folder in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),  # lab extensions still come from sys.prefix/share/jupyter
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        path = root / folder
        path.mkdir(exist_ok=True)
        env[variable] = str(path)
    env.pop("JUPYTER_CONFIG_PATH", None)
    if repo_config:
        env["JUPYTER_CONFIG_PATH"] = str(ROOT / "jupyter_config")
    env["PYTHONUNBUFFERED"] = "1"
    return env


LAB_SETTINGS = {
    # Attach every cell to the page, so that all outputs can be checked and captured.
    # No blank space after the last cell, so that a tall enough window shows the whole notebook.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "scrollPastEnd": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}


@pytest.fixture(scope="module")
def chromium():
    path, problem = find_chromium()
    if problem:
        _cannot_run(problem)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _cannot_run("Playwright is not installed (python -m pip install -r requirements-test.txt)")
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory, chromium):
    """A temporary root that Lab and Voila serve: a copy of the notebooks, and media/."""
    root = tmp_path_factory.mktemp("browser")
    serve = root / "serve"
    shutil.copytree(
        NOTEBOOK_DIR, serve / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    )
    (serve / "media").symlink_to(ROOT / "media")
    return root


def launch_lab(served, label="lab", repo_config=True, extra_argv=()):
    """Start JupyterLab on the served folder, with its own Jupyter folders under served/label."""
    root = served / label
    root.mkdir(exist_ok=True)
    env = jupyter_env(root, repo_config=repo_config)
    token = secrets.token_hex(16)
    (root / "config" / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {"allow_root": True, "terminals_enabled": False, "port_retries": 0},
                "IdentityProvider": {"token": token},
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
                    "extension_manager": "readonly",
                },
            }
        )
    )
    settings = root / "lab-settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = _free_port()
    argv = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.root_dir={served / 'serve'}", "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
        *extra_argv,
    ]  # fmt: skip
    return start_server(
        f"JupyterLab ({label})", argv, cwd=served / "serve", env=env, port=port, token=token,
        log=root / "lab.log", ready_path=f"/api/status?token={token}",
    )  # fmt: skip


@pytest.fixture(scope="module")
def lab(served):
    """JupyterLab as `make lab` runs it: the repo's jupyter_config/, no thread pin."""
    server = launch_lab(served)
    try:
        yield server
    finally:
        shutdown_kernels(server)
        stop_server(server)


@pytest.fixture(scope="module")
def voila(served):
    """Voila serving the explorer notebook from the same temporary root."""
    root = served
    if not (root / "serve" / "notebooks" / EXPLORER_NOTEBOOK).exists():
        pytest.fail(f"{EXPLORER_NOTEBOOK} is missing from {NOTEBOOK_DIR}", pytrace=False)
    env = jupyter_env(root)
    token = secrets.token_hex(16)
    port = _free_port()
    argv = [
        sys.executable, "-m", "voila", f"notebooks/{EXPLORER_NOTEBOOK}", "--no-browser",
        f"--port={port}", "--Voila.ip=127.0.0.1", f"--Voila.token={token}", "--Voila.port_retries=0",
        "--VoilaConfiguration.show_tracebacks=True",
    ]  # fmt: skip
    server = start_server(
        "Voila", argv, cwd=root / "serve", env=env, port=port, token=token,
        log=root / "voila.log", ready_path=None,
    )  # fmt: skip
    try:
        yield server
    finally:
        # Voila has no kernel API to shut its kernels down with, and on TERM it waits for each
        # to end politely (about 10 s): end them first, as stop_kernels does.
        import psutil

        try:
            kernels = [child for child in psutil.Process(server.process.pid).children(recursive=True)
                       if "ipykernel" in " ".join(child.cmdline())]
        except psutil.Error:
            kernels = []
        for kernel in kernels:
            try:
                kernel.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(kernels, timeout=10)
        stop_server(server)


# ---------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(chromium, browser_report):
    from playwright.sync_api import sync_playwright

    start = time.monotonic()
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        browser_report.append(
            f"browser tests: {time.monotonic() - start:.0f} s with Chromium running ({chromium})"
        )


@dataclass
class Tab:
    page: object
    console_errors: list = field(default_factory=list)

    def assert_no_console_errors(self):
        errors = [e for e in self.console_errors if not any(p.search(e) for p in IGNORED_CONSOLE_ERRORS)]
        assert not errors, "the browser console logged errors:\n" + "\n".join(errors)


# Requests that leave the machine. The pattern is matched inside the browser driver, so local
# requests do not pay for a round trip to Python.
NOT_LOCAL = re.compile(r"^(https?|wss?)://(?!127\.0\.0\.1[:/])")


@pytest.fixture(scope="module")
def external_requests():
    """Every request to a host other than the local servers, answered with an empty body."""
    return set()


@pytest.fixture
def tab(browser, external_requests):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(STEP_S * 1000)
    context.add_init_script(PAGE_HELPERS)
    try:
        page = context.new_page()
        tab = Tab(page)

        def on_console(message):
            if message.type == "error":
                where = message.location.get("url", "") if message.location else ""
                tab.console_errors.append(f"console error: {message.text} ({where})")

        def answer_empty(route):
            external_requests.add(route.request.url)
            route.fulfill(status=200, body="")

        page.on("console", on_console)
        page.on("pageerror", lambda error: tab.console_errors.append(f"page error: {error}"))
        page.route(NOT_LOCAL, answer_empty)
        yield tab
    finally:
        context.close()


# The explorer's picture: its canvas (explorer/picture.js), or an image widget (other sliders).
PICTURE = "canvas.svd-picture-canvas, img.widget-image"

# Functions installed in every page as window.__svd, used by the steps below.
PAGE_HELPERS = r"""
window.__svd = {
  panel(path) {
    const app = window.jupyterapp;
    if (!app || !app.shell) return null;
    for (const w of app.shell.widgets('main')) {
      if (w.context && w.context.path === path && w.content && w.sessionContext) return w;
    }
    return null;
  },
  kernelIdle(path) {
    const w = this.panel(path);
    const session = w && w.sessionContext.session;
    const kernel = session && session.kernel;
    return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
  },
  async runAll(path) {
    const app = window.jupyterapp;
    const w = this.panel(path);
    app.shell.activateById(w.id);
    app.shell.collapseLeft();  // more room for the notebook
    await w.context.ready;
    await w.sessionContext.ready;
    await app.commands.execute('notebook:clear-all-cell-outputs');
    this.run = {finished: false, result: null, error: null};
    app.commands.execute('notebook:run-all-cells').then(
      (result) => { this.run.finished = true; this.run.result = result; },
      (error) => { this.run.finished = true; this.run.error = String(error); });
  },
  runState(path) {
    const w = this.panel(path);
    const cells = w.content.widgets.filter(
      (c) => c.model.type === 'code' && c.model.sharedModel.getSource().trim() !== '');
    const running = [...w.node.querySelectorAll('.jp-InputPrompt')]
      .filter((p) => p.textContent.includes('*')).length;
    const pending = cells.filter((c) => c.model.executionCount === null).length;
    const failed = cells.filter((c) => c.model.outputs.toJSON().some((o) => o.output_type === 'error')).length;
    const idle = this.kernelIdle(path);
    const done = this.run.finished && idle && running === 0 && (pending === 0 || failed > 0);
    return {done, finished: this.run.finished, idle, running, pending, failed, cells: cells.length,
            runError: this.run.error};
  },
  problems(root, path) {
    // Error outputs, tracebacks and widget errors, from the notebook model and from the page.
    const found = [];
    const w = path ? this.panel(path) : null;
    if (w) {
      w.content.widgets.forEach((cell, i) => {
        if (cell.model.type !== 'code') return;
        for (const o of cell.model.outputs.toJSON()) {
          if (o.output_type === 'error') found.push(`cell ${i + 1}: ${o.ename}: ${o.evalue}`);
          const text = Array.isArray(o.text) ? o.text.join('') : (o.text || '');
          if (o.output_type === 'stream' && o.name === 'stderr' && /Traceback/.test(text)) {
            found.push(`cell ${i + 1}: a traceback on stderr: ${text.slice(0, 500)}`);
          }
        }
      });
      root = w.node;
    }
    const failure = new RegExp(%FAILURE_TEXT%);
    for (const el of root.querySelectorAll(
        '.jp-OutputArea-output, .jupyter-widgets-error-widget, .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')) {
      const text = el.textContent;
      if (failure.test(text) || el.matches('.jupyter-widgets-error-widget')) {
        found.push('on the page: ' + text.trim().replace(/\s+/g, ' ').slice(0, 500));
      }
    }
    for (const el of root.querySelectorAll('.jp-OutputArea-output')) {
      // A widget whose model the page cannot find renders as an empty box, with no error text.
      // (Widget views are the outputs without a data-mime-type.)
      if (!el.dataset.mimeType && el.children.length === 0 && el.textContent.trim() === '') {
        found.push('a widget output that shows nothing (its model was not found?)');
      }
    }
    return [...new Set(found)];
  },
  settled(root) {
    // True once the outputs, widgets and pictures stop changing for half a second, every
    // picture has loaded, and no widget says "Loading widget..." (widget views render after
    // the kernel is idle). A placeholder still there after 5 s stays: problems() reports it.
    if (typeof root === 'string') root = this.panel(root).node;
    const imgs = [...root.querySelectorAll('img')];
    const loading = [...root.querySelectorAll('.jp-OutputArea-output')]
      .filter((el) => el.textContent.includes('Loading widget...')).length;
    const signature = [root.querySelectorAll('.jp-OutputArea-output').length,
      root.querySelectorAll('.jupyter-widgets').length, imgs.length,
      imgs.filter((i) => i.complete).length, loading].join(':');
    const now = performance.now();
    if (signature !== this.signature) { this.signature = signature; this.since = now; return false; }
    const quiet = now - this.since;
    return imgs.every((i) => i.complete) && (quiet > 500 && loading === 0 || quiet > 5000);
  },
  scroller(root) {
    // The element that scrolls the most: the page itself, or a panel inside it.
    let best = document.scrollingElement;
    let most = best.scrollHeight - best.clientHeight;
    for (const el of root.querySelectorAll('*')) {
      const extra = el.scrollHeight - el.clientHeight;
      if (extra > most && /auto|scroll/.test(getComputedStyle(el).overflowY)) { best = el; most = extra; }
    }
    return best;
  },
  readout(scope) {
    // The text a student reads around the slider: not the slider's own label and number, not
    // buttons or menus (fixed labels such as quick ranks), not the cell's prompt. Text nodes are
    // joined with spaces so that numbers in neighbouring elements do not run together.
    const copy = scope.cloneNode(true);
    copy.querySelectorAll('.widget-slider, .jupyter-widget-slider, img, canvas, script, style, button, select, '
      + '.jp-OutputPrompt, .jp-InputPrompt, .svd-picture-bar, .svd-upload').forEach((el) => el.remove());
    const parts = [];
    const walker = document.createTreeWalker(copy, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) parts.push(walker.currentNode.nodeValue);
    return parts.join(' ').replace(/\s+/g, ' ').trim();
  },
  sliderState(scope, index = 0) {
    const handle = scope.querySelectorAll('.noUi-handle')[index];  // the first slider unless told
    return {
      value: Math.round(parseFloat(handle.getAttribute('aria-valuenow'))),
      min: Math.round(parseFloat(handle.getAttribute('aria-valuemin'))),
      max: Math.round(parseFloat(handle.getAttribute('aria-valuemax'))),
      srcs: [...scope.querySelectorAll(%PICTURE%)].map((p) => this.pictureId(p)),
      readout: this.readout(scope),
    };
  },
  pictureId(picture) {
    // What identifies the picture on screen: an image's src, or how often a canvas was painted.
    return picture.tagName === 'CANVAS' ? `painted ${picture.dataset.painted} rank ${picture.dataset.rank}`
      : picture.src;
  },
  moved(scope, before, expected) {
    // The slider shows the expected value (or any new value when expected is null), a
    // picture (if there is one) has a new src, and the readout changed and names the new value.
    const now = this.sliderState(scope);
    if (expected === null ? now.value === before.value : now.value !== expected) return false;
    if (before.srcs.length && !now.srcs.some((src, i) => src !== before.srcs[i])) return false;
    if (now.readout === before.readout) return false;
    if (!new RegExp(`(^|[^\\d.])${now.value}(?![\\d]|\\.\\d)`).test(now.readout)) return false;
    return [now.value];  // an array, so that a value of 0 still counts as done
  },
  startLatency(scope) {
    // Time from keydown to the new picture and the next animation frame after it (when it is
    // drawn). A canvas picture (explorer/picture.js) sets data-rank right after painting; an
    // image widget changes its src, then loads. The picture is the first one in the explorer;
    // others (a spectrum) may change too but are not timed.
    const lat = this.latency = {t0: null, tSrc: null, samples: []};
    const picture = scope.querySelector(%PICTURE%);
    lat.picture = picture;
    const sample = (t0, tSrc, tLoad) => requestAnimationFrame(() => {
      const canvas = picture.tagName === 'CANVAS';
      lat.samples.push({src: tSrc - t0, load: tLoad - t0, frame: performance.now() - t0,
        paint: canvas ? parseFloat(picture.dataset.paintMs) : null,
        size: canvas ? [picture.width, picture.height] : [picture.naturalWidth, picture.naturalHeight]});
    });
    if (picture.tagName === 'CANVAS') {
      lat.observer = new MutationObserver(() => {
        if (lat.t0 === null) return;
        const t0 = lat.t0, t = performance.now();
        lat.t0 = null;
        sample(t0, t, t);
      });
      lat.observer.observe(picture, {attributes: true, attributeFilter: ['data-rank']});
    } else {
      lat.observer = new MutationObserver(() => {
        if (lat.t0 !== null && lat.tSrc === null) lat.tSrc = performance.now();
      });
      lat.observer.observe(picture, {attributes: true, attributeFilter: ['src']});
      lat.onLoad = () => {
        if (lat.t0 === null || lat.tSrc === null) return;
        const t0 = lat.t0, tSrc = lat.tSrc;
        lat.t0 = null;
        sample(t0, tSrc, performance.now());
      };
      picture.addEventListener('load', lat.onLoad);
    }
    lat.onKey = () => { lat.t0 = performance.now(); lat.tSrc = null; };
    scope.addEventListener('keydown', lat.onKey, true);
  },
  watchUpload(scope) {
    // Times, from the moment a file is chosen (the file input's change event, caught before the
    // upload control sees it): its name on screen, the first picture painted, the final message.
    const status = scope.querySelector('.svd-upload-status');
    const canvas = scope.querySelector('canvas.svd-picture-canvas');
    const w = this.upload = {t0: null};
    scope.addEventListener('change', (event) => {
      if (event.target.type !== 'file' || !event.target.files.length) return;
      const file = event.target.files[0];
      Object.assign(w, {t0: performance.now(), name: file.name, tName: null, tDecode: null, tPaint: null,
                        tFinal: null, texts: []});
    }, true);
    new MutationObserver(() => {
      if (w.t0 === null || w.tFinal !== null) return;
      const t = performance.now() - w.t0, text = status.textContent, state = status.dataset.state;
      if (w.texts[w.texts.length - 1] !== text) w.texts.push(text);
      if (w.tName === null && text.includes(w.name)) w.tName = t;
      if (w.tDecode === null && text.includes('decoding')) w.tDecode = t;  // all of the file arrived
      if ((state === 'done' || state === 'error') && text.includes(w.name)) {
        w.tFinal = t; w.state = state; w.text = text;
      }
    }).observe(status, {childList: true, characterData: true, subtree: true, attributes: true});
    new MutationObserver(() => {
      if (w.t0 !== null && w.tPaint === null) w.tPaint = performance.now() - w.t0;
    }).observe(canvas, {attributes: true, attributeFilter: ['data-painted']});
  },
  uploadResult(name) {
    const w = this.upload;
    if (!w || w.name !== name || w.tFinal === null) return null;
    return {state: w.state, text: w.text, tName: w.tName, tDecode: w.tDecode, tPaint: w.tPaint,
            tFinal: w.tFinal, texts: w.texts};
  },
  stopLatency(scope) {
    this.latency.observer.disconnect();
    if (this.latency.onLoad) this.latency.picture.removeEventListener('load', this.latency.onLoad);
    scope.removeEventListener('keydown', this.latency.onKey, true);
    return this.latency.samples;
  },
};
""".replace("%FAILURE_TEXT%", json.dumps(FAILURE_TEXT.pattern)).replace("%PICTURE%", json.dumps(PICTURE))


def wait_for(page, expression, arg=None, *, timeout_s, what, state=None):
    """Wait until the page expression is truthy; on timeout, fail saying what and where it got."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return page.wait_for_function(expression, arg=arg, timeout=timeout_s * 1000, polling=50).json_value()
    except PlaywrightTimeout:
        pass
    detail = ""
    if state is not None:
        try:
            detail = f"\nstate: {page.evaluate(state[0], state[1])}"
        except Exception as err:  # the page itself may be broken; say so
            detail = f"\n(state unavailable: {err})"
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}{detail}", pytrace=False)


LAID_OUT = """async (h) => {
  // Wait for the new window size (at most ~300 frames), then three frames for Lab's layout.
  for (let i = 0; i < 300 && window.innerHeight !== h; i++) await new Promise((r) => requestAnimationFrame(r));
  for (let i = 0; i < 3; i++) await new Promise((r) => requestAnimationFrame(r));
}"""


def save_screenshot(page, name, scroller):
    """Full-page PNG in screenshots/: grow the window until the `scroller` element fits.

    Best effort: content sized relative to the window (like 80vh) grows with it, so after a
    few rounds the capture is taken as it is.
    """
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    overflow = f"() => {{ const el = {scroller}; return el.scrollHeight - el.clientHeight; }}"
    height = VIEWPORT["height"]
    try:
        for _ in range(4):
            extra = page.evaluate(overflow)
            if extra <= 2 or height >= MAX_SCREENSHOT_HEIGHT:
                break
            height = min(height + extra, MAX_SCREENSHOT_HEIGHT)
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            page.evaluate(LAID_OUT, height)
        page.screenshot(path=path)
    finally:
        page.set_viewport_size(VIEWPORT)
        page.evaluate(LAID_OUT, VIEWPORT["height"])
    return path


# ---------------------------------------------------------------------------
# The slider
# ---------------------------------------------------------------------------

# A cell's output area (not one nested inside an Output widget): a slider's readout may be a
# separate output of the same cell, as in display(slider, readout).
CELL_OUTPUTS = ".jp-OutputArea:not(.jp-OutputArea .jp-OutputArea)"
SLIDER = ".widget-slider, .jupyter-widget-slider"


def slider_outputs(page, root, with_picture=False):
    """The cell outputs under `root` that show a slider; with_picture: and an image widget."""
    outputs = page.locator(f"{root} {CELL_OUTPUTS}").filter(has=page.locator(SLIDER))
    if with_picture:
        outputs = outputs.filter(has=page.locator(PICTURE))
    return outputs


def slider_move(page, scope, label, action, expected=None):
    """Do `action`, then wait until the picture and the readout show the slider's new value."""
    element = scope.element_handle()
    # noUiSlider ignores input for 300 ms after a click on the track (its tap animation).
    wait_for(
        page,
        "(s) => !s.querySelector('.noUi-target.noUi-state-tap, .noUi-target.noUi-state-drag')",
        element,
        timeout_s=STEP_S,
        what=f"{label}: the slider to be ready for input",
    )
    before = page.evaluate("(s) => __svd.sliderState(s)", element)
    if callable(expected):
        expected = expected(before)
    action()
    [value] = wait_for(
        page,
        "([s, before, expected]) => __svd.moved(s, before, expected)",
        [element, before, expected],
        timeout_s=STEP_S,
        what=f"{label}: a new picture and a readout showing the new rank (expected {expected})",
        state=("([s]) => __svd.sliderState(s)", [element]),
    )
    return before["value"], value


def check_slider(page, scope, name):
    """Keyboard and mouse moves, each changing the picture and the readout. Returns what it did."""
    handle = scope.locator(".noUi-handle").first
    track = scope.locator(".noUi-base").first
    track.scroll_into_view_if_needed()
    state = page.evaluate("(s) => __svd.sliderState(s)", scope.element_handle())
    low, high = state["min"], state["max"]
    assert high - low >= 10, f"{name}: the slider range {low}..{high} is too small to test"
    moves = []

    def key(key_name):
        def press():
            handle.focus()
            page.keyboard.press(key_name)

        return press

    # Start inside the range, so that every key below makes a real move.
    if state["value"] == low:
        moves.append(("PageUp", *slider_move(page, scope, f"{name}: PageUp", key("PageUp"))))
    elif state["value"] == high:
        moves.append(("PageDown", *slider_move(page, scope, f"{name}: PageDown", key("PageDown"))))
    keyboard = [
        ("ArrowRight", lambda b: b["value"] + 1),
        ("End", high),
        ("Home", low),
        ("PageUp", lambda b: None),  # noUiSlider moves a page of steps; any higher value will do
    ]
    for key_name, expected in keyboard:
        before, after = slider_move(page, scope, f"{name}: {key_name}", key(key_name), expected)
        if key_name == "PageUp":
            assert after > before, f"{name}: PageUp moved the rank from {before} to {after}"
        moves.append((key_name, before, after))

    def near(fraction):
        return low + fraction * (high - low)

    def click_track():
        track.scroll_into_view_if_needed()
        box = track.bounding_box()
        page.mouse.click(box["x"] + 0.25 * box["width"], box["y"] + box["height"] / 2)

    def drag_handle():
        track.scroll_into_view_if_needed()
        hbox = handle.bounding_box()
        box = track.bounding_box()
        page.mouse.move(hbox["x"] + hbox["width"] / 2, hbox["y"] + hbox["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2, steps=12)
        page.mouse.up()

    tolerance = 0.03 * (high - low) + 1
    for label, action, fraction in (("click on the track", click_track, 0.25), ("drag", drag_handle, 0.75)):
        before, after = slider_move(page, scope, f"{name}: mouse {label}", action)
        assert abs(after - near(fraction)) <= tolerance, (
            f"{name}: mouse {label} to {fraction:.0%} of the track gave rank {after}, "
            f"expected about {near(fraction):.0f}"
        )
        moves.append((f"mouse {label}", before, after))
    return moves


def measure_latency(page, scope, name, kernel_idle=None, slider=0):
    """Median time from a key press to the new picture, over LATENCY_PRESSES presses of the
    arrow key on the `slider`-th slider in `scope` (the first one unless told)."""
    element = scope.element_handle()
    handle = scope.locator(".noUi-handle").nth(slider)
    state = page.evaluate("([s, i]) => __svd.sliderState(s, i)", [element, slider])
    step, key_name = (
        (1, "ArrowRight") if state["value"] + LATENCY_PRESSES <= state["max"] else (-1, "ArrowLeft")
    )
    handle.focus()
    page.evaluate("(s) => __svd.startLatency(s)", element)
    try:
        for press in range(1, LATENCY_PRESSES + 1):
            page.keyboard.press(key_name)
            target = state["value"] + press * step
            wait_for(
                page,
                "(n) => __svd.latency.samples.length >= n",
                press,
                timeout_s=STEP_S,
                what=f"{name}: the new picture after {key_name} press {press}",
            )
            # Let this move finish everywhere (readout, other pictures, kernel idle) before the next.
            wait_for(
                page,
                "([s, target, i]) => { const st = __svd.sliderState(s, i);"
                " return st.value === target"
                " && new RegExp(`(^|[^\\\\d.])${target}(?![\\\\d]|\\\\.\\\\d)`).test(st.readout); }",
                [element, target, slider],
                timeout_s=STEP_S,
                what=f"{name}: the readout to show rank {target}",
            )
            if kernel_idle:
                wait_for(page, kernel_idle[0], kernel_idle[1], timeout_s=STEP_S, what="the kernel to be idle")
    finally:
        samples = page.evaluate("(s) => __svd.stopLatency(s)", element)
    assert len(samples) == LATENCY_PRESSES
    width, height = samples[0]["size"]
    medians = {key: statistics.median(s[key] for s in samples) for key in ("src", "load", "frame")}
    medians["size"] = (width, height)
    if samples[0]["paint"] is not None:  # a canvas: painted when data-rank changes
        medians["paint"] = statistics.median(s["paint"] for s in samples)
        line = (
            f"{name}: painted at {width}x{height}, {len(samples)} presses of {key_name}: median key press "
            f"to painted (data-rank) {medians['load']:.0f} ms, to the next frame {medians['frame']:.0f} ms "
            f"(of which bytes to canvas {medians['paint']:.1f} ms)"
        )
    else:
        line = (
            f"{name}: {width}x{height} <img> ({width * height / 1e6:.2f} MP), {len(samples)} presses of "
            f"{key_name}: median key press to new src {medians['src']:.0f} ms, to picture loaded "
            f"{medians['load']:.0f} ms, to the next frame {medians['frame']:.0f} ms"
        )
    return line, medians


def measure_jumps(page, scope, name, path):
    """Median time from Home or End (rank 1 <-> the largest rank) to the new picture painted,
    over JUMP_PRESSES presses, each after the readouts caught up with the one before."""
    element = scope.element_handle()
    handle = scope.locator(".noUi-handle").first
    state = page.evaluate("(s) => __svd.sliderState(s)", element)
    # the JS path builds its partial sums in the background once it paints; WebGL2 needs none
    sums = wait_for(page, "(s) => { const c = s.querySelector('canvas.svd-picture-canvas');"
                    " return (c.dataset.path === 'webgl2' || c.dataset.sums === 'built')"
                    " && [c.dataset.path, c.dataset.sumsMs, c.dataset.spacing]; }", element,
                    timeout_s=STEP_S, what=f"{name}: the page to build its partial sums")
    handle.focus()
    page.evaluate("(s) => __svd.startLatency(s)", element)
    try:
        for press in range(1, JUMP_PRESSES + 1):
            key_name, target = ("End", state["max"]) if press % 2 else ("Home", state["min"])
            page.keyboard.press(key_name)
            wait_for(page, "(n) => __svd.latency.samples.length >= n", press, timeout_s=STEP_S,
                     what=f"{name}: the new picture after {key_name}")
            wait_for(page, "([s, t]) => __svd.sliderState(s).value === t"
                     " && new RegExp(`(^|[^\\d.])${t}(?![\\d]|\\.\\d)`).test(__svd.sliderState(s).readout)",
                     [element, target], timeout_s=STEP_S, what=f"{name}: the readout to show rank {target}")
            wait_for(page, "(p) => __svd.kernelIdle(p)", path, timeout_s=STEP_S, what="the kernel to be idle")
    finally:
        samples = page.evaluate("(s) => __svd.stopLatency(s)", element)
    frame = statistics.median(s["frame"] for s in samples)
    verdict = "meets" if frame <= JUMP_TARGET_MS else "MISSES"
    if sums[0] == "webgl2":  # the shader sums every layer each paint: the cost per layer from End - Home
        top, bottom = (statistics.median(s["paint"] for s in samples[i::2]) for i in (0, 1))
        how = (f"painted with WebGL2, which sums all k layers each time: one rank-one layer costs "
               f"{(top - bottom) / (state['max'] - state['min']):.3f} ms ({top:.0f} ms at rank {state['max']}, "
               f"{bottom:.0f} ms at rank {state['min']})")
    else:
        layer_ms = page.evaluate("(s) => s.querySelector('canvas.svd-picture-canvas').dataset.layerMs", element)
        how = (f"painted with the JS running sum: the page built its partial sums, one every {sums[2]} ranks, in "
               f"{sums[1]} ms after the factors arrived; one rank-one layer of one plane costs the page "
               f"{layer_ms} ms")
    line = (f"{name}: Home / End (rank {state['min']} <-> {state['max']}), {len(samples)} presses: median key press "
            f"to painted {statistics.median(s['load'] for s in samples):.0f} ms, to the next frame {frame:.0f} ms: "
            f"{verdict} the {JUMP_TARGET_MS} ms target ({how})")
    return line, frame


# The canvas read back, against the kernel's to_uint8 of the scaled A_k at the rank painted.
CANVAS_AGAINST = """([s, b64]) => {
  const c = s.querySelector('canvas.svd-picture-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const expected = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const n = c.width * c.height, channels = expected.length / n;
  let worst = 0, off = 0;
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < 3; ch++) {
      const diff = Math.abs(d[4 * i + ch] - expected[i * channels + (channels === 1 ? 0 : ch)]);
      if (diff > worst) worst = diff;
      if (diff) off++;
    }
  }
  return {worst, off: off / (3 * n), pixels: n, channels, source: c.dataset.source, path: c.dataset.path};
}"""

KERNEL_PICTURE = """import base64
_size = (HEIGHT, WIDTH)
_picture = (explorer.colour_cache.picture(RANK, CHROMA, size=_size) if getattr(explorer, "in_colour", False)
            else explorer.cache.picture(RANK, size=_size))
print(base64.b64encode(_picture.tobytes()).decode(), end="")
"""


def check_pixel_agreement(page, scope, path, name, browser_report):
    """Issue 21: the page's picture is within one grey level of the kernel's to_uint8 of the
    scaled A_k at every pixel (float16 factors and another order of sums move a value by far
    less than half a level, so only a value near a half level can round the other way)."""
    canvas = page.evaluate("(s) => { const c = s.querySelector('canvas.svd-picture-canvas');"
                           " return {w: c.width, h: c.height, rank: c.dataset.rank, chroma: c.dataset.chroma || '0',"
                           " source: c.dataset.source}; }", scope.element_handle())
    assert canvas["source"] == "factors", f"{name}: the picture was not rebuilt in the page: {canvas}"
    code = (KERNEL_PICTURE.replace("HEIGHT", str(canvas["h"])).replace("WIDTH", str(canvas["w"]))
            .replace("RANK", canvas["rank"]).replace("CHROMA", canvas["chroma"]))
    expected = page.evaluate(PAGE_EXECUTE, [path, code])
    result = page.evaluate(CANVAS_AGAINST, [scope.element_handle(), expected])
    browser_report.append(
        f"{name}: the canvas read back at rank {canvas['rank']}"
        + (f", chroma rank {canvas['chroma']}" if canvas["chroma"] != "0" else "")
        + f" ({canvas['w']}x{canvas['h']}, painted with {result['path']}): at most {result['worst']} level from the kernel's to_uint8 of the "
        f"scaled A_k, {100 * result['off']:.2f} % of the values one level off")
    assert result["worst"] <= 1, f"{name}: the page's picture is {result['worst']} levels off the kernel's"


def check_without_kernel(page, scope, name, browser_report):
    """With the kernel gone, a key press still repaints the picture (from the factors), and the
    page says that the readouts need the kernel."""
    element = scope.element_handle()
    before = page.evaluate("(s) => { const c = s.querySelector('canvas.svd-picture-canvas');"
                           " return {rank: Number(c.dataset.rank), painted: Number(c.dataset.painted)}; }", element)
    handle = scope.locator(".noUi-handle").first
    state = page.evaluate("(s) => __svd.sliderState(s)", element)
    key_name, target = ("ArrowLeft", state["value"] - 1) if state["value"] > state["min"] else ("ArrowRight",
                                                                                                  state["value"] + 1)
    handle.focus()
    page.keyboard.press(key_name)
    wait_for(page, "([s, t]) => Number(s.querySelector('canvas.svd-picture-canvas').dataset.rank) === t",
             [element, target], timeout_s=STEP_S, what=f"{name}: the picture of rank {target} with no kernel",
             state=("(s) => s.querySelector('canvas.svd-picture-canvas').dataset.rank", element))
    text = wait_for(page, "(s) => { const t = s.querySelector('.svd-picture-readouts').textContent;"
                    " return /need the kernel/.test(t) && t; }", element, timeout_s=STEP_S,
                    what=f"{name}: the page to say that the readouts need the kernel")
    browser_report.append(f"{name}, no kernel: {key_name} repainted rank {before['rank']} -> {target}; "
                          f"the page says: {text}")


_latency_lines = []


def report_latency(browser_report, line):
    """Show a latency line at the end of the run and keep it in screenshots/latency.txt."""
    browser_report.append(line)
    _latency_lines.append(line)
    SCREENSHOTS.mkdir(exist_ok=True)
    LATENCY_FILE.write_text("\n".join(_latency_lines) + "\n")


# ---------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------


def test_there_are_notebooks_to_run():
    assert NOTEBOOKS, f"no notebooks matching [0-9]*.ipynb in {NOTEBOOK_DIR}"


def open_and_run(tab, lab, path):
    page = tab.page
    page.goto(f"{lab.url}/lab/tree/{path}?reset&token={lab.token}", timeout=OPEN_S * 1000)
    wait_for(
        page,
        "(p) => window.__svd.panel(p) && window.__svd.kernelIdle(p)",
        path,
        timeout_s=OPEN_S,
        what=f"{path} to open in JupyterLab with an idle kernel",
    )
    page.evaluate("(p) => __svd.runAll(p)", path)
    wait_for(
        page,
        "(p) => __svd.runState(p).done",
        path,
        timeout_s=RUN_ALL_S,
        what=f"{path} to finish running",
        state=("(p) => __svd.runState(p)", path),
    )
    wait_for(page, "(p) => __svd.settled(p)", path, timeout_s=STEP_S, what="the outputs to finish rendering")
    return page.evaluate("(p) => __svd.runState(p)", path)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_lab(notebook, lab, tab, browser_report):
    page = tab.page
    path = f"notebooks/{notebook.name}"
    start = time.monotonic()
    run = open_and_run(tab, lab, path)
    ran_s = time.monotonic() - start
    problems = page.evaluate("(p) => __svd.problems(null, p)", path)
    save_screenshot(
        page,
        f"lab_{notebook.stem}",
        scroller=f"__svd.panel({json.dumps(path)}).node.querySelector('.jp-WindowedPanel-outer')",
    )
    assert not problems, f"{notebook.name} shows errors after Run All:\n" + "\n".join(problems)
    assert run["pending"] == 0, f"{notebook.name}: {run['pending']} cells did not run: {run}"

    summary = f"{notebook.stem}: ran {run['cells']} code cells in Lab in {ran_s:.1f} s"
    outputs = slider_outputs(page, ".jp-NotebookPanel")
    idle = ("(p) => __svd.kernelIdle(p)", path)
    for index in range(outputs.count()):
        scope = outputs.nth(index)
        has_picture = scope.locator(PICTURE).count() > 0
        name = f"{notebook.stem} {'explorer' if has_picture else 'slider without a picture'} {index + 1}"
        moves = check_slider(page, scope, name)
        summary += f"; {name}: " + ", ".join(f"{m[0]} {m[1]}->{m[2]}" for m in moves)
        if has_picture:
            line, _ = measure_latency(page, scope, f"Lab {name}", kernel_idle=idle)
            report_latency(browser_report, line)
    # Moving the slider must not have produced errors either.
    problems = page.evaluate("(p) => __svd.problems(null, p)", path)
    assert not problems, f"{notebook.name} shows errors after moving the slider:\n" + "\n".join(problems)
    tab.assert_no_console_errors()
    browser_report.append(summary)


# The explorer on a square image of SIDE x SIDE pixels, and a record of the kernel's time per
# render (explorer.timings, in ms) for the stage-by-stage figures.
LATENCY_NOTEBOOK_SOURCE = """\
import cv2
import helpers

image = cv2.resize(PICTURE, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
explorer = EXPLORER(image=image)
stages = []
_draw = explorer._draw
explorer._draw = lambda k: (_draw(k), stages.append(dict(explorer.timings)))
explorer
"""

# The same with the RankExplorer of another helpers.py (SVD_BASELINE_HELPERS), loaded under its own name.
BASELINE_EXPLORER = """\
import importlib.util
spec = importlib.util.spec_from_file_location("helpers_baseline", PATH)
baseline = importlib.util.module_from_spec(spec)
spec.loader.exec_module(baseline)
"""

KERNEL_STAGES = """\
import json, statistics
print(json.dumps({key: statistics.median(s[key] for s in stages[-20:]) for key in stages[-1]}))
"""

PAGE_EXECUTE = """async ([path, code]) => {
  // Run code in the notebook's kernel, without a cell, and return what it printed.
  const kernel = __svd.panel(path).sessionContext.session.kernel;
  let out = '';
  const future = kernel.requestExecute({code, store_history: false});
  future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
  await future.done;
  return out;
}"""


GREY_PICTURE = 'helpers.sample_image("hubble")'
COLOUR_PICTURE = 'helpers.sample_colour_image("astronaut")'


def run_latency_notebook(lab, served, tab, path, side, explorer_class, setup="", picture=GREY_PICTURE,
                         sliders=((0, ""),), before_shutdown=None, after_shutdown=None):
    """Open a notebook showing `explorer_class` on a side x side image; time 20 key presses on
    each of `sliders` ((index, label) pairs), then call `before_shutdown(page, scope)`.
    Returns (line, medians, kernel stages) for each slider."""
    source = (LATENCY_NOTEBOOK_SOURCE.replace("SIDE", str(side)).replace("EXPLORER", explorer_class)
              .replace("PICTURE", picture))
    name = f"Lab {side}x{side} ({side * side / 1e6:.2f} MP) {explorer_class}"
    return time_sliders(lab, served, tab, path, setup + source, name, sliders, before_shutdown, KERNEL_STAGES,
                        after_shutdown)


def time_sliders(lab, served, tab, path, source, name, sliders=((0, ""),), before_shutdown=None,
                 kernel_stages=None, after_shutdown=None):
    """Run a one-cell notebook showing a slider and a canvas picture; time key press to painted
    on each of `sliders`. Returns [(line, medians, what `kernel_stages` printed, as JSON)]."""
    page = tab.page
    scope = open_one_cell_notebook(lab, served, tab, path, source)
    results = []
    for index, label in sliders:
        line, medians = measure_latency(
            page, scope, name + label, kernel_idle=("(p) => __svd.kernelIdle(p)", path), slider=index,
        )  # fmt: skip
        kernel = json.loads(page.evaluate(PAGE_EXECUTE, [path, kernel_stages])) if kernel_stages else None
        results.append((line, medians, kernel))
    if before_shutdown is not None:
        before_shutdown(page, scope)
    page.evaluate("(p) => __svd.panel(p).sessionContext.shutdown()", path)
    if after_shutdown is not None:
        wait_for(page, "(p) => !__svd.panel(p).sessionContext.session", path, timeout_s=STEP_S,
                 what="the kernel to shut down")
        after_shutdown(page, scope)
    return results


# A slider that only sends precomputed pixels: the least time any picture of that size takes
# from key press to painted on this machine, through this Jupyter server and browser.
FLOOR_NOTEBOOK_SOURCE = """\
import ipywidgets as widgets
import numpy as np
from explorer.picture import Picture

frames = np.random.default_rng(0).integers(0, 256, (2, *SHAPE), np.uint8)
slider = widgets.IntSlider(value=500, min=1, max=1000, description="rank k")
readout = widgets.HTML("rank 500")
picture = Picture(one_to_one=True)  # sent as it is, never scaled
picture.show(frames[0], rank=500)

def move(change):
    picture.show(frames[change.new % 2], rank=change.new)
    readout.value = f"rank {change.new}"

slider.observe(move, "value")
widgets.VBox([slider, readout, picture])
"""


def report_floor(browser_report, line, floor, medians):
    """Report the floor, and how much more the explorer took (measured in the same run)."""
    report_latency(browser_report, f"{line}; the explorer took {medians['load'] - floor['load']:.0f} ms more "
                                   f"to painted, {medians['frame'] - floor['frame']:.0f} ms more to the next frame")


def measure_floor(lab, served, tab, medians, channels):
    """Time the floor slider for pictures of the size the explorer painted (from its `medians`)."""
    width, height = medians["size"]
    shape = (height, width) if channels == 1 else (height, width, channels)
    source = FLOOR_NOTEBOOK_SOURCE.replace("SHAPE", repr(shape))
    name = f"floor: a slider sending {width}x{height}x{channels} precomputed pixels"
    [(line, floor, _)] = time_sliders(lab, served, tab, f"floor_{width}x{height}x{channels}.ipynb", source, name)
    return line, floor


# Renderers that run WebGL on the CPU, as explorer/picture.js names them (SOFTWARE_GL): there
# its guard paints with the JS running sum.
SOFTWARE_GL = re.compile(r"swiftshader|llvmpipe|softpipe|software|basic render|mesa offscreen", re.I)

WEBGL2_RENDERER = """() => {
  // The renderer a new WebGL2 context gets in this page, or null when there is no WebGL2.
  const gl = document.createElement('canvas').getContext('webgl2');
  if (!gl) return null;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  const lose = gl.getExtension('WEBGL_lose_context');
  if (lose) lose.loseContext();
  return renderer;
}"""


def check_paint_path(page, scope, name, browser_report, forced=None):
    """Which path painted the picture (data-path): with `forced` ("webgl2": the explorer's
    picture.paint_with), that one; by default the one the guard picks for this browser's WebGL2:
    WebGL2 on a hardware renderer, the JS running sum on a software one or with no WebGL2."""
    canvas = page.evaluate("(s) => { const c = s.querySelector('canvas.svd-picture-canvas');"
                           " return {path: c.dataset.path, why: c.dataset.pathWhy || ''}; }", scope.element_handle())
    renderer = page.evaluate(WEBGL2_RENDERER)
    if forced:
        expected = forced
    else:
        expected = "webgl2" if renderer and not SOFTWARE_GL.search(renderer) else "js"
    report_latency(browser_report, f"{name}: painted with {canvas['path']}" + (f" ({canvas['why']})" if canvas["why"] else "")
                          + f"; this browser's WebGL2 renderer: {renderer or 'none'}"
                          + (f"; paint_with={forced!r}" if forced else "; the default guard"))
    assert canvas["path"] == expected, f"{name}: painted with {canvas['path']}, expected {expected}: {canvas['why']}"


def page_checks(tab, browser_report, path, name, jumps, forced=None):
    """At 1 MP: which path painted, Home / End timed, the canvas read back against the kernel, then
    (after the kernel is shut down) the slider still repaints. Returns the hooks for `time_sliders`."""

    def before_shutdown(page, scope):
        check_paint_path(page, scope, name, browser_report, forced)
        check_pixel_agreement(page, scope, path, name, browser_report)  # at the rank the presses reached
        line, frame = measure_jumps(page, scope, name, path)
        report_latency(browser_report, line)
        jumps.append(frame)

    def after_shutdown(page, scope):
        tab.assert_no_console_errors()
        count = len(tab.console_errors)
        check_without_kernel(page, scope, f"Lab {name}", browser_report)
        if len(tab.console_errors) > count:  # a widget that cannot reach the kernel may say so there
            browser_report.append(f"Lab {name}, no kernel: the console logged " + "; ".join(tab.console_errors[count:]))
            del tab.console_errors[count:]

    return before_shutdown, after_shutdown


@pytest.mark.parametrize("side", sorted(LATENCY_SIDES))
def test_slider_latency(side, lab, served, tab, browser_report):
    """DESIGN.md: key press to the next frame after the new picture, median <= 17 ms at 1 and 4 MP;
    at 1 MP also Home / End <= 50 ms, the page's picture within one level of the kernel's, and the
    slider still repainting once the kernel is shut down."""
    target = LATENCY_SIDES[side]
    runs = [("new", f"latency_{side}.ipynb", "helpers.RankExplorer", "")]
    jumps = []
    baseline = os.environ.get("SVD_BASELINE_HELPERS")
    if baseline:
        setup = BASELINE_EXPLORER.replace("PATH", repr(str(Path(baseline).resolve())))
        runs.append(("before", f"latency_{side}_before.ipynb", "baseline.RankExplorer", setup))
    frames = {}
    for label, path, explorer_class, setup in runs:
        hooks = page_checks(tab, browser_report, path, f"{side}x{side} grey", jumps) if (
            label == "new" and side == 1000) else (None, None)
        [(line, medians, kernel)] = run_latency_notebook(lab, served, tab, path, side, explorer_class, setup,
                                                         before_shutdown=hooks[0], after_shutdown=hooks[1])
        frames[label] = medians["frame"]
        stages = ", ".join(f"{key} {value:.1f}" for key, value in kernel.items())
        verdict = "meets" if medians["frame"] <= target else "MISSES"
        report_latency(browser_report, f"{line}: {verdict} the {target} ms target; kernel ms: {stages}")
        if label == "new" and side == 1000:  # what the same bytes cost with no computing at all
            report_floor(browser_report, *measure_floor(lab, served, tab, medians, channels=1), medians)
    if "before" in frames:
        report_latency(
            browser_report,
            f"Lab {side}x{side}: before {frames['before']:.0f} ms, now {frames['new']:.0f} ms "
            f"({frames['before'] / frames['new']:.1f}x faster), same server, same run",
        )
    tab.assert_no_console_errors()
    limit = LATENCY_LIMIT_FACTOR * target
    assert all(frame <= LATENCY_LIMIT_FACTOR * JUMP_TARGET_MS for frame in jumps), f"Home / End: {jumps} ms"
    assert frames["new"] <= limit, (
        f"median key press to new picture {frames['new']:.0f} ms at {side} x {side} is over the "
        f"{limit:.0f} ms limit (target {target} ms)"
    )


@pytest.mark.parametrize("mode", ["grey", "colour"])
def test_webgl2_path_in_lab(mode, lab, served, tab, browser_report):
    """Issue 21: the picture painted by the WebGL2 fragment shader, forced on (picture.paint_with,
    test only) where the guard picks the JS path (Chromium's software renderer here), is within
    one level of the kernel's to_uint8 at every pixel, jumps with Home / End, and still repaints
    with no kernel. Its times are printed; on a software renderer they are not held to the target."""
    side, path = 1000, f"webgl2_{mode}_1000.ipynb"
    explorer_class, picture = (("helpers.RankExplorer", GREY_PICTURE) if mode == "grey"
                               else ("helpers.ColourExplorer", COLOUR_PICTURE))
    source = (LATENCY_NOTEBOOK_SOURCE.replace("SIDE", str(side)).replace("EXPLORER", explorer_class)
              .replace("PICTURE", picture)
              .replace("\nexplorer\n", '\nexplorer.picture.paint_with = "webgl2"  # even on a software renderer\n'
                                        "explorer\n"))
    name = f"{side}x{side} {mode}, WebGL2 forced"
    jumps = []
    checks, after_shutdown = page_checks(tab, browser_report, path, name, jumps, forced="webgl2")

    def before_shutdown(page, scope):
        if page.evaluate(WEBGL2_RENDERER) is None:
            _cannot_run_webgl2()
        checks(page, scope)
        if mode == "grey":  # the GPU takes the context away: the next key press paints with JS
            check_context_loss(page, scope, path, name, browser_report)

    [(line, medians, kernel)] = time_sliders(lab, served, tab, path, source, f"Lab {name}",
                                             before_shutdown=before_shutdown, kernel_stages=KERNEL_STAGES,
                                             after_shutdown=after_shutdown)
    report_latency(browser_report, f"{line} (WebGL2 on this browser's renderer; the default guard would not use it "
                                   "here)")
    tab.assert_no_console_errors()
    assert len(jumps) == 1


def check_context_loss(page, scope, path, name, browser_report):
    """Lose the shader's WebGL2 context (WEBGL_lose_context), press a key: the page paints
    the new rank with the JS running sum, says why, and still agrees with the kernel."""
    element = scope.element_handle()
    page.evaluate("(s) => s.querySelector('canvas.svd-picture-canvas').webgl.getContext('webgl2')"
                  ".getExtension('WEBGL_lose_context').loseContext()", element)
    rank = int(page.evaluate("(s) => s.querySelector('canvas.svd-picture-canvas').dataset.rank", element))
    press_key(page, scope, "ArrowLeft" if rank > 1 else "ArrowRight")
    target = rank - 1 if rank > 1 else 2
    why = wait_for(page, "([s, t]) => { const c = s.querySelector('canvas.svd-picture-canvas');"
                   " return Number(c.dataset.rank) === t && c.dataset.path === 'js' && c.dataset.pathWhy; }",
                   [element, target], timeout_s=STEP_S, what=f"{name}: the JS path to paint after the context loss",
                   state=("(s) => ({...s.querySelector('canvas.svd-picture-canvas').dataset})", element))
    wait_for(page, "(p) => __svd.kernelIdle(p)", path, timeout_s=STEP_S, what="the kernel to be idle")
    report_latency(browser_report, f"{name}: WebGL2 context lost, rank {rank} -> {target} painted with js ({why})")
    check_pixel_agreement(page, scope, path, f"{name}, after the context loss", browser_report)


def _cannot_run_webgl2():
    message = "this Chromium has no WebGL2, even with --enable-unsafe-swiftshader"
    if _ci():
        pytest.fail(f"CI=true, so the WebGL2 path must be tested: {message}", pytrace=False)
    pytest.skip(message)


COLOUR_LATENCY_SIDES = {1000: 17, 2048: 17}  # the grey targets hold for colour too (issues 11, 21)

CANVAS_COLOURS = """(s) => {
  // How many pixels of the explorer's picture are not grey (R, G and B not all equal).
  const c = s.querySelector('canvas.svd-picture-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let colourful = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2]) colourful++;
  return {colourful, pixels: d.length / 4, painted: Number(c.dataset.painted), rank: Number(c.dataset.rank)};
}"""


def switch_mode(page, scope, mode, name):
    """Click the explorer's grey/colour toggle; return the picture's colour count once it is repainted."""
    before = page.evaluate(CANVAS_COLOURS, scope.element_handle())
    scope.locator(".rank-explorer-mode button", has_text=mode).click()
    wait_for(page, f"(s) => ({CANVAS_COLOURS})(s).painted > {before['painted']}", scope.element_handle(),
             timeout_s=STEP_S, what=f"{name}: the picture to be repainted in {mode}")
    return page.evaluate(CANVAS_COLOURS, scope.element_handle())


@pytest.mark.parametrize("side", sorted(COLOUR_LATENCY_SIDES))
def test_colour_explorer_in_lab(side, lab, served, tab, browser_report):
    """The colour explorer: key press to painted on the luma and the chroma slider, within the grey
    targets; the grey/colour toggle repaints the picture in grey, then in colour again."""
    target, path = COLOUR_LATENCY_SIDES[side], f"colour_latency_{side}.ipynb"
    toggled, jumps = {}, []
    checks, after_shutdown = page_checks(tab, browser_report, path, f"{side}x{side} colour", jumps) if (
        side == min(COLOUR_LATENCY_SIDES)) else (None, None)

    def toggle(page, scope):
        name = f"colour explorer {side}x{side}"
        toggled["grey"] = switch_mode(page, scope, "grey", name)
        if side == min(COLOUR_LATENCY_SIDES):
            save_screenshot(page, "lab_colour_explorer_grey", scroller=f"__svd.panel({json.dumps(path)}).node"
                            ".querySelector('.jp-WindowedPanel-outer')")
        toggled["colour"] = switch_mode(page, scope, "colour", name)
        if side == min(COLOUR_LATENCY_SIDES):
            save_screenshot(page, "lab_colour_explorer", scroller=f"__svd.panel({json.dumps(path)}).node"
                            ".querySelector('.jp-WindowedPanel-outer')")
        if checks is not None:
            checks(page, scope)

    results = run_latency_notebook(
        lab, served, tab, path, side, "helpers.ColourExplorer", picture=COLOUR_PICTURE,
        sliders=((0, " luma slider"), (1, " chroma slider")), before_shutdown=toggle, after_shutdown=after_shutdown)
    for line, medians, kernel in results:
        stages = ", ".join(f"{key} {value:.1f}" for key, value in kernel.items())
        verdict = "meets" if medians["frame"] <= target else "MISSES"
        report_latency(browser_report, f"{line}: {verdict} the {target} ms target; kernel ms: {stages}")
    if side == min(COLOUR_LATENCY_SIDES):  # what the same bytes cost with no computing at all
        report_floor(browser_report, *measure_floor(lab, served, tab, results[0][1], channels=3), results[0][1])
    tab.assert_no_console_errors()
    grey, colour = toggled["grey"], toggled["colour"]
    assert grey["colourful"] == 0, f"the grey view still has {grey['colourful']} coloured pixels"
    assert colour["colourful"] > colour["pixels"] // 2, f"the colour view is mostly grey: {colour}"
    for line, medians, _ in results:
        limit = LATENCY_LIMIT_FACTOR * target
        assert medians["frame"] <= limit, f"{line}: over the {limit:.0f} ms limit (target {target} ms)"


VOILA_SCROLLER = "__svd.scroller(document.body)"


def stop_kernels(server):
    """Kill the server's kernels (processes running ipykernel) and wait until they are gone."""
    import psutil

    kernels = [child for child in psutil.Process(server.process.pid).children(recursive=True)
               if "ipykernel" in " ".join(child.cmdline())]
    assert kernels, f"{server.name} runs no kernel"
    for kernel in kernels:
        kernel.kill()
    psutil.wait_procs(kernels, timeout=10)


@pytest.mark.parametrize("mode", ["grey", "colour"])
def test_slider_latency_on_a_plain_server(mode, lab_default_limit, served, tab, browser_report):
    """Issue 21: the same 17 ms on a plain `jupyter lab` with none of our settings (no TCP_NODELAY,
    as on a university hub), grey and colour, next to the floor on that server (and the explorer
    of SVD_BASELINE_HELPERS, when given, in the same run)."""
    side, target = 1000, LATENCY_SIDES[1000]
    explorer_class, picture, channels, sliders = (
        ("helpers.RankExplorer", GREY_PICTURE, 1, ((0, ""),)) if mode == "grey"
        else ("helpers.ColourExplorer", COLOUR_PICTURE, 3, ((0, " luma slider"), (1, " chroma slider"))))
    results = run_latency_notebook(lab_default_limit, served, tab, f"latency_plain_{mode}_1000.ipynb", side,
                                   explorer_class, picture=picture, sliders=sliders)
    for line, medians, _ in results:
        verdict = "meets" if medians["frame"] <= target else "MISSES"
        report_latency(browser_report, f"plain server: {line}: {verdict} the {target} ms target")
    medians = results[0][1]
    line, floor = measure_floor(lab_default_limit, served, tab, medians, channels=channels)
    report_floor(browser_report, "plain server: " + line, floor, medians)
    baseline = os.environ.get("SVD_BASELINE_HELPERS")
    if baseline and mode == "grey":
        setup = BASELINE_EXPLORER.replace("PATH", repr(str(Path(baseline).resolve())))
        [(before, old, _)] = run_latency_notebook(lab_default_limit, served, tab, "latency_plain_1000_before.ipynb",
                                                  side, "baseline.RankExplorer", setup)
        report_latency(browser_report, f"plain server: {before}")
        report_latency(browser_report, f"plain server, Lab {side}x{side}: before {old['frame']:.0f} ms, now "
                                       f"{medians['frame']:.0f} ms, same server, same run")
    tab.assert_no_console_errors()
    for line, medians, _ in results:
        assert medians["frame"] <= LATENCY_LIMIT_FACTOR * target, f"{line}: over {LATENCY_LIMIT_FACTOR} x the target"


def test_explorer_slider_in_voila(voila, tab, browser_report, external_requests):
    page = tab.page
    start = time.monotonic()
    page.goto(f"{voila.url}/?token={voila.token}", timeout=OPEN_S * 1000)
    wait_for(
        page,
        "() => !document.getElementById('loading') && document.getElementById('rendered_cells')"
        " && document.getElementById('rendered_cells').style.display !== 'none'",
        timeout_s=RUN_ALL_S,
        what="Voila to run the notebook",
        state=("() => (document.getElementById('loading_text') || {}).textContent", None),
    )
    wait_for(
        page,
        "() => document.querySelector('#rendered_cells .widget-slider')"
        " && document.querySelector('#rendered_cells canvas.svd-picture-canvas[data-rank]')",
        timeout_s=OPEN_S,
        what="the explorer's slider and picture to show in Voila",
    )
    wait_for(
        page,
        "() => __svd.settled(document.getElementById('rendered_cells'))",
        timeout_s=STEP_S,
        what="the Voila page to finish rendering",
    )
    ran_s = time.monotonic() - start
    problems = page.evaluate("() => __svd.problems(document.getElementById('rendered_cells'), null)")
    save_screenshot(page, "voila_06_explorer", scroller=VOILA_SCROLLER)
    assert not problems, "the Voila app shows errors:\n" + "\n".join(problems)
    found = slider_outputs(page, "#rendered_cells", with_picture=True)
    assert found.count() >= 1, "the Voila app shows no slider next to a picture"
    moves = check_slider(page, found.first, "Voila explorer")
    line, _ = measure_latency(page, found.first, "Voila explorer")
    report_latency(browser_report, line)
    problems = page.evaluate("() => __svd.problems(document.getElementById('rendered_cells'), null)")
    assert not problems, "the Voila app shows errors after moving the slider:\n" + "\n".join(problems)
    save_screenshot(page, "voila_06_explorer_moved", scroller=VOILA_SCROLLER)
    tab.assert_no_console_errors()
    stop_kernels(voila)  # as Binder's out-of-memory killer would: the page keeps the factors
    check_without_kernel(page, found.first, "Voila explorer", browser_report)
    del tab.console_errors[:]  # the page may log that it cannot reach the kernel: that is the point
    browser_report.append(
        f"Voila: explorer ready in {ran_s:.1f} s; " + ", ".join(f"{m[0]} {m[1]}->{m[2]}" for m in moves)
    )
    if external_requests:
        browser_report.append(
            "requests to other hosts, answered empty (the tests never use the internet): "
            + ", ".join(sorted(external_requests))
        )


# ---------------------------------------------------------------------------
# Uploads through the real file chooser
# ---------------------------------------------------------------------------

UPLOAD_NOTEBOOK_SOURCE = """\
import helpers

explorer = helpers.ColourExplorer(sample="camera", rank=50)  # as notebook 06 shows it
SETUP
explorer
"""

# Over the upload limit (64 MB): refused in the browser before anything is read or sent.
TOO_BIG_BYTES = 70_000_000


@pytest.fixture(scope="module")
def upload_files(tmp_path_factory):
    """Files a student might choose, made here. Noise does not compress, so a PNG of noise has
    the size we ask for; the JPEGs are a photo stretched to 12 and 24 megapixels with grain."""
    import cv2
    import numpy as np

    folder = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    files = {}

    def png(name, shape):
        path = folder / name
        cv2.imwrite(str(path), rng.integers(0, 256, shape, dtype=np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        files[name] = path

    def photo(name, width, height, quality):
        colour = cv2.imread(str(ROOT / "media" / "astronaut.png"))
        image = cv2.resize(colour, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        image += rng.normal(0, 8, (height, width, 1)).astype(np.int16)  # grain, as a phone's sensor gives
        path = folder / name
        cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        files[name] = path

    files["not_a_picture.png"] = folder / "not_a_picture.png"
    files["not_a_picture.png"].write_text("These are my holiday notes, not a picture.\n")
    png("noise_9MB.png", (3000, 3000))  # 9.0 MB
    png("noise_12MB.png", (3500, 3500))  # 12.3 MB: over Tornado's default 10 MiB
    png("noise_30MB.png", (3200, 3200, 3))  # 30.8 MB
    photo("phone_12MP.jpg", 4000, 3000, 93)  # about 4.7 MB
    photo("camera_24MP.jpg", 6000, 4000, 95)  # about 10.9 MB: over 10 MiB
    too_big = folder / "too_big_70MB.tif"
    with open(too_big, "wb") as handle:  # sparse: 70 MB on paper, nothing on disk
        handle.truncate(TOO_BIG_BYTES)
    files[too_big.name] = too_big
    return files


def _megabytes(path):
    return f"{path.stat().st_size / 1e6:.1f} MB"


def upload_file(page, scope, path, front):
    """Choose `path` in the file chooser; wait for the final message. Returns the page's timings."""
    with page.expect_file_chooser(timeout=STEP_S * 1000) as chooser:
        scope.locator(".svd-upload-button").click()
    chooser.value.set_files(str(path))
    return wait_for(
        page,
        "(name) => __svd.uploadResult(name)",
        path.name,
        timeout_s=UPLOAD_S,
        what=f"{front}: {path.name} ({_megabytes(path)}) to show a picture or a message",
        state=("() => __svd.upload && __svd.upload.texts", None),
    )


def check_uploads(page, scope, front, files, expected, browser_report):
    """Upload each file; each shows its own name, ends as expected, and the slider still works.

    expected: file name -> ("done" | "error", a pattern the final message must match).
    """
    page.evaluate("(s) => __svd.watchUpload(s)", scope.element_handle())
    for name, (state, pattern) in expected.items():
        path = files[name]
        result = upload_file(page, scope, path, front)
        SCREENSHOTS.mkdir(exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "_", front.lower())
        scope.screenshot(path=SCREENSHOTS / f"upload_{slug}_{path.stem}.png")
        assert result["state"] == state and re.search(pattern, result["text"]), (
            f"{front}: {name} ({_megabytes(path)}) ended with {result['state']}: {result['text']!r}, "
            f"expected {state} matching {pattern!r}; the status line showed: {result['texts']}"
        )
        assert result["tName"] is not None and result["tName"] <= FEEDBACK_LIMIT_MS, (
            f"{front}: {name} took {result['tName']} ms to show its name (target 100 ms)"
        )
        if state == "done":
            assert result["tPaint"] is not None, f"{front}: {name} was accepted but no picture was painted"
            # A colour file keeps its colour (issue 11); a grey one shows no colour.
            canvas = page.evaluate(CANVAS_COLOURS, scope.element_handle())
            if name in COLOUR_UPLOADS:
                assert canvas["colourful"] > canvas["pixels"] // 2, f"{front}: {name} is shown in grey: {canvas}"
            else:
                assert canvas["colourful"] == 0, f"{front}: the grey {name} shows colour: {canvas}"
        arrived = f", in the kernel after {result['tDecode'] / 1000:.2f} s" if result["tDecode"] else ""
        picture = f", first picture after {result['tPaint'] / 1000:.2f} s" if result["tPaint"] else ""
        browser_report.append(
            f"{front}: {name} ({_megabytes(path)}): name and size on screen after {result['tName']:.0f} ms"
            f"{arrived}{picture}, final message after {result['tFinal'] / 1000:.2f} s. The line read: "
            + " | ".join(_without_progress(result["texts"]))
        )
        # The slider still works: one key press gives a new picture and readout.
        state_now = page.evaluate("(s) => __svd.sliderState(s)", scope.element_handle())
        key = "ArrowLeft" if state_now["value"] == state_now["max"] else "ArrowRight"
        slider_move(page, scope, f"{front}: after uploading {name}: {key}", lambda key=key: press_key(page, scope, key))


def _without_progress(texts):
    """The lines the student read, with the "sending N % …" steps in between left out."""
    kept = [text for text in texts if not re.search(r": sending \d+ % …$", text)]
    steps = len(texts) - len(kept)
    return [f"{text} ({steps} progress steps)" if text.endswith(": sending …") and steps else text
            for text in kept]


def press_key(page, scope, key):
    """Press `key` on the slider's handle."""
    scope.locator(".noUi-handle").first.focus()
    page.keyboard.press(key)


SHOWN = r"{name}: \d+ × \d+ pixels, shown"
# The files of upload_files that are in colour (the photos, and the RGB noise).
COLOUR_UPLOADS = {"noise_30MB.png", "phone_12MP.jpg", "camera_24MP.jpg"}

UPLOADS_WITH_REPO_CONFIG = {
    "not_a_picture.png": ("error", r"not_a_picture\.png.*not an image"),
    "noise_9MB.png": ("done", SHOWN.format(name=r"noise_9MB\.png")),
    "noise_12MB.png": ("done", SHOWN.format(name=r"noise_12MB\.png")),
    "noise_30MB.png": ("done", SHOWN.format(name=r"noise_30MB\.png")),
    "phone_12MP.jpg": ("done", SHOWN.format(name=r"phone_12MP\.jpg")),
    "camera_24MP.jpg": ("done", SHOWN.format(name=r"camera_24MP\.jpg")),
    "too_big_70MB.tif": ("error", r"too_big_70MB\.tif \(70\.0 MB\) is over the upload limit of 64\.0 MB"),
}


def open_upload_notebook(lab, served, tab, path, setup=""):
    return open_one_cell_notebook(lab, served, tab, path, UPLOAD_NOTEBOOK_SOURCE.replace("SETUP", setup))


def open_one_cell_notebook(lab, served, tab, path, source):
    """Write a notebook of one code cell, run it in Lab, and return the one output that shows a
    slider next to a picture; fail if the page shows errors."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(notebook, served / "serve" / path)
    open_and_run(tab, lab, path)
    page = tab.page
    problems = page.evaluate("(p) => __svd.problems(null, p)", path)
    assert not problems, f"{path} shows errors:\n" + "\n".join(problems)
    found = slider_outputs(page, ".jp-NotebookPanel", with_picture=True)
    assert found.count() == 1, f"{path} shows no slider next to a picture"
    return found.first


def test_uploads_in_lab(lab, served, tab, upload_files, browser_report):
    scope = open_upload_notebook(lab, served, tab, "uploads.ipynb")
    check_uploads(tab.page, scope, "Lab", upload_files, UPLOADS_WITH_REPO_CONFIG, browser_report)
    tab.assert_no_console_errors()


def foreign_lab(served, name, extra_argv=()):
    """A JupyterLab without the repo's config, as someone else's server would be; stopped after."""
    server = launch_lab(served, name, repo_config=False, extra_argv=list(extra_argv))
    try:
        yield server
    finally:
        shutdown_kernels(server)
        stop_server(server)


@pytest.fixture(scope="module")
def lab_default_limit(served):
    """JupyterLab left at Tornado's default 10 MiB message limit: not given the repo's config."""
    yield from foreign_lab(served, "lab-default")


def test_uploads_on_a_server_left_at_10_mib(lab_default_limit, served, tab, upload_files, browser_report):
    """The pieces pass a default server; a file over the limit gets the clear message."""
    scope = open_upload_notebook(lab_default_limit, served, tab, "uploads_default_limit.ipynb")
    expected = {name: UPLOADS_WITH_REPO_CONFIG[name] for name in ("noise_12MB.png", "camera_24MP.jpg",
                                                                  "too_big_70MB.tif")}
    check_uploads(tab.page, scope, "Lab at 10 MiB", upload_files, expected, browser_report)
    tab.assert_no_console_errors()


# A server whose limit is below even one piece (512 KiB): the piece is dropped and the server
# closes the kernel's websocket, as some proxies do. The kernel never answers, so the student
# must be told so; the notebook shortens the wait from 20 s to 5 s.
LOW_LIMIT_BYTES = 512 * 1024


@pytest.fixture(scope="module")
def lab_low_limit(served):
    setting = json.dumps({"websocket_max_message_size": LOW_LIMIT_BYTES})
    yield from foreign_lab(served, "lab-low", [f"--ServerApp.tornado_settings={setting}"])


def test_uploads_on_a_server_that_drops_the_pieces(lab_low_limit, served, tab, upload_files, browser_report):
    scope = open_upload_notebook(lab_low_limit, served, tab, "uploads_low_limit.ipynb",
                                 setup="explorer.upload.timeout_s = 5")
    expected = {"noise_9MB.png": ("error", r"noise_9MB\.png \(9\.0 MB\) did not reach the kernel: no answer "
                                           r"for 5 s .* refuses messages of 1\.0 MB")}
    check_uploads(tab.page, scope, "Lab at 512 KiB", upload_files, expected, browser_report)
    # No assert on the console: the server closing the socket is logged there, and that is the point.


def test_uploads_in_voila(voila, tab, upload_files, browser_report):
    page = tab.page
    page.goto(f"{voila.url}/?token={voila.token}", timeout=OPEN_S * 1000)
    wait_for(
        page,
        "() => document.querySelector('#rendered_cells .svd-upload-button')"
        " && document.querySelector('#rendered_cells canvas.svd-picture-canvas[data-rank]')",
        timeout_s=RUN_ALL_S,
        what="the explorer's upload button and picture to show in Voila",
    )
    found = slider_outputs(page, "#rendered_cells", with_picture=True)
    assert found.count() >= 1, "the Voila app shows no slider next to a picture"
    expected = {name: UPLOADS_WITH_REPO_CONFIG[name] for name in (
        "not_a_picture.png", "noise_9MB.png", "noise_12MB.png", "noise_30MB.png", "camera_24MP.jpg")}
    check_uploads(page, found.first, "Voila", upload_files, expected, browser_report)
    tab.assert_no_console_errors()


# ---------------------------------------------------------------------------
# Binder's memory policy, as a student sees it (explorer.memory, issue 20)
# ---------------------------------------------------------------------------

MEMORY_CELLS = ["import numpy\nheld = numpy.ones(12_500_000)  # 100 MB\nprint('holding', held.nbytes // 2**20, 'MiB')",
                "print('still here:', held.sum())"]


def _kernel_ids(server):
    request = urllib.request.Request(server.url + "/api/kernels", headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return {kernel["id"] for kernel in json.load(response)}


def test_memory_policy_restart_and_closed_tab_in_lab(served, tab, browser_report):
    """Two notebooks open in one Lab, the server's memory budget set to 0: the policy restarts
    the one used first (not the one in use), which keeps its outputs; its next cell says why its
    variables are gone and how to get them back. Closing a notebook's tab shuts its kernel down
    (jupyter_config/lab_settings/overrides.json, read as make lab and postBuild install it)."""
    import nbformat

    for name in ("memory_a", "memory_b"):
        cells = [nbformat.v4.new_markdown_cell(f"# {name}")] + [nbformat.v4.new_code_cell(c) for c in MEMORY_CELLS]
        kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
        nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=kernel), served / "serve" / f"{name}.ipynb")
    policy = ["--MemoryBudgetKernelManager.budget_mb=0", "--MemoryBudgetKernelManager.target_mb=0",
              "--MemoryBudgetKernelManager.least_mb=80", "--MemoryBudgetKernelManager.check_s=0.5",
              "--MemoryBudgetKernelManager.recent_s=2",
              f"--LabApp.app_settings_dir={ROOT / 'jupyter_config' / 'lab_settings'}"]
    server = launch_lab(served, label="lab-memory", extra_argv=policy)
    try:
        page = tab.page
        # notebook A: run the first cell only, as a student reading it would
        page.goto(f"{server.url}/lab/tree/memory_a.ipynb?reset&token={server.token}", timeout=OPEN_S * 1000)
        wait_for(page, "(p) => __svd.panel(p) && __svd.kernelIdle(p)", "memory_a.ipynb", timeout_s=OPEN_S,
                 what="memory_a.ipynb to open with an idle kernel")
        run_cell = """async ([p, i]) => {
            const app = window.jupyterapp, w = __svd.panel(p);
            app.shell.activateById(w.id);
            w.content.activeCellIndex = i;
            await app.commands.execute('notebook:run-cell');
        }"""
        page.evaluate(run_cell, ["memory_a.ipynb", 1])
        wait_for(page, "(p) => __svd.panel(p).content.widgets[1].model.outputs.length > 0 && __svd.kernelIdle(p)",
                 "memory_a.ipynb", timeout_s=RUN_ALL_S, what="memory_a's first cell to print")
        # notebook B, in a second tab of the same Lab: the student moves on
        page.evaluate("(p) => window.jupyterapp.commands.execute('docmanager:open', {path: p})", "memory_b.ipynb")
        wait_for(page, "(p) => __svd.panel(p) && __svd.kernelIdle(p)", "memory_b.ipynb", timeout_s=OPEN_S,
                 what="memory_b.ipynb to open with an idle kernel")
        page.evaluate(run_cell, ["memory_b.ipynb", 1])
        deadline = time.monotonic() + 60
        while "restarted; its next cell prints the notice" not in server.log.read_text():
            assert time.monotonic() < deadline, "the policy restarted no kernel:\n" + server.log_tail()
            time.sleep(0.5)
        log = server.log.read_text()
        kernel_a = page.evaluate("(p) => __svd.panel(p).sessionContext.session.kernel.id", "memory_a.ipynb")
        kernel_b = page.evaluate("(p) => __svd.panel(p).sessionContext.session.kernel.id", "memory_b.ipynb")
        assert f"restarting idle kernel {kernel_a}" in log and f"restarting idle kernel {kernel_b}" not in log
        # back to A: its output is still on screen; its next cell tells the student what happened
        # back to A, as a student does it: its tab, then its next cell, Shift+Enter
        page.locator(".lm-TabBar-tab", has_text="memory_a.ipynb").click()
        wait_for(page, "(p) => window.jupyterapp.shell.currentWidget === __svd.panel(p)", "memory_a.ipynb",
                 timeout_s=STEP_S, what="memory_a's tab to be in front")
        page.locator(f"#{page.evaluate('(p) => __svd.panel(p).id', 'memory_a.ipynb')} .jp-CodeCell").nth(1).click()
        page.keyboard.press("Shift+Enter")
        wait_for(page, "(p) => __svd.panel(p).content.widgets[2].model.outputs.length > 0 && __svd.kernelIdle(p)",
                 "memory_a.ipynb", timeout_s=RUN_ALL_S, what="memory_a's second cell to print")
        shown = page.evaluate("(p) => __svd.panel(p).node.innerText", "memory_a.ipynb")
        path = save_screenshot(page, "lab_memory_restart_notice", "document.querySelector('.jp-WindowedPanel-outer')")
        browser_report.append(f"memory policy in Lab: screenshot {path.relative_to(ROOT)}")
        assert "holding 95 MiB" in shown  # the first cell's output stayed
        assert "restarted to free memory" in shown and "Run > Run All Cells" in shown, shown
        assert "NameError" in shown
        # closing B's tab shuts its kernel down
        assert kernel_b in _kernel_ids(server)
        tab_b = page.locator(".lm-TabBar-tab", has_text="memory_b.ipynb")
        tab_b.hover()
        tab_b.locator(".lm-TabBar-tabCloseIcon").click()
        page.locator(".jp-Dialog button", has_text="Discard").click()  # "Save your work": it ran cells
        deadline = time.monotonic() + 20
        while kernel_b in _kernel_ids(server):
            assert time.monotonic() < deadline, "closing memory_b's tab left its kernel running"
            time.sleep(0.25)
        assert kernel_a in _kernel_ids(server)
    finally:
        shutdown_kernels(server)
        stop_server(server)
