"""The course site's own Sphinx extension: a "run this notebook" box at the top of every page.

The box has a Binder link (JupyterLab, that notebook), a field for the reader's own JupyterHub
(filled in by _static/course.js into an nbgitpuller link), and says that Colab is not supported.
On pages with saved widgets it says what works without a kernel. site/build.py sets
course_repo_url and course_branch.
"""

from html import escape
from pathlib import Path
from urllib.parse import quote, urlparse

COLAB_NOTE = (
    "Google Colab is not supported: the notebooks import this repository's <code>helpers.py</code> and read "
    "its <code>media/</code> folder, and Colab opens a notebook without the repository around it."
)
WIDGET_NOTE = (
    "The sliders on this page work without a kernel: the page rebuilds the picture from the factors saved "
    "with it. The readouts (PSNR, SSIM, bytes) and the other controls need the kernel: run the notebook "
    "for the readouts."
)


def binder_url(repo_url, branch, path):
    """mybinder.org opening `path` in JupyterLab, as sphinx-book-theme builds its link."""
    parts = urlparse(repo_url)
    org_repo = parts.path.strip("/")
    if parts.netloc == "github.com":
        base = f"https://mybinder.org/v2/gh/{org_repo}/{branch}"
    elif parts.netloc == "gitlab.com":
        base = f"https://mybinder.org/v2/gl/{quote(org_repo, safe='')}/{branch}"
    else:
        base = f"https://mybinder.org/v2/git/{quote(repo_url, safe='')}/{branch}"
    return f"{base}?urlpath=lab/tree/{path}"


def launch_box(app, pagename, has_widgets):
    repo_url, branch = app.config.course_repo_url, app.config.course_branch
    path = f"{pagename}.ipynb" if pagename.startswith("notebooks/") else "notebooks/00_start_here.ipynb"
    what = "this notebook" if pagename.startswith("notebooks/") else "the series (00 Start here)"
    repo_name = urlparse(repo_url).path.strip("/").split("/")[-1]
    widget_note = f'<p class="course-widget-note">{WIDGET_NOTE}</p>' if has_widgets else ""
    return f"""
<aside class="course-launch" aria-label="Run {what}" data-repo="{escape(repo_url)}"
       data-branch="{escape(branch)}" data-repo-name="{escape(repo_name)}" data-path="{escape(path)}">
  <p><strong>Run {what}:</strong>
    <a class="course-launch-binder" href="{escape(binder_url(repo_url, branch, path))}"
       target="_blank" rel="noopener">on Binder (JupyterLab)</a>,
    or on your JupyterHub:</p>
  <form class="course-hub-form">
    <label>JupyterHub address <input class="course-hub-url" type="url" required
           placeholder="https://hub.example.edu"></label>
    <button type="submit">Open there</button>
  </form>
  <p class="course-colab-note">{COLAB_NOTE}</p>
  {widget_note}
</aside>
"""


def add_launch_box(app, pagename, templatename, context, doctree):
    # Jupyter Book always loads sphinx-thebe, which declares THEBE_JS_URL twice on a page (an
    # error in the console) and would fetch thebe from unpkg.com on a click. The site has no thebe
    # button (launch_buttons.thebe is false), so its scripts are left out of every page.
    context["script_files"] = [js for js in context.get("script_files", [])
                               if "thebe" not in str(js.filename or "") and "THEBE" not in str(js.attributes.get("body", ""))]
    if doctree is None or "body" not in context:
        return  # search and index pages: no notebook to run
    has_widgets = "application/vnd.jupyter.widget-state+json" in context["body"] or any(
        "widget-state" in str(js) for js in context.get("script_files", []))
    context["body"] = launch_box(app, pagename, has_widgets) + context["body"]


def add_vendor_folder(app, config):
    """Serve _vendor (the front ends site/build.py copied there) as _static/vendor."""
    config.html_static_path.append(str(Path(app.srcdir) / "_vendor"))


def setup(app):
    app.add_config_value("course_repo_url", "", "html")
    app.add_config_value("course_branch", "main", "html")
    app.connect("config-inited", add_vendor_folder)
    app.connect("html-page-context", add_launch_box)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
