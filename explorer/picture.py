"""Picture: a widget that paints a picture into a <canvas>, pixel for pixel.

Two ways to get the picture there:

* **factors** (``show_factors``, then ``live = True``): the kernel sends the compressed form
  once, U·Σ and Vᵀ averaged down to the size shown (float16, one plane for grey, Y, Cb and
  Cr for colour), k(m + n) numbers a plane. The page rebuilds the rank-k picture itself
  (``picture.js``): it keeps the running sum and adds or subtracts the rank-one layers that
  change when the rank changes, starting from the nearest partial sum it keeps when that is
  quicker. The rank comes from ``live_rank`` (and ``live_chroma``), which the explorer links
  to its sliders in the browser (``jsdlink``), so a move never waits for the kernel and the
  slider still works when there is no kernel (shut down, or a static HTML page). The kernel
  then only reports ``rank`` (and ``chroma_rank``), the rank its readouts are for: the page
  says when they are for an earlier rank, and when they need the kernel.
* **pixels** (``show``): the kernel sends raw bytes (1 byte a pixel for grey, 3 for RGB),
  scaled down in the kernel (``cv2.INTER_AREA``) to the room the browser reports. Used for
  the error and original views, the "1:1 pixels" view (every pixel of the full image), and
  any picture that is not a rank-k approximation.

How the page sums the layers (``paint_with``): with WebGL2 where the browser has it on a
hardware GPU (a fragment shader sums the first k layers for every pixel in one pass, from the
factors uploaded once as float textures), and with the typed-array JavaScript running sum
otherwise: no WebGL2, a context that cannot be made or is lost, or a software renderer
(SwiftShader, llvmpipe), where a shader summing k layers a pixel is slower than one layer a key
press in JavaScript. Both round as ``to_uint8`` does. The canvas says which painted
(``data-path``: "webgl2" or "js", and ``data-path-why`` when it is "js").

The browser reports how much room the view has (``view_size``, in device pixels). The canvas
carries ``data-rank``, the rank of the picture painted, set when it is painted (the browser
tests time it).

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

    # -- the picture rebuilt in the page from its factors (see show_factors) --
    #: Paint the picture from ``factors`` at ``live_rank`` (unless 1:1 is on), not from ``pixels``.
    live = traitlets.Bool(False).tag(sync=True)
    #: For each plane: U·Σ transposed (rank x rows), then Vᵀ (rank x columns), little-endian.
    factors = traitlets.Bytes(b"").tag(sync=True)
    #: [planes, rank, rows, columns] of ``factors`` (planes: 1 grey, 3 for Y, Cb, Cr).
    factor_shape = traitlets.List(traitlets.Int(), default_value=[0, 0, 0, 0]).tag(sync=True)
    factor_dtype = traitlets.Unicode("float16").tag(sync=True)
    #: RGB (0-255) = T @ (Y, Cb, Cr) + b, as the 3 rows of [T | b]; for grey, 255 x the plane.
    to_rgb = traitlets.List(traitlets.Float(), default_value=[]).tag(sync=True)
    #: The rank the page paints from factors: linked to the slider in the browser.
    live_rank = traitlets.Int(1).tag(sync=True)
    #: The chroma rank the page paints (colour): linked to the chroma slider in the browser.
    live_chroma = traitlets.Int(1).tag(sync=True)
    #: The chroma rank the kernel's readouts are for (colour), next to ``rank``.
    chroma_rank = traitlets.Int(0).tag(sync=True)
    #: How many layers the page may not have (a saved page keeps fewer than the slider offers).
    full_rank = traitlets.Int(0).tag(sync=True)
    #: How the page sums the layers: "auto" (WebGL2 on a hardware GPU, else JavaScript),
    #: "webgl2" (WebGL2 wherever the browser has it, even a software renderer: for tests and
    #: measurements) or "js" (always the JavaScript running sum).
    paint_with = traitlets.Enum(("auto", "webgl2", "js"), "auto").tag(sync=True)

    #: How many pictures were shown (not synced: for code that waits for the next picture).
    shows = traitlets.Int(0)

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
        try:
            self._show(fitted)
        finally:
            self.shows += 1

    def _show(self, fitted):
        image = self._image
        if self.live and not self.one_to_one:  # the page rebuilds it: only say which rank this is
            with self.hold_sync():
                self.image_width, self.image_height = image.shape[1], image.shape[0]
                self.rank = self._rank
            return
        size = self.fit_size(image.shape)
        fits = fitted is not None and size is not None and fitted.shape == (*size, *image.shape[2:])
        self._push(fitted if fits else None)

    def show_factors(self, US, Vh, *, to_rgb=None, full_rank=None, dtype="float16"):
        """Send the factors the page rebuilds the picture from: ``US`` and ``Vh``, one
        (rows x r) and (r x columns) array per plane (a list of 1 for grey, 3 for Y, Cb, Cr on
        the 0-1 scale), and ``to_rgb``, the 3 x 4 matrix [T | b] that turns (Y, Cb, Cr) into
        RGB on the 0-255 scale. ``full_rank``: the most ranks the slider offers (default r).
        Returns the bytes sent.

        >>> picture = Picture()
        >>> picture.show_factors([np.ones((30, 2))], [np.ones((2, 40))])
        280
        >>> picture.factor_shape, picture.width, picture.height, picture.channels
        ([1, 2, 30, 40], 40, 30, 1)
        """
        if dtype not in ("float16", "float32"):
            raise ValueError(f"factors are sent as float16 or float32, not {dtype}")
        (rows, r), cols = US[0].shape, Vh[0].shape[1]
        if len(US) != len(Vh) or len(US) not in (1, 3) or any(
                u.shape != (rows, r) or v.shape != (r, cols) for u, v in zip(US, Vh, strict=True)):
            raise ValueError("show_factors expects 1 or 3 planes of U S (rows x r) and Vh (r x columns), "
                             f"got {[u.shape for u in US]} and {[v.shape for v in Vh]}")
        if len(US) == 3 and (to_rgb is None or np.shape(to_rgb) != (3, 4)):
            raise ValueError("colour factors need to_rgb, the 3 x 4 matrix [T | b] from Y, Cb, Cr to RGB")
        parts = []
        for u, v in zip(US, Vh, strict=True):
            parts += [np.ascontiguousarray(np.asarray(u).T, "<f2" if dtype == "float16" else "<f4"),
                      np.ascontiguousarray(v, "<f2" if dtype == "float16" else "<f4")]
        data = b"".join(part.tobytes() for part in parts)
        with self.hold_sync():  # one message
            self.factor_dtype = dtype
            self.to_rgb = [] if to_rgb is None else [float(x) for x in np.asarray(to_rgb).ravel()]
            self.factor_shape = [len(US), r, rows, cols]
            self.full_rank = r if full_rank is None else int(full_rank)
            self.factors = data
            self.width, self.height, self.channels = cols, rows, 1 if len(US) == 1 else 3
            if self._image is not None:
                self.fitted = (rows, cols) != self._image.shape[:2]
        return len(data)

    def fit_size(self, shape, *, one_to_one=None):
        """(rows, columns) that a picture of ``shape`` is scaled down to in the view, or
        None when it is shown as it is (it fits, the view size is not known, or 1:1 is on;
        ``one_to_one=False``: as if it were off)."""
        width, height = self.view_size
        m, n = shape[:2]
        one_to_one = self.one_to_one if one_to_one is None else one_to_one
        if one_to_one or width <= 0 or height <= 0 or (n <= width and m <= height):
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
    def image(self):
        """The whole picture last shown (uint8), which the PNG copy and the 1:1 view use."""
        return self._image

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
        if self._image is None or (self.live and not self.one_to_one):
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
