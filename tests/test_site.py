"""The course website (`make site`) built, served on 127.0.0.1 and read in headless Chromium.

Every page opens with every request off the machine refused (and recorded): no console error, no
off-machine request, a launch link; figures have alt text, solutions stay folded, search finds a
word; on the 04 and 06 pages ArrowRight on the rank slider repaints the picture (the canvas's
data-rank) with no kernel, and the readouts say they need the kernel. Screenshots of the landing
page and of 06 go to screenshots/. Run with `make test-site` (it sets SITE_TESTS=1).
"""

import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from site_support import (
    ROOT,
    SCREENSHOTS,
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

NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = ["index"] + [f"notebooks/{name}" for name in NOTEBOOKS]
SITE_PYTHON = os.environ.get("SITE_PYTHON", str(ROOT / ".venv-site" / "bin" / "python"))


@pytest.fixture(scope="module")
def site(browser_report):
    """Build the site with site/build.py; its html folder, and the build's output."""
    start = time.perf_counter()
    done = subprocess.run([SITE_PYTHON, str(ROOT / "site" / "build.py")], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, f"site/build.py failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    last = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"site: (\d+) pages into (\S+)", last)
    assert match, f"the build's last line is not 'site: N pages into PATH': {last!r}"
    html = (ROOT / match.group(2)).resolve()
    assert int(match.group(1)) == len(PAGES) and html.is_dir()
    sizes = {page: (html / f"{page}.html").stat().st_size for page in PAGES}
    total = sum(f.stat().st_size for f in html.rglob("*") if f.is_file())
    browser_report.append(f"site: built in {seconds:.1f} s; {len(PAGES)} pages, {total / 1e6:.1f} MB in all")
    for page, size in sizes.items():
        images = {html / "_images" / name for name in re.findall(r'src="(?:\.\./)?_images/([^"]+)"',
                                                                   (html / f"{page}.html").read_text(encoding="utf-8"))}
        weight = size + sum(image.stat().st_size for image in images)
        browser_report.append(f"site: {page}.html {size / 1e3:,.0f} kB; with its figures ({len(images)}) "
                              f"{weight / 1e3:,.0f} kB")
    return html, done.stdout + done.stderr


@pytest.fixture(scope="module")
def served(site):
    server = StaticServer(site[0])
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    with sync_playwright() as playwright:
        browser = open_browser(playwright, chromium)
        yield browser
        browser.close()


class _Tags(HTMLParser):
    """The <img> and <details> tags of a page, scripts left out."""

    def __init__(self):
        super().__init__()
        self.images, self.details = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag == "details":
            self.details.append(dict(attrs))


def _tags(path):
    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_build_warns_only_about_the_repository_url(site):
    lines = [line for line in site[1].splitlines() if "WARNING" in line]
    assert all("repository URL" in line for line in lines), "\n".join(lines)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_figures_have_alt_text_and_solutions_stay_folded(site, name):
    notebook = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
    folded = sum("".join(c["source"]).count("<details") for c in notebook["cells"] if c["cell_type"] == "markdown")
    tags = _tags(site[0] / "notebooks" / f"{name}.html")
    figures = [img for img in tags.images if "_images/" in img.get("src", "")]
    for img in figures:
        alt = img.get("alt", "")
        assert len(alt) > 20 and not alt.startswith("<Figure") and "_images" not in alt, (name, img)
    assert len(tags.details) == folded, f"{name}: {len(tags.details)} <details> on the page, {folded} in the notebook"
    assert all("open" not in d for d in tags.details), f"{name}: a solution is unfolded"


def test_search_index_has_the_lessons(site):
    index = (site[0] / "searchindex.js").read_text(encoding="utf-8")
    assert (site[0] / "search.html").exists()
    for word in ("eckart", "eigenfac", "psnr"):
        assert word in index.lower(), word


@pytest.mark.parametrize("page_name", PAGES)
def test_page_offline(served, browser, page_name):
    off_machine = OffMachine()
    page = new_page(browser, off_machine)
    try:
        page.goto(served + page_name + ".html", wait_until="load", timeout=60_000)
        page.wait_for_load_state("networkidle", timeout=30_000)
        if page_name != "index" and page.locator("script[type='application/vnd.jupyter.widget-state+json']").count():
            page.wait_for_selector(".jupyter-widgets", timeout=30_000)
        binder = page.locator("a.course-launch-binder")
        assert binder.count() == 1
        href = binder.get_attribute("href")
        path = f"{page_name}.ipynb" if page_name != "index" else "notebooks/00_start_here.ipynb"
        assert href.startswith("https://mybinder.org/v2/") and href.endswith(f"urlpath=lab/tree/{path}"), href
        assert page.locator("input.course-hub-url").count() == 1
        assert "Colab is not supported" in page.inner_text(".course-launch")
        assert page.locator("a[href*='colab.research.google.com']").count() == 0
        # Folded solutions: closed, each with its code inside.
        folds = page.evaluate("() => [...document.querySelectorAll('details')].map(d => [d.open, !!d.querySelector('pre')])")
        assert all(not is_open for is_open, _ in folds), f"unfolded: {folds}"
        assert sum(has_code for _, has_code in folds) >= len(folds) // 2, f"folds without code: {folds}"
        # Every formula typeset by the vendored MathJax.
        formulas = page.locator(".math").count()
        if formulas:
            page.wait_for_function("(n) => document.querySelectorAll('mjx-container').length >= n", arg=formulas,
                                   timeout=30_000)
        assert not page.errors, "\n".join(page.errors)
        assert not off_machine.refused, f"requests off the machine: {off_machine.refused}"
    finally:
        page.context.close()


def test_search_finds_a_lesson(served, browser):
    off_machine = OffMachine()
    page = new_page(browser, off_machine)
    try:
        page.goto(served + "search.html?q=eigenfaces", wait_until="load")
        page.wait_for_selector("#search-results li a", timeout=30_000)
        titles = page.locator("#search-results li a").all_inner_texts()
        assert any(title.startswith("09") for title in titles), titles
        assert not page.errors and not off_machine.refused, (page.errors, off_machine.refused)
    finally:
        page.context.close()


def test_hub_field_opens_nbgitpuller_link(served, browser):
    page = new_page(browser, OffMachine())
    try:
        page.goto(served + "notebooks/03_svd.html", wait_until="load")
        page.evaluate("() => { window.open = (url) => { window.openedUrl = url; }; }")  # no request off the machine
        page.fill("input.course-hub-url", "https://hub.example.edu/")
        page.click(".course-hub-form button")
        url = page.evaluate("() => window.openedUrl")
        assert url.startswith("https://hub.example.edu/hub/user-redirect/git-pull?"), url
        assert "urlpath=lab%2Ftree%2F" in url and "notebooks%2F03_svd.ipynb" in url, url
    finally:
        page.context.close()


@pytest.mark.parametrize("page_name", ["notebooks/06_explorer", "notebooks/04_truncation", "notebooks/07_colour"])
def test_slider_repaints_without_kernel(served, browser, browser_report, page_name):
    off_machine = OffMachine()
    page = new_page(browser, off_machine)
    try:
        page.goto(served + page_name + ".html", wait_until="load", timeout=60_000)
        before = press_on_slider(page, "ArrowRight")
        rank = int(before["rank"]) + 1
        wait_for_rank(page, rank)
        note = readouts_note(page)
        assert "need the kernel" in note, note
        assert "run the notebook for the readouts" in page.inner_text(".course-widget-note")
        browser_report.append(f"site: {page_name}: ArrowRight repainted rank {before['rank']} -> {rank}; "
                              f"readouts: {note!r}")
        if page_name.endswith("06_explorer"):
            SCREENSHOTS.mkdir(exist_ok=True)
            page.locator("canvas.svd-picture-canvas").scroll_into_view_if_needed()
            page.evaluate("() => window.scrollBy(0, -120)")
            page.screenshot(path=str(SCREENSHOTS / "site_06_explorer.png"))
        assert not page.errors, "\n".join(page.errors)
        assert not off_machine.refused, f"requests off the machine: {off_machine.refused}"
    finally:
        page.context.close()


def test_landing_screenshot(served, browser):
    page = new_page(browser, OffMachine())
    try:
        page.goto(served + "index.html", wait_until="networkidle")
        assert "The notebooks" in page.inner_text("main")
        assert page.locator("main a[href$='notebooks/06_explorer.html']").count() >= 1
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "site_landing.png"))
        assert Path(SCREENSHOTS / "site_landing.png").stat().st_size < 1_000_000
    finally:
        page.context.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
