"""Build the course website (`make site`): the executed notebooks as a Jupyter Book, offline.

Steps:
1. the widget front ends and MathJax from npm (`npm ci` against site/package-lock.json),
   unless site/node_modules already matches the lock file;
2. a copy of the book in build/site/src: site/_config.yml with the repository URL filled in,
   site/_toc.yml, a landing page made from the README's roadmap, and a copy of every notebook
   with the alt text of its figures (site/alt_text.yml) in the cells' metadata; the committed
   notebooks themselves are not touched and nothing is executed;
3. the front ends copied into the copy's _static/vendor, where the pages load them from;
4. `jupyter-book build`, then checks of the result: every page there, every figure with alt
   text, no page loading anything from another host.

Settings (environment variables, or `make site VAR=...`):
  SITE_REPO_URL        the repository the launch buttons open (default: `git remote get-url origin`,
                       else a placeholder, with a warning)
  SITE_BRANCH          its branch for Binder and JupyterHub (default: main)
  SITE_JUPYTERHUB_URL  a JupyterHub to show a fixed button for (default: none; every page has a
                       field where a reader types theirs)
The last line printed is `site: N pages into PATH`.
"""

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

SITE = Path(__file__).resolve().parent
ROOT = SITE.parent
BUILD = ROOT / "build" / "site"
SRC = BUILD / "src"
HTML = BUILD / "_build" / "html"
PLACEHOLDER_REPO = "https://github.com/YOUR-ORG/svd-image-compression"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# What the pages load, from site/node_modules into _static/vendor (source, destination).
VENDORED = [
    ("requirejs/require.js", "require.js"),
    ("@jupyter-widgets/html-manager/dist", "html-manager"),
    ("anywidget/dist/index.js", "anywidget/index.js"),
    ("mathjax/es5", "mathjax"),
]
# Not needed by the pages: source maps, the non-AMD bundle, MathJax's speech rules and full builds.
VENDOR_SKIP = re.compile(r"(\.map$|^embed\.js$|^libembed|\.(eot|ttf|svg)$|^sre$|-full|^mml-|^tex-mml-|-svg\.js$"
                         r"|^node-main\.js$)")


def repository_url():
    """SITE_REPO_URL, else the git remote `origin` as an https URL, else the placeholder."""
    url = os.environ.get("SITE_REPO_URL", "").strip()
    if not url:
        found = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"],
                               capture_output=True, text=True)
        url = found.stdout.strip() if found.returncode == 0 else ""
    url = re.sub(r"^(ssh://)?git@([^:/]+)[:/]", r"https://\2/", url)
    url = re.sub(r"\.git$", "", url.rstrip("/"))
    if not re.match(r"^https?://[^/]+/.+", url):
        found = f"git remote 'origin' is {url!r}, not a web address" if url else "no git remote 'origin'"
        print(f"site: WARNING: no repository URL (no SITE_REPO_URL, {found}): the launch buttons point at "
              f"the placeholder {PLACEHOLDER_REPO}; set it with `make site SITE_REPO_URL=https://github.com/ORG/REPO`")
        url = PLACEHOLDER_REPO
    return url


def npm_install():
    """site/node_modules from the lock file (npm ci), skipped when it already matches."""
    lock = SITE / "package-lock.json"
    stamp = SITE / "node_modules" / ".site-lock.json"
    if stamp.exists() and stamp.read_bytes() == lock.read_bytes():
        return
    if shutil.which("npm") is None:
        sys.exit("site: npm is needed to fetch the widget front ends (Debian: apt-get install npm)")
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                   cwd=SITE, check=True)
    shutil.copyfile(lock, stamp)


def copy_vendored(vendor):
    """The front ends into vendor/ (served as _static/vendor), with their licences."""
    shutil.copyfile(SITE / "widgets-config.js", vendor / "widgets-config.js")
    for source, dest in VENDORED:
        source, dest = SITE / "node_modules" / source, vendor / dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, ignore=lambda _dir, names: [n for n in names if VENDOR_SKIP.search(n)])
        else:
            shutil.copyfile(source, dest)
    for package in ("requirejs", "@jupyter-widgets/html-manager", "anywidget", "mathjax"):
        licence = next((SITE / "node_modules" / package).glob("LICEN[CS]E*"), None)
        if licence:
            dest = vendor / "licences" / f"{package.replace('/', '_')}-{licence.name}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(licence, dest)


def section(text, heading):
    """The body of the README section `## heading`, up to the next `## `."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if not match:
        sys.exit(f"site: README.md has no section '## {heading}' for the landing page")
    return match.group(1).strip()


def landing_page():
    """index.md: the README's title and opening, its roadmap (the notebook table) and what you learn."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    title = re.search(r"^# (.+)$", readme, flags=re.M).group(1)
    opening = readme.split("\n## ", 1)[0].split("\n", 1)[1].strip()
    opening = re.sub(r"\n\*Generated by .*?\*\n", "\n", opening)
    roadmap = section(readme, "The notebooks")
    learn = section(readme, "What you will learn")
    return (f"# {title}\n\n{opening}\n\n## The notebooks\n\n{roadmap}\n\n"
            f"## What you will learn\n\n{learn}\n\n"
            "## Run the notebooks\n\n"
            "Every page is the executed notebook: read it here, or run it with the buttons at the top of "
            "the page (Binder, or your university's JupyterHub). On your own machine: clone the repository "
            "and run `make lab`. The sliders of notebooks 04, 06 and 07 move the picture on these pages "
            "too, without a kernel; their readouts need a running notebook.\n")


