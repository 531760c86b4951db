"""Picture: a widget that paints a uint8 image into a <canvas>, pixel for pixel.

The explorer's picture changes on every slider move, so it skips PNG: the kernel
sends the raw bytes (1 byte a pixel for grey, 3 for RGB) and the browser copies
them into a canvas. The browser reports how much room the view has (in device
pixels); a larger image is scaled down in the kernel (``cv2.INTER_AREA``) to fit,
or comes already scaled from the explorer (``show(..., fitted=...)``), and is painted
at one canvas pixel per screen pixel. So what you see is exactly what
was computed, at the resolution it is shown, and a 4-megapixel image sends about
0.5 MB a move instead of 4 MB. The "1:1 pixels" button shows every pixel of the
full image (scroll to move around). The canvas carries ``data-rank``, the rank of
the picture painted, set when it is painted (the browser tests time it).

Written with anywidget: plain JavaScript in ``picture.js``, no front-end build.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import cv2
import numpy as np
import traitlets

_HERE = Path(__file__).resolve().parent

_CSS = """
.svd-picture { width: 100%; min-width: 0; }
.svd-picture-canvas { display: block; }
.svd-picture-scroll { overflow: auto; max-height: 80vh; max-width: 100%; }
.svd-picture-bar { display: flex; align-items: center; gap: 8px; font-size: 12px; min-height: 0; }
.svd-picture-bar button { height: 24px; }
.svd-picture-note { color: #555; }
"""


class Picture(anywidget.AnyWidget):
    """A lossless picture in a <canvas>, fitted to its view in the kernel.

    >>> picture = Picture()
    >>> picture.show(np.zeros((30, 40), np.uint8), rank=5)
    >>> picture.width, picture.height, picture.rank, len(picture.pixels)
    (40, 30, 5, 1200)
    """

    _esm = _HERE / "picture.js"
    _css = _CSS

    #: The bytes painted: height x width x channels, row by row.
    pixels = traitlets.Bytes(b"").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(0).tag(sync=True)
    channels = traitlets.Int(1).tag(sync=True)
    #: Shown on the canvas as data-rank once painted (0: no rank).
    rank = traitlets.Int(0).tag(sync=True)
    #: True when the pixels sent are the image scaled down to fit the view.
    fitted = traitlets.Bool(False).tag(sync=True)
    #: Size of the whole image, before fitting.
    image_width = traitlets.Int(0).tag(sync=True)
    image_height = traitlets.Int(0).tag(sync=True)
    #: Room for the picture in device pixels [width, height], reported by the browser.
    view_size = traitlets.List(traitlets.Int(), default_value=[0, 0]).tag(sync=True)
    #: Show every pixel of the image, unscaled (the "1:1 pixels" button).
    one_to_one = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._image = None
        self.observe(lambda change: self._push(), ["view_size", "one_to_one"])

    def show(self, image, rank=0, *, fitted=None):
        """Paint ``image``, a uint8 array (m, n) grey or (m, n, 3) RGB; ``rank`` becomes data-rank.

        The array is kept (not copied) so that a new view size can be served:
        call ``show`` again after changing it in place.

        ``fitted``: the picture already scaled to ``fit_size(image.shape)`` by the caller
        (the explorer computes it from scaled-down SVD factors, which is quicker); it is
        sent instead of scaling ``image`` here, if it has that size.
        """
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise ValueError(f"Picture.show expects a uint8 array (m, n) or (m, n, 3), "
                             f"got {image.dtype} with shape {image.shape}")
        self._image, self._rank = image, int(rank)
        size = self.fit_size(image.shape)
        fits = fitted is not None and size is not None and fitted.shape == (*size, *image.shape[2:])
        self._push(fitted if fits else None)

    def fit_size(self, shape):
        """(rows, columns) that a picture of ``shape`` is scaled down to in the view, or
        None when it is shown as it is (it fits, the view size is not known, or 1:1 is on)."""
        width, height = self.view_size
        m, n = shape[:2]
        if self.one_to_one or width <= 0 or height <= 0 or (n <= width and m <= height):
            return None
        scale = min(width / n, height / m)
        return max(1, round(m * scale)), max(1, round(n * scale))

    def fit(self, image):
        """``image`` scaled down to fit the view (unless 1:1 is on), and whether it was scaled."""
        size = self.fit_size(image.shape)
        if size is None:
            return image, False
        return cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA), True

    @property
    def value(self):
        """The whole picture as lossless PNG bytes (like ``ipywidgets.Image.value``).

        Encoded when asked for, never on a slider move: it is the static copy that
        GitHub and nbviewer show, and what tests decode.
        """
        return self.png()

    def png(self):
        """The whole picture as lossless PNG bytes (see ``value``)."""
        image = self._image
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".png", image)
        if not ok:  # pragma: no cover - OpenCV encodes any uint8 array as PNG
            raise ValueError("OpenCV could not encode the picture as PNG")
        return encoded.tobytes()

    def _push(self, fitted=None):
        if self._image is None:
            return
        shown, fitted = (fitted, True) if fitted is not None else self.fit(self._image)
        m, n = self._image.shape[:2]
        with self.hold_sync():  # one message: the browser paints once, with the right rank
            self.width, self.height = shown.shape[1], shown.shape[0]
            self.channels = 1 if shown.ndim == 2 else 3
            self.image_width, self.image_height = n, m
            self.fitted = fitted
            self.pixels = np.ascontiguousarray(shown).tobytes()
            self.rank = self._rank
