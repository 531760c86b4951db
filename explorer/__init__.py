"""The rank explorer: a slider over the ranks of one image's SVD, with the live picture.

It is reached from the notebooks as ``helpers.RankExplorer`` (re-exported lazily);
the lesson code in ``helpers.py`` never imports it.

- ``explorer.cache``: ``RankCache``, the SVD kept as partial sums so that any rank is quick;
- ``explorer.render``: the spectrum panel with its marker (PNG), the readout table;
- ``explorer.picture`` and ``explorer.upload``: the canvas picture and the upload control;
- ``explorer.widget``: ``RankExplorer``, the ipywidgets front end;
- ``explorer.colour``: ``ColourExplorer``, the explorer that keeps colour (luma and chroma sliders).
"""

from explorer.cache import CHECKPOINT_BUDGET, EXPLORER_THREADS, RankCache
from explorer.colour import ColourExplorer
from explorer.widget import ERROR_GAIN, QUICK_RANKS, SETTLE_SECONDS, RankExplorer

__all__ = [
    "CHECKPOINT_BUDGET", "ERROR_GAIN", "EXPLORER_THREADS", "QUICK_RANKS", "SETTLE_SECONDS",
    "RankCache", "RankExplorer", "ColourExplorer",
]
