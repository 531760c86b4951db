"""The colour side of the explorer: Y, Cb and Cr kept as partial sums, so that the
picture for any (luma rank, chroma rank) pair is quick, with its readouts and spectra.

The lesson (notebook 07) is that luma deserves more rank than chroma; the explorer
shows it with two sliders. Cb and Cr share the chroma rank.

- ``ColourCache``: the three SVDs as partial sums; ``picture(k_luma, k_chroma)``;
- ``ColourSpectrumPanel``: the Y, Cb and Cr spectra with markers (blitted PNG);
- ``ColourExplorer``: ``RankExplorer`` with a grey/colour toggle and a chroma slider.
"""

from __future__ import annotations

import contextlib
import math

import cv2
import numpy as np
import torch

from explorer.cache import VIEW_BUDGET, PartialSums, _now, exact_cache_soon, torch_threads
from explorer.render import _PNG_PLOT, _preview_png, quality_texts, table_html
from explorer.widget import ERROR_GAIN, RankExplorer, _clamp_rank, ssim_in_strips
from helpers import (
    RGB_TO_YCBCR,
    _numpy,
    check_rank,
    colour_planes,
    colour_stored_values,
    luma,
    randomized_svd,
    read_image,
    svd,
    to_uint8,
)

#: Memory the colour cache may spend on partial sums, for the three planes together:
#: at 1 megapixel a sum every 100 ranks in each plane, so a move adds or removes at most
#: 50 rank-one layers per plane; at the 4.2-megapixel cap a sum every 836 ranks (a new
#: picture with both ranks moved: 44 ms in the kernel, against 39 ms with 3 x 64 MiB;
#: the page paints from its own factors). Issue 20: at most 1 GB per kernel on a 24 MP
#: colour upload (bench/bench_memory.py, in a fresh clone: 981 MB with 3 x 64 MiB, 887 with this).
COLOUR_CHECKPOINT_BUDGET = 3 * 40 * 2**20

#: Memory for the grey (luma) side's partial sums when the picture is in colour, next to
#: the colour cache: as much as one colour plane gets, so a grey move costs no more than a
#: luma move in colour. They are built only when grey is shown (``RankCache(lazy=True)``).
GREY_BUDGET_BESIDE_COLOUR = COLOUR_CHECKPOINT_BUDGET // 3

#: Names of the three planes, in order.
PLANE_NAMES = ("Y", "Cb", "Cr")


class _ColourPlanes:
    """Y, Cb and Cr as partial sums at one size, and the buffers that turn them into RGB."""

    def __init__(self, sums):
        self.sums = sums
        self.shape = (m, n) = sums[0].shape
        self._work = torch.empty(3, m, n)  # Y, Cb, Cr approximations that are not kept sums
        self._ycc = [None, None, None]  # the current Y, Cb, Cr approximations
        self._ranks = [None, None, None]
        self._channels = np.empty((3, m, n), np.uint8)  # R, G, B as planes, before interleaving
        self._scratch = np.empty((m, n), np.float32)  # work buffer for G

    @property
    def nbytes(self):
        return (sum(p.nbytes for p in self.sums) + 4 * self._work.numel()
                + self._channels.nbytes + self._scratch.nbytes)

    def picture(self, ranks, to_rgb, out):
        """RGB uint8 with the planes at ``ranks`` (Y, Cb, Cr), written into ``out``."""
        for i, (sums, k) in enumerate(zip(self.sums, ranks, strict=True)):
            if self._ranks[i] != k:  # only the planes whose rank changed
                self._ycc[i], self._ranks[i] = sums.approx(k, self._work[i]), k
        # Each RGB channel is a weighted sum of planes (R uses Y and Cr, B uses Y and Cb,
        # G all three), rounded and clipped to uint8 by OpenCV's saturating conversion,
        # which rounds half to even like to_uint8. Then the channels are interleaved.
        # (Plane by plane is 4x quicker than cv2.transform on interleaved pixels.)
        (y, cb, cr), (r, g, b), t = [p.numpy() for p in self._ycc], self._channels, to_rgb
        cv2.addWeighted(y, t[0, 0], cr, t[0, 2], t[0, 3], dst=r, dtype=cv2.CV_8U)
        cv2.addWeighted(y, t[2, 0], cb, t[2, 1], t[2, 3], dst=b, dtype=cv2.CV_8U)
        cv2.addWeighted(cb, t[1, 1], cr, t[1, 2], t[1, 3], dst=self._scratch)
        cv2.scaleAdd(y, t[1, 0], self._scratch, dst=self._scratch)
        cv2.add(self._scratch, 0.0, dst=g, dtype=cv2.CV_8U)
        return cv2.merge([r, g, b], out)


