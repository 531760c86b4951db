"""RankExplorer: the rank slider with the live picture, the error view, the spectrum and the readouts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import functools
import gc
import html
import logging
import math
import operator

import cv2
import numpy as np

from explorer.cache import RankCache, _now, exact_cache_soon
from explorer.picture import Picture
from explorer.render import _fmt_seconds, _readouts_html, _SpectrumPanel
from explorer.upload import Upload
from helpers import (
    BYTES_PER_VALUE,
    MAX_PIXELS,
    SAMPLES,
    ImageError,
    break_even_rank,
    check_image,
    check_rank,
    read_image,
    sample_path,
    ssim,
    stored_bytes,
    stored_values,
)

_log = logging.getLogger(__name__)

#: Ranks of the explorer's quick buttons: the ranks the original project showed.
QUICK_RANKS = (500, 250, 100, 50, 25, 10)

#: The explorer's error view shows |A - A_k| on the 0-255 scale multiplied by
#: this gain and clipped: black is no error, white is off by 255 / 4 = 64 grey
#: levels (a quarter of the range) or more. The scale is fixed, so the error
#: image fades as k grows.
ERROR_GAIN = 4

#: What white means in the error view: off by this many grey levels or more.
_ERROR_WHITE = math.ceil(255 / ERROR_GAIN)

#: Seconds the slider must rest before the explorer computes SSIM (slow on big images).
SETTLE_SECONDS = 0.3

#: Rows of the picture per piece when the explorer computes SSIM (``ssim_in_strips``):
#: scikit-image holds about 15 float32 copies of what it is given, 270 MB at 4 megapixels.
SSIM_STRIP_ROWS = 256

#: The half-width of SSIM's 7 x 7 window (scikit-image's default): each SSIM value looks
#: this many rows up and down, and the mean leaves out this many rows at each edge.
_SSIM_HALO = 3

#: Bytes of float16 factors the page gets while no browser has said how big the view is (a
#: notebook executed by nbconvert, whose widget state is saved with it): the picture at full
#: size, with as many ranks as fit. A browser that reports its view gets every rank at that size.
SAVED_FACTOR_BYTES = 256 * 2**10


class RankExplorer:
    """Interactive rank explorer: a rank slider with the live reconstruction,
    the error image, the spectrum with a marker at k and a table of readouts.

    Display the object (last line of a cell) to show it; ``explorer.widget`` is
    the ipywidgets box. With ``sources=True`` a dropdown picks a sample and an
    upload button loads your own image (through ``load_greyscale``, so large
    images are downscaled and bad files give a clear message in the status line).
    ``sources=False`` gives the compact version: rank controls, pictures,
    spectrum and readouts.

    How it stays fast: the page rebuilds the picture. The SVD is computed once per
    image (``RankCache``) and the page gets U·Σ and Vᵀ once, averaged down to the size
    shown, up to the slider's largest rank (float16: k(m + n) numbers, not m·n a
    move). The slider is linked to the picture in the browser, so a move repaints at
    once, adding or removing rank-one layers in the page, and keeps working with no
    kernel (``explorer.picture``). The kernel then computes the readouts: it rebuilds
    A_k from a cached partial sum with one small matmul and converts it with
    ``to_uint8``, for PSNR and for the 1:1 view and the PNG copy; the page says when
    the readouts are for an earlier rank. The spectrum marker is blitted onto a cached
    figure. While you drag, moves that arrive during a render are merged: only the
    latest rank is computed. SSIM, the one slow readout, is computed once the slider
    has rested for ``SETTLE_SECONDS``. Before a browser has said how big the view is
    (a notebook executed and saved by nbconvert), the page gets the factors at full
    size, as many ranks as fit in ``SAVED_FACTOR_BYTES``.

    The first picture after an upload or a sample switch is fast too. In a running
    kernel, an image of at least ``APPROXIMATE_FROM_PIXELS`` pixels is shown first
    from the ``APPROXIMATE_RANK`` leading triplets of ``randomized_svd`` (about
    0.2 s at 4 megapixels instead of 2 to 3 s), with the slider over ranks 1 to
    ``APPROXIMATE_RANK`` only; the exact SVD runs on a background thread, and when
    it is in, the slider gets every rank and the picture and readouts are redrawn
    from the exact factors. The status line, the caption and the readouts say which
    factors the picture comes from. Outside a running event loop (scripts, tests)
    and on the first image, the exact SVD is computed at once, as before.

    Parameters
    ----------
    image : uint8 2-D array, optional
        The picture to explore; if omitted, the sample named ``sample``.
    sample : str
        Sample to start with (a key of ``SAMPLES``) when ``image`` is None.
    rank : int
        Starting rank, clamped to 1..min(m, n).
    sources : bool
        Show the sample dropdown and the upload button.
    spectrum_scale : float
        Text of the spectrum panel this many times larger, in a panel of the same size
        (the app's projector mode, app/explorer.ipynb).

    >>> explorer = RankExplorer(sample="camera", rank=20)
    >>> explorer.set_rank(30)
    30
    >>> explorer.readouts["k"], explorer.readouts["stored_values"]
    (30, 30750)
    """

    #: Renders start at least this far apart while you drag (60 per second at most).
    FRAME_SECONDS = 1 / 60

    #: In a running kernel, an upload or a sample switch of at least this many pixels
    #: is shown first from a randomized SVD of ``APPROXIMATE_RANK`` triplets, while the
    #: exact SVD runs in the background (below it the exact SVD and cache take about 0.1 s).
    APPROXIMATE_FROM_PIXELS = 500_000
    APPROXIMATE_RANK = 100

    VIEWS = (("reconstruction", "reconstruction"), (f"error ×{ERROR_GAIN}", "error"), ("original", "original"))

    def __init__(self, image: np.ndarray | None = None, *, sample: str = "camera", rank: int = 50,
                 sources: bool = True, spectrum_scale: float = 1.0):
        import ipywidgets as widgets

        self.spectrum_scale = spectrum_scale  # text size of the spectrum panel (the app's projector mode)
        self.sources = sources
        self.renders = 0  # how many pictures were drawn (coalescing merges requests)
        self.timings = {}  # milliseconds per stage of the last render
        self.readouts = {}
        self._quiet = 0
        self._pending = False
        self._requested = None
        self._settle_handle = None
        self._last_render = -math.inf  # loop time when the last slider render started
        self._shown = None  # rank whose picture is on screen
        self._recon = None  # its uint8 picture
        self.cache = None
        self._generation = 0  # counts images installed (and close): older background results are void
        self._exact_job = None  # the background exact SVD, while it runs
        self._first_seconds = None  # time to the randomized factors, when the image started with them

        if image is not None:
            img, label, notice = self._fit(image), "your image", ""
        else:
            (img, notice), label = self._read(sample_path(sample), None), sample
        cache = RankCache(img, **self._grey_cache_options())
        r = cache.max_rank
        rank = _clamp_rank(rank, r)

        full = widgets.Layout
        self.slider = widgets.IntSlider(
            value=rank, min=1, max=r, step=1, description="rank k", continuous_update=True,
            layout=full(flex="1 1 auto", min_width="260px"),
        )
        self.rank_box = widgets.BoundedIntText(
            value=rank, min=1, max=r, description="type k", layout=full(width="150px"),
            style={"description_width": "48px"},
        )
        # Linked in the kernel only. A browser link as well raced the kernel's: the box's message left
        # before the slider's, the kernel's link then sent the slider that older rank, and a drag was
        # pulled back (07's drag test read rank 150 for 192). So with no kernel the box stays put.
        widgets.link((self.slider, "value"), (self.rank_box, "value"))
        self.quick = widgets.HBox(layout=full(flex_flow="row wrap"))
        self.view = widgets.ToggleButtons(
            options=self.VIEWS, value="reconstruction", style={"button_width": "128px"},
            tooltips=["the rank-k approximation A_k",
                      f"|A - A_k| x {ERROR_GAIN}: black = exact, white = off by {_ERROR_WHITE}+ grey levels",
                      "the image you started from"],
        )
        # The picture rebuilt in the page from its factors, at the rank the slider shows: the
        # slider is linked to it in the browser (explorer/picture.py). Raw pixels for other views.
        self.picture = Picture(live_rank=rank)
        self._links = [widgets.jsdlink((self.slider, "value"), (self.picture, "live_rank"))]
        self._factor_key = None  # what the factors on the page were made from
        self.factor_bytes = 0  # bytes of the last factors sent
        self.caption = widgets.HTML()
        self.spectrum = widgets.Image(
            format="png", layout=full(width="100%", height="auto", object_fit="contain"))
        self.table = widgets.HTML()
        self.status = widgets.HTML()

        rows = []
        if sources:
            self.sample_picker = widgets.Dropdown(
                options=list(SAMPLES), value=sample if image is None else None, description="sample",
                layout=full(width="220px"),
            )
            # Sent in acknowledged pieces, up to 64 MB, never dropped silently (explorer/upload.py).
            self.upload = Upload(on_file=self._on_upload)
            self.sample_picker.observe(self._on_sample, "value")
            rows.append(widgets.HBox([self.sample_picker, self.upload],
                                     layout=full(flex_flow="row wrap", align_items="center")))
        else:
            self.sample_picker = self.upload = None
        rows += [
            self.status,
            widgets.HBox([self.slider, self.rank_box], layout=full(width="100%", align_items="center")),
            widgets.HBox([widgets.Label("quick ranks:"), self.quick, self.view],
                         layout=full(flex_flow="row wrap", align_items="center")),
            widgets.HBox(
                [widgets.VBox([self.picture, self.caption], layout=full(flex="3 1 360px", min_width="0")),
                 widgets.VBox([self.spectrum, self.table], layout=full(flex="2 1 300px", max_width="480px"))],
                layout=full(width="100%", flex_flow="row wrap", align_items="flex-start"),
            ),
        ]
        self.widget = widgets.VBox(rows, layout=full(width="100%"))
        # CSS classes, so that browser tests (and custom styles) can find the parts
        for part, name in [(self.widget, "explorer"), (self.slider, "slider"), (self.rank_box, "rank-box"),
                           (self.picture, "picture"), (self.spectrum, "spectrum"), (self.table, "readouts"),
                           (self.status, "status"), (self.view, "view")]:
            part.add_class(f"rank-explorer-{name}" if name != "explorer" else "rank-explorer")

        self.slider.observe(self._on_rank, "value")
        self.view.observe(lambda change: self._redraw_picture(), "value")
        self.picture.observe(lambda change: self._go_live(), "view_size")
        self._install(cache, label, notice)

    # -- showing it -----------------------------------------------------------

    def __repr__(self):
        m, n = self.cache.shape
        return f"RankExplorer({self.label}: {m} × {n} pixels, rank {self.slider.value} of {self.cache.max_rank})"

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)  # short and stable (the box's repr lists every child)
        # The picture as PNG: what GitHub and other viewers without widgets show.
        bundle["image/png"] = base64.b64encode(self.picture.png()).decode("ascii")
        return bundle

    def close(self) -> None:
        """Close every widget of the explorer, with its layout and style (in the kernel
        and in the browser), and drop the cached SVD."""
        self._cancel_settle()
        self._forget_exact_job()
        for w in [*_widget_tree(self.widget), *self._links]:
            w.close()
        self.cache = None

    # -- driving it from code --------------------------------------------------

    @property
    def rank(self):
        """The rank on the slider."""
        return self.slider.value

    def set_rank(self, k: int) -> int:
        """Move the slider to rank k, clamped to 1..min(m, n), and draw it at once,
        readouts included (only slider drags from the browser are coalesced).
        A value that is not a whole number is refused with a message in the
        status line. Returns the rank on the slider.
        """
        try:
            k = _whole_number(k)
        except TypeError:
            self._set_status(f"rank must be a whole number, got {k!r}", error=True)
            return self.slider.value
        k = _clamp_rank(k, self.cache.max_rank)
        self.render(k)
        return k

    def render(self, k: int | None = None, *, settle: bool = True) -> None:
        """Draw rank k now (default: the slider's rank) and update the readouts.

        ``settle=False`` skips SSIM (left as None), as during a drag.
        """
        k = self.slider.value if k is None else check_rank(k, self.cache.max_rank)
        self._requested = k  # a slider move still queued is older than this
        if k != self.slider.value:
            with self._quietly():
                self.slider.value = k
        self._draw(k)
        if settle:
            self._settle()

    def readouts_for(self, k: int) -> dict:
        """The readouts for rank k, SSIM included, without touching the display."""
        recon = self.cache.picture(k)
        readouts = self._readouts(k, recon)
        readouts["ssim"] = ssim_in_strips(self.cache.image, recon)
        return readouts

    def images(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(reconstruction, error view) at rank k as uint8 arrays, as the explorer shows them."""
        recon = self.cache.picture(k)
        return recon, self._error_view(recon)

    @property
    def image(self):
        """The uint8 image being explored."""
        return self.cache.image

    # -- internals ----------------------------------------------------------

    @contextlib.contextmanager
    def _quietly(self):
        """Change widget values without the observers reacting."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    @staticmethod
    def _fit(image):
        img = check_image(image, label="RankExplorer")
        if img.size > MAX_PIXELS:
            raise ValueError(f"the image has {img.size / 1e6:.1f} megapixels, over the "
                             f"{MAX_PIXELS / 1e6:.1f}-megapixel cap; load it with load_greyscale to downscale")
        return img

    def _install(self, cache, label, notice=""):
        """Switch to a new image: slider range, buttons, spectrum, pictures, readouts."""
        self._cancel_settle()
        self._forget_exact_job()
        self.cache, self.label, self._notice = cache, label, notice
        self._first_seconds = None if cache.exact else cache.seconds
        loop = self._event_loop()
        first_fast = loop is not None and not cache.exact
        r = cache.max_rank
        # the picture first; the spectrum (about 0.2 s to draw) and SSIM right after it
        self._panel = None if first_fast else _SpectrumPanel(cache.decomposition.S, cache.energy, scale=self.spectrum_scale)
        self._recon_buffer = np.empty(cache.shape, np.uint8)  # the picture on screen, reused
        with self._quietly():
            self.rank_box.max = r  # the box first: the link would clamp the slider back
            self.slider.max = r
            self.slider.value = _clamp_rank(self.slider.value, r)
        self.quick.children = [self._quick_button(k) for k in QUICK_RANKS if k <= r]
        self._shown = None
        self._pending, self._requested = False, None  # a move still queued for the old image is void
        self.render(self.slider.value, settle=not first_fast)
        if first_fast:
            loop.call_soon(self._after_first_picture, self._generation)
        self._set_status(self._ready_message(), raw=True)

    def _ready_message(self):
        """The status line once an image is on screen: its size, its ranks and which factors."""
        cache = self.cache
        m, n = cache.shape
        message = f"<b>{html.escape(self.label)}</b>: {m} × {n} pixels, "
        if cache.exact:
            message += f"ranks 1 to {cache.max_rank}; SVD and cache ready in {_fmt_seconds(cache.seconds)}"
            if self._first_seconds is not None:
                message += f" (the first picture came from a randomized SVD in {_fmt_seconds(self._first_seconds)})"
        else:
            message += (f"ranks 1 to {cache.max_rank} for now, from a randomized SVD "
                        f"(ready in {_fmt_seconds(cache.seconds)}); the exact SVD, ranks up to "
                        f"{cache.full_rank}, is computing in the background…")
        if self._notice:
            message += f"<br><span style='color:#8a5a00'>{html.escape(self._notice)}</span>"
        return message

    def _after_first_picture(self, generation):
        """Right after a first picture from randomized factors: the spectrum, then SSIM later."""
        if generation != self._generation or self.cache is None or self._panel is not None:
            return
        _release_memory()  # the previous image's cache, now that the picture is on its way
        self._panel = _SpectrumPanel(self.cache.decomposition.S, self.cache.energy, scale=self.spectrum_scale)
        self._redraw_spectrum()
        self._schedule_settle()

    def _redraw_spectrum(self):
        """Draw the spectrum panel for the rank on screen (after it was drawn late, or anew)."""
        if self._shown is not None:
            self.spectrum.value = self._panel.draw(self._shown)

    def _grey_cache_options(self):
        """Keyword arguments of ``RankCache`` for the picture being loaded (see ColourExplorer)."""
        return {}

    def _start_exact_job(self, img, options=None):
        """Compute the exact SVD on the background thread; ``_use_exact`` takes it on the loop.
        ``options``: keyword arguments of ``RankCache``."""
        loop, generation = self._event_loop(), self._generation
        build = functools.partial(RankCache, **options) if options else None  # None: the module's RankCache
        job = exact_cache_soon(img, wanted=lambda: generation == self._generation, build=build)
        self._exact_job = job

        def hand_over(done):  # on the background thread: pass the result to the kernel's loop
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to show it to
                loop.call_soon_threadsafe(self._use_exact, generation, done)

        job.add_done_callback(hand_over)

    def _forget_exact_job(self):
        """Make any background SVD void (another image, or closed): it will never be shown."""
        self._generation += 1
        if self._exact_job is not None:
            self._exact_job.cancel()  # only stops it if it has not started yet
            self._exact_job = None

    def _use_exact(self, generation, job):
        """On the kernel's loop: replace the randomized factors by the exact ones and redraw."""
        if generation != self._generation or self.cache is None or job.cancelled():
            return  # another image is on screen now, or the explorer was closed
        self._exact_job = None
        try:
            cache = job.result()
        except Exception as err:  # e.g. MemoryError: keep the randomized ranks, say why
            _log.error("RankExplorer: the exact SVD of %s failed", self.label, exc_info=err)
            self._set_status(f"the exact SVD failed ({type(err).__name__}: {err}); ranks 1 to "
                             f"{self.cache.max_rank} from the randomized SVD remain", error=True)
            return
        if cache is None:
            return
        self.cache = cache
        self._panel = _SpectrumPanel(cache.decomposition.S, cache.energy, scale=self.spectrum_scale)
        r = cache.max_rank
        with self._quietly():
            self.rank_box.max = r
            self.slider.max = r
        self.quick.children = [self._quick_button(k) for k in QUICK_RANKS if k <= r]
        self._shown = None  # the same rank, redrawn from the exact factors
        self.render(self.slider.value, settle=False)
        self._schedule_settle()
        self._set_status(self._ready_message(), raw=True)
        _release_memory()  # the randomized cache

    def _quick_button(self, k):
        import ipywidgets as widgets

        button = widgets.Button(description=str(k), tooltip=f"rank {k}", layout=widgets.Layout(width="52px"))
        button.on_click(lambda _: self.set_rank(k))
        return button

    def _set_status(self, message, error=False, raw=False):
        text = message if raw else html.escape(message)
        if error:
            text = f"<span style='color:#b00020'>⚠ {text}</span>"
        self.status.value = f"<div style='font-size:12px'>{text}</div>"

    @staticmethod
    def _event_loop():
        """The running asyncio loop (the kernel's, inside a comm handler), or None."""
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _on_rank(self, change):
        if self._quiet:
            return
        self._requested = change.new
        loop = self._event_loop()
        if loop is None:  # plain Python (tests, scripts): draw now
            self._flush()
        elif not self._pending:  # in a kernel: one render pending at most, latest rank wins
            self._pending = True
            wait = self._last_render + self.FRAME_SECONDS - loop.time()
            if wait > 0:  # a frame was drawn moments ago: merge what arrives until the next one
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)

    def _flush(self):
        self._pending = False
        loop = self._event_loop()
        self._last_render = loop.time() if loop is not None else 0.0
        k = self._requested
        if k is None or self.cache is None:
            return
        k = _clamp_rank(k, self.cache.max_rank)
        try:
            if k != self._shown:
                self._draw(k)
            self._schedule_settle()
        except Exception as err:  # keep the widget alive; say what happened, and log the traceback
            _log.exception("RankExplorer could not draw rank %s", k)
            self._set_status(f"could not draw rank {k}: {type(err).__name__}: {err}", error=True)

    def _factor_sums(self):
        """The partial sums whose factors the page rebuilds the picture from, and the
        [T | b] matrix to RGB (None for grey)."""
        return [self.cache.sums], None

    def _go_live(self):
        """Let the page rebuild the reconstruction from its factors: send them if the page
        does not have them for this image and view size yet. The error and original views
        are pixels from the kernel. Returns whether the page paints from factors."""
        if self.cache is None:
            return False
        live = self.view.value == "reconstruction"
        if live:
            sums, to_rgb = self._factor_sums()
            shape, r = sums[0].shape, sums[0].max_rank
            rows, cols = self.picture.fit_size(shape, one_to_one=False) or shape
            if min(self.picture.view_size) > 0:  # a browser said how big the view is: every rank
                rank = r
            else:  # no browser yet (a notebook being executed and saved): as many as fit
                rank = max(1, min(r, SAVED_FACTOR_BYTES // (2 * len(sums) * (rows + cols))))
            key = (sums[0], len(sums), rows, cols, rank)
            old = self._factor_key
            if old is None or old[0] is not key[0] or old[1:] != key[1:]:
                factors = [s.scaled_factors(rows, cols, rank) for s in sums]
                with self.picture.hold_sync():
                    self.picture.image_height, self.picture.image_width = shape
                    self.factor_bytes = self.picture.show_factors(
                        [f[0] for f in factors], [f[1] for f in factors], to_rgb=to_rgb, full_rank=r)
                self._factor_key = key
        self.picture.live = live
        return live

    def _draw(self, k):
        """Cheap readouts, spectrum marker and the full-size picture for rank k (no SSIM).

        The page rebuilds the picture it shows from the factors it was sent (``_go_live``),
        at the slider's rank, without waiting for this. The full-size picture, which the
        readouts, the 1:1 view and the PNG copy use, is written into the buffer the Picture
        keeps, and the Picture is told the rank (the page says when the readouts lag).
        """
        t0 = _now()
        self._go_live()
        t1 = _now()
        recon = self.cache.picture(k, out=self._recon_buffer)  # = to_uint8(A_k)
        t2 = _now()
        self._recon, self._shown = recon, k
        self._cancel_settle()
        self.readouts = self._readouts(k, recon)
        t3 = _now()
        self.picture.show(self._picture(), rank=k)  # with factors on the page: only the rank
        t4 = _now()
        if self._panel is not None:  # None just before the spectrum of a first picture is drawn
            self.spectrum.value = self._panel.draw(k)
        t5 = _now()
        self.table.value = self._table()
        self.caption.value = self._caption()
        t6 = _now()
        self.renders += 1
        self.timings = {name: 1000 * dt for name, dt in [
            ("factors", t1 - t0), ("A_k as uint8", t2 - t1), ("readouts", t3 - t2 + t6 - t5),
            ("picture", t4 - t3), ("spectrum", t5 - t4), ("total", t6 - t0)]}

    def _readouts(self, k, recon):
        m, n = self.cache.shape
        sse = cv2.norm(recon, self.cache.image, cv2.NORM_L2SQR)  # exact sum of squared uint8 differences
        mse = sse / (m * n * 255.0**2)  # on the [0, 1] scale, as psnr() uses
        bytes_uint8 = stored_bytes(m, n, k, "uint8")
        bytes_float32 = stored_bytes(m, n, k, "float32")
        return {
            "k": k, "max_rank": self.cache.max_rank, "height": m, "width": n,
            "stored_values": stored_values(m, n, k),
            "bytes_uint8": bytes_uint8, "bytes_float32": bytes_float32, "original_bytes": m * n,
            "ratio_uint8": m * n / bytes_uint8, "ratio_float32": m * n / bytes_float32,
            "break_even_uint8": break_even_rank(m, n, BYTES_PER_VALUE["uint8"]),
            "break_even_float32": break_even_rank(m, n, BYTES_PER_VALUE["float32"]),
            "energy": float(self.cache.energy[k - 1]),
            "relative_error": self.cache.relative_error(k),
            "psnr": math.inf if sse == 0 else 10 * math.log10(1 / mse),
            "ssim": None,
            # "exact" (the SVD) or "randomized" (randomized_svd's leading triplets: energy and
            # relative error are then those of the picture shown, at least the optimal error)
            "factors": "exact" if self.cache.exact else "randomized",
        }

    def _table(self):
        """The readout table, with a line saying which factors the picture comes from."""
        if self.cache.exact:
            note = f"factors: the exact SVD (all {self.cache.max_rank} singular values)"
        else:
            note = (f"factors: a randomized SVD, σ<sub>1</sub> … σ<sub>{self.cache.max_rank}</sub> only "
                    f"(the exact SVD is computing). Energy and error are those of the picture shown; "
                    f"the best rank-k error is at most this.")
        return (_readouts_html(self.readouts)
                + f"<div class='rank-explorer-factors' style='font-size:11px;color:#555'>{note}</div>")

    def _error_view(self, recon):
        return cv2.convertScaleAbs(cv2.absdiff(self.cache.image, recon), alpha=ERROR_GAIN)

    def _picture(self):
        view = self.view.value
        if view == "original":
            return self.cache.image
        if view == "error":
            return self._error_view(self._recon)
        return self._recon

    def _caption(self):
        k = self._shown
        if not self.cache.exact and self.view.value != "original":
            return self._captions(k)[self.view.value] + " — from a randomized SVD (approximate)"
        return self._captions(k)[self.view.value]

    def _captions(self, k):
        return {
            "reconstruction": f"rank-{k} approximation A<sub>k</sub>, shown as to_uint8(A<sub>k</sub>)",
            "error": f"error |A − A<sub>k</sub>| at rank {k}, ×{ERROR_GAIN}: black = exact, "
                     f"white = off by {_ERROR_WHITE}+ grey levels",
            "original": "the original image A",
        }

    def _redraw_picture(self):
        if self._recon is not None:
            self._go_live()  # the reconstruction from factors, the other views as pixels
            self.picture.show(self._picture(), rank=self._shown)
            self.caption.value = self._caption()

    def _cancel_settle(self):
        if self._settle_handle is not None:
            self._settle_handle.cancel()
            self._settle_handle = None

    def _schedule_settle(self):
        self._cancel_settle()
        loop = self._event_loop()
        if loop is None:
            self._settle()
        else:  # meanwhile the table shows "…" for SSIM
            self._settle_handle = loop.call_later(SETTLE_SECONDS, self._settle)

    def _settle(self):
        """Compute SSIM for the rank on screen (after the slider rests)."""
        self._settle_handle = None
        if self._recon is None or self.readouts.get("ssim") is not None:
            return
        try:
            self.readouts["ssim"] = ssim_in_strips(self.cache.image, self._recon)
            self.table.value = self._table()
        except Exception as err:  # keep the widget alive; say what happened, and log the traceback
            _log.exception("RankExplorer could not compute SSIM")
            self._set_status(f"SSIM failed: {type(err).__name__}: {err}", error=True)

    def _on_sample(self, change):
        if self._quiet or change.new is None:
            return
        self._load(sample_path(change.new), label=change.new)

    def _on_upload(self, name, data):
        """The upload control's callback: show the file, or raise why it cannot be shown."""
        if not self._load(data, name=name, label=name, upload=True):
            raise ValueError(self._load_error)
        m, n = self.cache.shape
        return f"{name}: {m} × {n} pixels, shown"

    def _load(self, source, *, label, name=None, upload=False):
        """Load a new image; on failure say why and keep the current one. (For an upload
        the upload control shows why, next to its button; the status line goes back to
        the picture still on screen, so that the message is not shown twice.)"""
        def failed(err):  # ImageError messages name the file already; anything else is logged
            if isinstance(err, ImageError):
                text = str(err)
            else:
                _log.error("RankExplorer could not load %s", label, exc_info=err)
                text = f"{type(err).__name__}: {err}"
            if upload:
                self._set_status(self._ready_message(), raw=True)
            else:
                self._set_status(text, error=True)
            self._load_error = text
            return False

        self._set_status(f"loading {label}…")
        try:
            img, notice = self._read(source, name)
        except Exception as err:  # a bad file: say why, keep the current image
            return failed(err)
        self._set_status(f"computing the SVD of {label} ({img.shape[0]} × {img.shape[1]} pixels)…")
        # Free the old cache first (up to ~300 MB at 4 megapixels), rebuild it if the new one fails.
        previous, self.cache = self.cache.image, None
        self._forget_exact_job()  # a background SVD of the old image is void
        leading = self._first_rank(img)
        if leading is None:  # else right after the first picture: a collection takes 0.1 s or more
            _release_memory()
        try:
            options = self._grey_cache_options()
            cache = RankCache(img, leading=leading, **options)
        except Exception as err:  # e.g. MemoryError
            self.cache = RankCache(previous)
            return failed(err)
        if upload and self.sample_picker is not None:
            with self._quietly():
                self.sample_picker.value = None  # an upload is on screen, not a sample
        self._install(cache, label, notice)
        if cache.exact:
            del cache
            _release_memory()
        else:
            self._start_exact_job(img, options)
        return True

    def _read(self, source, name):
        """Decode ``source``: (greyscale image, notice). The colour explorer decodes in colour."""
        return read_image(source, name=name)

    def _first_rank(self, img):
        """``APPROXIMATE_RANK`` if the first picture of ``img`` should come from a randomized
        SVD (a large image, in a running kernel), else None: the exact SVD at once."""
        if (self._event_loop() is not None and img.size >= self.APPROXIMATE_FROM_PIXELS
                and min(img.shape) > self.APPROXIMATE_RANK):
            return self.APPROXIMATE_RANK
        return None


def ssim_in_strips(original, shown, *, grey=None, rows: int = SSIM_STRIP_ROWS) -> float:
    """``helpers.ssim(original, shown)`` (of ``grey(original)`` and ``grey(shown)`` if
    ``grey`` is given, e.g. ``helpers.luma``), computed over strips of ``rows`` rows.

    SSIM is the mean of a per-pixel value that looks 3 pixels around each pixel (a 7 x 7
    window) and leaves out 3 pixels at each edge; so each strip, with 3 more rows above
    and below, gives its rows' values as the whole image does. Their mean, weighted by
    rows, is the same SSIM (to round-off in the last digits), and memory holds one strip's
    work at a time instead of about 15 float32 copies of the whole image.

    >>> from helpers import sample_image
    >>> img = sample_image("camera")
    >>> noisy = np.clip(img + np.random.default_rng(0).normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    >>> abs(ssim_in_strips(img, noisy, rows=100) - ssim(img, noisy)) < 1e-12
    True
    """
    grey = grey or (lambda picture: picture)
    m, h = original.shape[0], _SSIM_HALO
    if m <= rows + 2 * h:  # one strip: the whole picture
        return ssim(grey(original), grey(shown))
    total, count = 0.0, 0
    for top in range(h, m - h, rows):  # the rows top .. bottom - 1 of the mean, in strips
        bottom = min(top + rows, m - h)
        window = slice(top - h, bottom + h)
        total += ssim(grey(original[window]), grey(shown[window])) * (bottom - top)
        count += bottom - top
    return total / count


def _release_memory():
    """Free unreachable objects now and hand freed memory back to the system.

    Drawing text with matplotlib leaves reference cycles (parser tracebacks) that
    keep earlier frames, and so an old cache, alive until the next garbage
    collection; glibc also keeps freed blocks. Without this, switching between
    4-megapixel images a few times grew the kernel to 1.5 GB.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim
        pass


def _widget_tree(widget):
    """A widget, its layout and style, and the same for all its children."""
    found = [widget, *(getattr(widget, part, None) for part in ("layout", "style"))]
    for child in getattr(widget, "children", ()):
        found += _widget_tree(child)
    return [w for w in found if w is not None]


def _clamp_rank(k, max_rank):
    """The nearest valid rank to the whole number k: 1..max_rank."""
    return min(max(int(k), 1), max_rank)


def _whole_number(value):
    """``value`` as an int if it is a whole number (int, NumPy integer, or a float like 5.0)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("a bool is not a rank")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return operator.index(value)