def figure_cells(notebook):
    """(index, cell) of every code cell with an image output shown as a picture (not a widget)."""
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if any(key.startswith("image/") for key in data) and WIDGET_VIEW not in data:
                yield index, cell
                break


def copy_notebooks(dest, alt_text, files_url):
    """The notebooks, each figure cell given its alt text and each link to a repository file outside
    notebooks/ (such as ../README.md) pointed at the repository (the committed notebooks are not touched)."""
    problems = []
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                cell["source"] = re.sub(r"\]\(\.\./([^)\s]+)\)", rf"]({files_url}/\1)", "".join(cell["source"]))
        entries = alt_text.get(path.stem, [])
        used = set()
        for index, cell in figure_cells(notebook):
            source = "".join(cell["source"])
            found = [e for e in entries if e["cell"] in source]
            if len(found) != 1:
                problems.append(f"{path.name} cell {index} ({source.splitlines()[0][:60]!r}): "
                                f"{len(found)} entries of site/alt_text.yml match it")
                continue
            used.add(found[0]["cell"])
            cell.setdefault("metadata", {}).setdefault("mystnb", {})["image"] = {"alt": found[0]["alt"].strip()}
        problems += [f"{path.name}: the alt text for {e['cell']!r} matches no figure cell"
                     for e in entries if e["cell"] not in used]
        (dest / path.name).write_text(json.dumps(notebook, ensure_ascii=False, indent=1), encoding="utf-8")
    if problems:
        sys.exit("site: site/alt_text.yml does not fit the notebooks:\n  " + "\n  ".join(problems))


def write_book(repo_url):
    if SRC.exists():
        shutil.rmtree(SRC)
    (SRC / "notebooks").mkdir(parents=True)
    config = yaml.safe_load((SITE / "_config.yml").read_text(encoding="utf-8"))
    branch = os.environ.get("SITE_BRANCH", "").strip() or "main"
    config["repository"].update(url=repo_url, branch=branch)
    hub = os.environ.get("SITE_JUPYTERHUB_URL", "").strip()
    config["launch_buttons"]["jupyterhub_url"] = hub
    config["sphinx"]["config"].update(course_repo_url=repo_url, course_branch=branch)
    (SRC / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    shutil.copyfile(SITE / "_toc.yml", SRC / "_toc.yml")
    shutil.copytree(SITE / "_static", SRC / "_static")
    shutil.copytree(SITE / "_ext", SRC / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    (SRC / "_vendor" / "vendor").mkdir(parents=True)
    copy_vendored(SRC / "_vendor" / "vendor")
    (SRC / "index.md").write_text(landing_page(), encoding="utf-8")
    (SRC / "media").mkdir()
    for image in re.findall(r"\]\((media/[^)]+)\)", (SRC / "index.md").read_text(encoding="utf-8")):
        shutil.copyfile(ROOT / image, SRC / image)
    alt_text = yaml.safe_load((SITE / "alt_text.yml").read_text(encoding="utf-8"))
    copy_notebooks(SRC / "notebooks", alt_text, f"{repo_url}/blob/{branch}")


def check_pages():
    """Every page built, every figure with alt text, and nothing loaded from another host."""
    pages = [HTML / "index.html"] + [HTML / "notebooks" / f"{p.stem}.html" for p in NOTEBOOKS]
    problems = [f"missing page {p}" for p in pages if not p.exists()]
    for page in pages:
        if not page.exists():
            continue
        text = page.read_text(encoding="utf-8")
        # Scripts (the widget state holds the widgets' own source) are not part of the page's HTML.
        markup = re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.S)
        for tag in re.findall(r"<img\b[^>]*>", markup):
            alt = re.search(r'\balt="([^"]*)"', tag)
            alt = html.unescape(alt.group(1)) if alt else ""
            if not alt or alt.startswith("<Figure") or re.fullmatch(r"[0-9a-f]{64}\.\w+|.*\.(png|svg|jpg)", alt):
                problems.append(f"{page.name}: an image without real alt text: {tag[:120]}")
        for url in re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="(https?://[^"]+)"', text):
            problems.append(f"{page.name}: loads {url}")
    if problems:
        sys.exit("site: the built pages have problems:\n  " + "\n  ".join(problems))
    return pages


def main():
    start = time.perf_counter()
    repo_url = repository_url()
    npm_install()
    write_book(repo_url)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jupyter_book), "build", str(SRC), "--path-output", str(BUILD), "--builder", "html",
                    "--warningiserror", "--keep-going", "--quiet"], check=True)
    pages = check_pages()
    (HTML / ".nojekyll").touch()  # GitHub Pages: serve _static and _images as they are
    total = sum(f.stat().st_size for f in HTML.rglob("*") if f.is_file())
    print(f"site: repository {repo_url}; built in {time.perf_counter() - start:.0f} s, "
          f"{total / 1e6:.1f} MB in all")
    print(f"site: {len(pages)} pages into {HTML.relative_to(Path.cwd()) if HTML.is_relative_to(Path.cwd()) else HTML}")


if __name__ == "__main__":
    main()
