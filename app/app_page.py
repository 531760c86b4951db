"""The page around the explorer in the app (app/explorer.ipynb, served by `make app`).

- ``projector_mode()``: whether the URL asks for projector mode (``?projector=1``); Voila gives
  the kernel the page's query string as the QUERY_STRING environment variable. With Voila's
  preheated kernels (``make app`` starts one ahead) the kernel has run the imports already and
  waits here for the page's request (``voila.utils.get_query_string``).
- ``page(explorer, projector)``: the explorer with the app's style (scoped to ``.svd-app``), a
  link that switches projector mode on or off, and the keyboard on the rank slider.

Projector mode is larger text, readouts of 22 px, and the spectrum drawn with larger labels
(``spectrum_scale``); the picture gives up the room, so the page still fits 1280 × 800.
"""

import os
import sys
import urllib.parse

import anywidget
import ipywidgets as widgets
import traitlets

import explorer.colour  # noqa: F401  (PyTorch and the explorer loaded before the page is asked for)

#: How much larger the spectrum's text is in projector mode (tick labels 7 pt -> about 17 px).
PROJECTOR_SPECTRUM_SCALE = 1.8

_STYLE = """
<style>
/* Voila's page: no margins, so that the explorer has the whole 1280 x 800 screen. */
body { margin: 0 !important; padding: 0 !important; }
#rendered_cells { padding: 4px 12px !important; }
#rendered_cells h1 { font-size: 22px; margin: 2px 0 4px 0; }
.svd-app .jupyter-widgets { margin-top: 1px; margin-bottom: 1px; }
.svd-app-bar { font-size: 14px; }
.svd-app-bar a { margin-left: 12px; color: #0b5cad; text-decoration: underline; }
/* The picture: as large as the screen's height leaves it, never pushing the page past it. */
.svd-app canvas.svd-picture-canvas, .svd-app canvas[data-rank] {
  width: auto !important; height: auto !important; max-width: 100% !important;
  max-height: calc(100vh - var(--svd-app-above, 330px)) !important;
}
.svd-app .rank-explorer-spectrum { max-height: calc(100vh - var(--svd-app-spectrum-above, 520px)); }
.svd-app { --svd-app-above: 320px; --svd-app-spectrum-above: 530px; }

/* Projector mode: text readable at 3 m. */
.svd-app-projector { --svd-app-above: 400px; --svd-app-spectrum-above: 510px; }
.svd-app-projector, .svd-app-projector .widget-label, .svd-app-projector .widget-readout,
.svd-app-projector .widget-label-basic, .svd-app-projector button, .svd-app-projector select,
.svd-app-projector input, .svd-app-projector .rank-explorer-status div,
.svd-app-projector .svd-upload, .svd-app-projector .svd-upload * {
  font-size: 18px !important;
}
.svd-app-projector .widget-label, .svd-app-projector .widget-readout { line-height: 28px !important; }
.svd-app-projector .widget-inline-hbox, .svd-app-projector .widget-toggle-buttons,
.svd-app-projector button, .svd-app-projector select, .svd-app-projector input {
  height: auto !important; min-height: 30px;
}
.svd-app-projector .widget-label { width: auto !important; min-width: 80px; }
.svd-app-projector .rank-explorer-readouts table, .svd-app-projector .rank-explorer-readouts td {
  font-size: 22px !important; line-height: 1.25 !important;
}
.svd-app-projector .rank-explorer-factors { font-size: 16px !important; }
.svd-app-projector .svd-app-bar { font-size: 20px; }
.svd-app-projector .widget-button, .svd-app-projector .widget-toggle-button { width: auto !important; padding: 0 10px; }
.svd-app-projector .widget-vbox:has(> .rank-explorer-spectrum) { max-width: 660px !important; flex: 2 1 600px !important; }
.svd-app-projector .rank-explorer-readouts td { white-space: nowrap; }
</style>
"""

_KEYS_JS = """
// Keyboard for the class: focus goes to the rank slider's handle when the page opens, and
// an arrow, Home, End or Page key pressed while nothing else has focus goes to it too.
const KEYS = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"]);
function handle() {
  return document.querySelector(".svd-app .rank-explorer-slider .noUi-handle");
}
function render({ el }) {
  el.style.display = "none";
  let tries = 0;
  const focus = () => {
    const h = handle();
    if (h) h.focus({ preventScroll: true });
    else if (tries++ < 200) setTimeout(focus, 50);
  };
  focus();
  const onKey = (event) => {
    const active = document.activeElement;
    if (!KEYS.has(event.key) || (active && active !== document.body)) return;
    const h = handle();
    if (!h) return;
    event.preventDefault();
    h.focus({ preventScroll: true });
    h.dispatchEvent(new KeyboardEvent("keydown", { key: event.key, code: event.code, bubbles: true }));
  };
  document.addEventListener("keydown", onKey);
  return () => document.removeEventListener("keydown", onKey);
}
export default { render };
"""


class _SliderKeys(anywidget.AnyWidget):
    """Puts the keyboard on the rank slider (no view of its own)."""

    _esm = _KEYS_JS
    ready = traitlets.Bool(True).tag(sync=True)


def projector_mode(query: str | None = None) -> bool:
    """Whether the query string (default: Voila's QUERY_STRING) asks for projector mode.

    >>> projector_mode("projector=1"), projector_mode("projector=0"), projector_mode("")
    (True, False, False)
    """
    if query is None:
        try:
            from voila.utils import get_query_string  # waits for the request in a preheated kernel
        except ImportError:  # run outside Voila
            query = os.environ.get("QUERY_STRING", "")
        else:
            if os.environ.get("VOILA_PREHEAT") == "True":  # in Voila's log: the next page opens fast
                print("app: preheated kernel ready, waiting for a page", file=sys.__stderr__, flush=True)
            query = get_query_string() or ""
    value = urllib.parse.parse_qs(query).get("projector", ["0"])[-1].strip().lower()
    return value in ("1", "true", "yes", "on")


def page(explorer, projector: bool = False) -> widgets.VBox:
    """The app's page: a link to switch projector mode, then the explorer, with the app's style."""
    switch = ("<a href='?' title='normal text size'>normal size</a>" if projector else
              "<a href='?projector=1' title='large text for the back row'>projector mode</a>")
    bar = widgets.HTML(_STYLE + f"<div class='svd-app-bar'>"
                       f"Move the rank with ← →, Home and End.{switch}</div>")
    box = widgets.VBox([bar, explorer.widget, _SliderKeys()], layout=widgets.Layout(width="100%"))
    box.add_class("svd-app")
    if projector:
        box.add_class("svd-app-projector")
    return box
