"""The rank explorer: a slider over the ranks of one image's SVD, with the live picture.

It is reached from the notebooks as ``helpers.RankExplorer`` (re-exported lazily);
the lesson code in ``helpers.py`` never imports it.

- ``explorer.cache``: ``RankCache``, the SVD kept as partial sums so that any rank is quick;
- ``explorer.render``: the spectrum panel with its marker (PNG), the readout table;
- ``explorer.picture`` and ``explorer.upload``: the canvas picture and the upload control;
- ``explorer.widget``: ``RankExplorer``, the ipywidgets front end;
- ``explorer.colour``: ``ColourExplorer``, the explorer that keeps colour (luma and chroma sliders);
- ``explorer.server``: a Jupyter server setting that keeps the slider quick (``jupyter_config/``).

The names below are imported when first used, so that the Jupyter server, which imports
``explorer.server``, never loads PyTorch.
"""

import importlib

_WHERE = {
    "CHECKPOINT_BUDGET": "cache", "EXPLORER_THREADS": "cache", "RankCache": "cache",
    "ColourExplorer": "colour",
    "ERROR_GAIN": "widget", "QUICK_RANKS": "widget", "SAVED_FACTOR_BYTES": "widget", "SETTLE_SECONDS": "widget", "RankExplorer": "widget",
}

__all__ = list(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"explorer.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_WHERE])