class ColourCache:
    """The YCbCr SVDs of one RGB picture, so that any (luma, chroma) rank pair is quick.

    A move rebuilds only the planes whose rank changed (from the nearest cached
    partial sum, ``PartialSums``, as ``RankCache`` does for grey), then turns Y, Cb,
    Cr into RGB ``uint8`` with one 3 x 3 matrix. ``picture(k_luma, k_chroma)`` equals
    ``helpers.colour_approx(rgb, (k_luma, k_chroma, k_chroma), "ycbcr")`` up to
    float32 round-off (at most one level, in a few pixels). ``size=(rows, cols)``
    gives it at the smaller size the screen shows, from the planes' layers scaled
    down (as ``RankCache.picture`` does).

    With ``leading=k`` each plane keeps only its k leading triplets, from
    ``randomized_svd`` (a fast first picture of a large upload; ``exact`` is then
    False and ranks go up to k): the pictures are those of the randomized factors.
    ``planes``: ``colour_planes(rgb, "ycbcr")``, if it was computed already.

    >>> from helpers import sample_colour_image
    >>> cache = ColourCache(sample_colour_image("astronaut"))
    >>> cache.picture(40, 10).shape, round(cache.readouts(40, 10)["psnr"], 1)
    ((512, 512, 3), 25.1)
    >>> cache.picture(40, 10, size=(200, 200)).shape
    (200, 200, 3)
    """

    def __init__(self, rgb, *, budget: int = COLOUR_CHECKPOINT_BUDGET, leading: int | None = None,
                 planes: list[np.ndarray] | None = None):
        rgb = _numpy(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"ColourCache expects an RGB uint8 array (m, n, 3), got {rgb.dtype} {rgb.shape}")
        start = _now()
        self.image = np.ascontiguousarray(rgb)
        self.shape = (m, n) = rgb.shape[:2]
        self.full_rank = min(m, n)
        self.exact = leading is None or check_rank(leading, self.full_rank) == self.full_rank
        sums, self._spectra = [], []
        with torch_threads():
            for plane in colour_planes(self.image, "ycbcr") if planes is None else planes:
                U, S, Vh = svd(plane) if self.exact else randomized_svd(plane, leading)
                # randomized: a stand-in for seconds, so one partial sum (at the top rank) per plane
                sums.append(PartialSums(U * S, Vh, budget=budget // 3, spacing=None if self.exact else S.shape[0]))
                self._spectra.append(S)
        self._full = _ColourPlanes(sums)
        self._view = None  # the planes at the last size shown
        self.max_rank = sums[0].max_rank
        # RGB (0-255) = T @ (Y, Cb, Cr) + b, with T = 255 * inverse of RGB_TO_YCBCR and b
        # from the chroma offsets: one row of [T | b] per output channel.
        inverse = np.linalg.inv(RGB_TO_YCBCR)
        self._to_rgb = np.hstack([255 * inverse, -inverse @ [[0.0], [128.0], [128.0]]])
        self.seconds = _now() - start

    @property
    def spacing(self) -> int:
        """Ranks between cached partial sums, in each plane."""
        return self._full.sums[0].spacing

    @property
    def nbytes(self) -> int:
        """Bytes held: picture, the three planes' factors and sums (at full size and at the
        size shown), and the work buffers."""
        return (self.image.nbytes + self._full.nbytes + (0 if self._view is None else self._view.nbytes)
                + sum(4 * s.numel() for s in self._spectra))

    @property
    def spectra(self) -> dict[str, np.ndarray]:
        """Singular values of Y, Cb and Cr (on the 0-1 scale)."""
        return {name: s.numpy() for name, s in zip(PLANE_NAMES, self._spectra, strict=True)}

    def picture(self, k_luma: int, k_chroma: int, *, out: np.ndarray | None = None,
                size: tuple[int, int] | None = None) -> np.ndarray:
        """The RGB uint8 picture with luma rank ``k_luma`` and chroma rank ``k_chroma``
        (at ``size`` = (rows, cols) if given: see the class docstring)."""
        ranks = (check_rank(k_luma, self.max_rank), *[check_rank(k_chroma, self.max_rank)] * 2)
        planes = self._full
        if size is not None and tuple(size) != self.shape:
            if self._view is None or self._view.shape != tuple(size):
                self._view = _ColourPlanes([sums.scaled(*size, budget=VIEW_BUDGET // 3) for sums in self._full.sums])
            planes = self._view
        if out is None:
            out = np.empty((*planes.shape, 3), np.uint8)
        with torch_threads():
            return planes.picture(ranks, self._to_rgb, out)

    def readouts(self, k_luma: int, k_chroma: int, picture: np.ndarray | None = None) -> dict:
        """Stored values, compression ratio and PSNR on RGB (of ``picture`` if given)."""
        m, n = self.shape
        if picture is None:
            picture = self.picture(k_luma, k_chroma)
        values = colour_stored_values(m, n, (k_luma, k_chroma, k_chroma), "ycbcr")
        squared_error = cv2.norm(self.image, picture, cv2.NORM_L2SQR)
        psnr = math.inf if squared_error == 0 else 10 * math.log10(255**2 * self.image.size / squared_error)
        return {"k_luma": k_luma, "k_chroma": k_chroma, "stored_values": values,
                "ratio": self.image.size / values, "psnr": psnr}

class ColourSpectrumPanel:
    """The Y, Cb and Cr spectra on one log plot, with markers at the luma and chroma
    ranks. Drawn once; a move blits only the markers, then encodes a PNG."""

    COLOURS = {"Y": "black", "Cb": "tab:blue", "Cr": "tab:red"}

    def __init__(self, spectra, size=(4.6, 3.2), dpi=100, scale=1.0):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        # scale: text `scale` times larger in a panel of the same pixel size
        self.figure = fig = Figure(figsize=(size[0] / scale, size[1] / scale), dpi=dpi * scale,
                                   layout="constrained")
        self._canvas = FigureCanvasAgg(fig)
        ax = fig.subplots()
        self._s = {}
        for name, s in spectra.items():
            s = np.asarray(s, np.float64)
            self._s[name] = np.maximum(s, max(s[0], 1e-12) * 1e-7)  # no zeros on a log axis
            ax.semilogy(np.arange(1, len(s) + 1), self._s[name], lw=1.1, color=self.COLOURS[name], label=name)
        ax.set_xlabel("index i", fontsize=8)
        ax.set_ylabel("singular value σᵢ", fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=8, loc="upper right")
        self._dots = {name: ax.plot([1], [s[0]], "o", ms=5, color=self.COLOURS[name], animated=True)[0]
                      for name, s in self._s.items()}
        self._lines = [ax.axvline(1, lw=1, ls="--", color=c, animated=True) for c in ("black", "tab:purple")]
        self._label = ax.text(0.03, 0.05, "", transform=ax.transAxes, fontsize=8, animated=True)
        self._canvas.draw()
        self._background = self._canvas.copy_from_bbox(fig.bbox)

    def draw(self, k_luma, k_chroma):
        """Move the markers and return the panel as PNG bytes."""
        for name, dot in self._dots.items():
            k = k_luma if name == "Y" else k_chroma
            dot.set_data([k], [self._s[name][k - 1]])
        for line, k in zip(self._lines, (k_luma, k_chroma), strict=True):
            line.set_xdata([k, k])
        self._label.set_text(f"luma k = {k_luma}, chroma k = {k_chroma}")
        self._canvas.restore_region(self._background)
        for artist in [*self._dots.values(), *self._lines, self._label]:
            self.figure.draw_artist(artist)
        rgba = np.asarray(self._canvas.buffer_rgba())
        return _preview_png(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR), _PNG_PLOT)


def _readouts_table(r):
    """The colour readout table, rendered from ``ColourExplorer.readouts``."""
    psnr_text, ssim_text = quality_texts(r)
    factors = ("factors: the exact SVDs of Y, Cb and Cr" if r["factors"] == "exact" else
               f"factors: randomized SVDs, ranks up to {r['max_rank']} for now (the exact SVDs "
               f"are computing). PSNR and SSIM are those of the picture shown.")
    return table_html([
        ("luma rank / chroma rank", f"{r['k_luma']} / {r['k_chroma']} of {r['max_rank']}"),
        ("values stored (k<sub>Y</sub> + 2k<sub>C</sub>)(m+n+1)", f"{r['stored_values']:,}"),
        ("original 3·m·n (uint8 values)", f"{r['original_values']:,}"),
        ("compression ratio", f"{r['ratio']:.2f}×"),
        ("PSNR on RGB (shown picture)", psnr_text),
        ("SSIM on luma (shown picture)", ssim_text),
    ]) + f"<div class='rank-explorer-factors' style='font-size:11px;color:#555'>{factors}</div>"


def _is_grey(rgb):
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


class ColourExplorer(RankExplorer):
    """``RankExplorer`` that keeps colour: for a colour picture a toggle switches
    between grey (the luma plane, one rank slider) and colour, where the rank slider
    is the luma rank and a second slider sets the chroma rank (Cb and Cr). In colour
    the readouts give the stored values, the ratio and PSNR on RGB (SSIM on luma
    once the slider rests) and the spectrum shows Y, Cb and Cr.

    >>> explorer = ColourExplorer(sample="astronaut", rank=40, chroma_rank=10)
    >>> explorer.mode.value, explorer.readouts["stored_values"]
    ('colour', 61500)
    """

    def __init__(self, image=None, *, sample="astronaut", rank=50, chroma_rank=None, sources=True,
                 spectrum_scale=1.0):
        import ipywidgets as widgets

        self.colour_cache = None
        self._colour_panel = None
        self._chroma_start = chroma_rank
        self.mode = widgets.ToggleButtons(options=["grey", "colour"], value="colour",
                                          tooltips=["luma only, one rank", "Y, Cb, Cr: luma and chroma ranks"])
        self.chroma_slider = widgets.IntSlider(value=1, min=1, max=1, description="chroma k",
                                               continuous_update=True,
                                               layout=widgets.Layout(flex="1 1 auto", min_width="260px"))
        self.colour_controls = widgets.HBox([self.mode, self.chroma_slider],
                                            layout=widgets.Layout(width="100%", align_items="center"))
        for part, name in [(self.colour_controls, "colour"), (self.mode, "mode"),
                           (self.chroma_slider, "chroma-slider")]:
            part.add_class(f"rank-explorer-{name}")  # for browser tests and custom styles
        if image is not None:
            image = _numpy(image)
            self._next_rgb, self._next_planes = None if image.ndim == 2 or _is_grey(image) else image, None
            grey = image if image.ndim == 2 else luma(image)
        else:  # the sample is loaded (in colour) by _load, through _read
            self._next_rgb, self._next_planes, grey = None, None, None
        super().__init__(grey, sample=sample, rank=rank, sources=sources, spectrum_scale=spectrum_scale)
        self.picture.live_chroma = self.chroma_slider.value
        self._links.append(widgets.jsdlink((self.chroma_slider, "value"), (self.picture, "live_chroma")))
        children = list(self.widget.children)
        children.insert(children.index(self.status) + 2, self.colour_controls)
        self.widget.children = children
        self.mode.observe(self._on_mode, "value")
        self.chroma_slider.observe(self._on_chroma, "value")

    # -- colour state ------------------------------------------------------

    @property
    def in_colour(self):
        """True when the picture is colour and the toggle is on colour."""
        return self.colour_cache is not None and self.mode.value == "colour"

    def _install(self, cache, label, notice=""):
        rgb, planes, self._next_rgb, self._next_planes = self._next_rgb, self._next_planes, None, None
        self.colour_cache = self._colour_panel = None
        self._colour_generation = getattr(self, "_colour_generation", 0) + 1  # older colour jobs are void
        if rgb is not None:
            start, self._chroma_start = self._chroma_start or max(1, self.slider.value // 4), None
            # When the grey picture comes first from randomized factors (a large upload, in a
            # running kernel), so does colour: the leading triplets of randomized SVDs of Y, Cb
            # and Cr. The exact colour SVDs then run on the background thread, queued before
            # the exact grey SVD, so the luma slider never passes the colour cache's ranks.
            # Its spectrum panel (0.2 s of matplotlib) is drawn right after the first picture.
            leading = None if cache.exact else self._first_rank(rgb[..., 0])
            self._use_colour_cache(ColourCache(rgb, leading=leading, planes=planes), panel=leading is None)
            with self._quietly():
                self.chroma_slider.value = _clamp_rank(start, self.colour_cache.max_rank)
                self.mode.value = "colour"
            if leading is not None:
                self._start_colour_job(rgb, self._event_loop())
        self.colour_controls.layout.display = None if rgb is not None else "none"
        super()._install(cache, label, notice)

    def _grey_cache_options(self):
        # A colour picture (as _read or __init__ left it): grey's partial sums are built
        # when grey is first shown, within a smaller budget (see GREY_BUDGET_BESIDE_COLOUR)
        if self._next_rgb is None:
            return {}
        return {"budget": GREY_BUDGET_BESIDE_COLOUR, "lazy": True}

    def _use_colour_cache(self, colour_cache, panel=True):
        self.colour_cache = colour_cache
        self._colour_panel = ColourSpectrumPanel(colour_cache.spectra, scale=self.spectrum_scale) if panel else None
        self._colour_buffer = np.empty((*colour_cache.shape, 3), np.uint8)
        with self._quietly():
            self.chroma_slider.max = colour_cache.max_rank

    def _start_colour_job(self, rgb, loop):
        generation = self._colour_generation
        job = exact_cache_soon(rgb, build=ColourCache, wanted=lambda: generation == self._colour_generation)

        def hand_over(done):  # on the background thread: pass the result to the kernel's loop
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to show it to
                loop.call_soon_threadsafe(self._colour_ready, generation, done)

        job.add_done_callback(hand_over)

    def _colour_ready(self, generation, job):
        """On the kernel's loop: the colour cache is ready; show colour if the toggle says so."""
        if generation != self._colour_generation or self.cache is None or job.cancelled():
            return
        try:
            colour_cache = job.result()
        except Exception as err:  # e.g. MemoryError: keep the randomized colour ranks, say why
            self._set_status(f"the exact colour SVDs failed ({type(err).__name__}: {err}); chroma ranks "
                             f"1 to {self.colour_cache.max_rank} from the randomized SVDs remain", error=True)
            return
        if colour_cache is None:
            return
        self._use_colour_cache(colour_cache)
        if self.in_colour:
            self._shown = None
            self.render(self.slider.value, settle=False)
            self._schedule_settle()

    def _read(self, source, name):
        """Decode the file once, in colour; the grey explorer gets its luma plane."""
        self._next_rgb = self._next_planes = None
        rgb, notice = read_image(source, name=name, colour=True)
        if _is_grey(rgb):
            return np.ascontiguousarray(rgb[..., 0]), notice
        self._next_rgb, self._next_planes = rgb, colour_planes(rgb, "ycbcr")  # Y, Cb, Cr once
        return to_uint8(self._next_planes[0]), notice  # = luma(rgb)

    def _on_mode(self, change):
        if not self._quiet:
            self.render(self.slider.value)

    def _on_chroma(self, change):
        if self._quiet or not self.in_colour:
            return
        self._shown = None  # the luma rank did not move, but the picture must be redrawn
        self._on_rank(type("Change", (), {"new": self.slider.value})())

    def images(self, k, k_chroma=None):
        """(picture, error view) as uint8 arrays, as the explorer shows them: in colour
        with luma rank k and chroma rank ``k_chroma`` (default: the chroma slider's)."""
        if not self.in_colour:
            return super().images(k)
        k_chroma = self.chroma_slider.value if k_chroma is None else k_chroma
        shown = self.colour_cache.picture(k, k_chroma)
        return shown, cv2.convertScaleAbs(cv2.absdiff(self.colour_cache.image, shown), alpha=ERROR_GAIN)

    # -- drawing -------------------------------------------------------------

    def _factor_sums(self):
        if not self.in_colour:
            return super()._factor_sums()
        return self.colour_cache._full.sums, self.colour_cache._to_rgb  # Y, Cb, Cr

    def _draw(self, k):
        if not self.in_colour:
            return super()._draw(k)
        t0 = _now()
        kc = self.chroma_slider.value
        self._go_live()  # as for grey: the page rebuilds the picture from the factors
        t1 = _now()
        shown = self.colour_cache.picture(k, kc, out=self._colour_buffer)
        self._recon, self._shown = shown, k
        self._cancel_settle()
        t2 = _now()
        with self.picture.hold_sync():
            self.picture.chroma_rank = kc
            self.picture.show(self._picture(), rank=k)
        t3 = _now()
        m, n = self.colour_cache.shape
        readouts = self.colour_cache.readouts(k, kc, shown)
        self.readouts = {**readouts, "k": k, "max_rank": self.colour_cache.max_rank, "height": m, "width": n,
                         "original_values": 3 * m * n, "ssim": None, "mode": "colour",
                         "factors": "exact" if self.colour_cache.exact else "randomized"}
        t4 = _now()
        if self._colour_panel is not None:  # None just before the spectrum of a first picture is drawn
            self.spectrum.value = self._colour_panel.draw(k, kc)
        t5 = _now()
        self.table.value = _readouts_table(self.readouts)
        self.caption.value = self._caption()
        self.renders += 1
        self.timings = {name: 1000 * dt for name, dt in [
            ("factors", t1 - t0), ("picture", t2 - t1), ("sent", t3 - t2), ("readouts", t4 - t3),
            ("spectrum", t5 - t4), ("total", _now() - t0)]}

    def _picture(self):
        if not self.in_colour:
            return super()._picture()
        view = self.view.value
        if view == "original":
            return self.colour_cache.image
        if view == "error":
            return cv2.convertScaleAbs(cv2.absdiff(self.colour_cache.image, self._recon), alpha=ERROR_GAIN)
        return self._recon

    def _caption(self):
        if not self.in_colour:
            return super()._caption()
        k, kc = self._shown, self.chroma_slider.value
        caption = {
            "reconstruction": f"colour picture: luma rank {k}, chroma rank {kc} (Y, Cb, Cr)",
            "error": f"error |RGB − RGB<sub>k</sub>| per channel, ×{ERROR_GAIN}",
            "original": "the original colour image",
        }[self.view.value]
        if not self.colour_cache.exact and self.view.value != "original":
            caption += " — from randomized SVDs (approximate)"
        return caption

    def _redraw_spectrum(self):
        # After a fast first picture: the colour panel too, drawn now (see _install)
        if self.colour_cache is not None and self._colour_panel is None:
            self._colour_panel = ColourSpectrumPanel(self.colour_cache.spectra, scale=self.spectrum_scale)
        if not self.in_colour:
            return super()._redraw_spectrum()
        if self._shown is not None:
            self.spectrum.value = self._colour_panel.draw(self._shown, self.chroma_slider.value)

    def _settle(self):
        if not self.in_colour:
            return super()._settle()
        self._settle_handle = None
        if self._recon is None or self.readouts.get("ssim") is not None:
            return
        self.readouts["ssim"] = ssim_in_strips(self.colour_cache.image, self._recon, grey=luma)
        self.table.value = _readouts_table(self.readouts)

