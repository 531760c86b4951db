"""Rendering for the explorer: the spectrum panel (as PNG) and the readout table.

The picture itself is not encoded: explorer/picture.py sends its raw pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from helpers import _numpy

# For plots (mostly flat colour): zlib level 1 without filtering, about 1 ms and 25 kB.
_PNG_PLOT = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def _preview_png(img, params=_PNG_PLOT):
    """Encode a uint8 image (grey or BGR) as a lossless PNG, fast."""
    ok, buf = cv2.imencode(".png", img, params)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 array as PNG
        raise ValueError("OpenCV could not encode the picture as PNG")
    return buf.tobytes()


class _SpectrumPanel:
    """Two small plots (singular values on a log axis, cumulative energy) with a
    marker at k. The figure is drawn once; a move restores the cached background
    and redraws only the marker artists (blitting), then encodes a PNG."""

    def __init__(self, singular_values, energy, size=(4.6, 3.6), dpi=100, scale=1.0):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        s = _numpy(singular_values).astype(np.float64)
        floor = s[0] * 1e-7 if s[0] > 0 else 1e-7
        self._s = np.maximum(s, floor)  # exact zeros cannot go on a log axis
        self._energy = np.asarray(energy) * 100
        ranks = np.arange(1, len(s) + 1)
        # scale: text `scale` times larger in a panel of the same pixel size
        self.figure = fig = Figure(figsize=(size[0] / scale, size[1] / scale), dpi=dpi * scale,
                                   layout="constrained")
        self._canvas = FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.semilogy(ranks, self._s, lw=1.2, color="tab:blue")
        top.set_ylabel("singular value σᵢ", fontsize=8)
        bottom.plot(ranks, self._energy, lw=1.2, color="tab:green")
        bottom.set_ylabel("energy kept (%)", fontsize=8)
        bottom.set_xlabel("rank k (index i)", fontsize=8)
        for ax in (top, bottom):
            ax.grid(True, which="major", alpha=0.3)
            ax.tick_params(labelsize=7)
        red = dict(color="tab:red", animated=True)
        self._artists = [
            top.axvline(1, lw=1, ls="--", **red),
            top.plot([1], [self._s[0]], "o", ms=5, **red)[0],
            bottom.axvline(1, lw=1, ls="--", **red),
            bottom.plot([1], [self._energy[0]], "o", ms=5, **red)[0],
            top.text(0.97, 0.92, "", transform=top.transAxes, ha="right", va="top", fontsize=9, **red),
            bottom.text(0.97, 0.1, "", transform=bottom.transAxes, ha="right", va="bottom", fontsize=9,
                        **red),
        ]
        self._canvas.draw()
        self._background = self._canvas.copy_from_bbox(fig.bbox)

    def draw(self, k):
        """Move the marker to rank k and return the panel as PNG bytes."""
        vline_top, dot_top, vline_bottom, dot_bottom, label_top, label_bottom = self._artists
        vline_top.set_xdata([k, k])
        vline_bottom.set_xdata([k, k])
        dot_top.set_data([k], [self._s[k - 1]])
        dot_bottom.set_data([k], [self._energy[k - 1]])
        label_top.set_text(f"k = {k}")
        label_bottom.set_text(f"{self._energy[k - 1]:.2f} %")
        self._canvas.restore_region(self._background)
        for artist in self._artists:
            self.figure.draw_artist(artist)
        rgba = np.asarray(self._canvas.buffer_rgba())
        return _preview_png(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR))


def _fmt_seconds(seconds):
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _fmt_bytes(n):
    return f"{n:,} B" if n < 10_000 else f"{n / 1000:,.1f} kB" if n < 10_000_000 else f"{n / 1e6:,.1f} MB"


def quality_texts(r):
    """The PSNR and SSIM readouts as text: PSNR is infinite for an exact picture, and SSIM
    shows "…" until the slider rests."""
    psnr_text = "∞ (identical)" if math.isinf(r["psnr"]) else f"{r['psnr']:.2f} dB"
    return psnr_text, "…" if r["ssim"] is None else f"{r['ssim']:.4f}"


def table_html(rows):
    """A two-column readout table (name, value) as HTML: values right-aligned, monospace."""
    cells = "".join(
        f"<tr><td style='padding:1px 8px 1px 0'>{name}</td>"
        f"<td style='text-align:right;font-family:monospace'>{value}</td></tr>"
        for name, value in rows
    )
    return f"<table style='font-size:12px;line-height:1.35'>{cells}</table>"


def _readouts_html(r):
    """The explorer's readout table, rendered from its ``readouts`` dict."""
    psnr_text, ssim_text = quality_texts(r)
    return table_html([
        ("rank k", f"{r['k']} of {r['max_rank']}"),
        ("values stored k(m+n+1)", f"{r['stored_values']:,}"),
        ("bytes as uint8 / float32",
         f"{_fmt_bytes(r['bytes_uint8'])} / {_fmt_bytes(r['bytes_float32'])}"),
        ("original m·n (uint8 pixels)", _fmt_bytes(r["original_bytes"])),
        ("compression ratio uint8 / float32",
         f"{r['ratio_uint8']:.2f}× / {r['ratio_float32']:.2f}×"),
        ("break-even rank uint8 / float32",
         f"{r['break_even_uint8']:.1f} / {r['break_even_float32']:.1f}"),
        ("energy kept", f"{100 * r['energy']:.3f} %"),
        ("relative error ‖A−A<sub>k</sub>‖/‖A‖", f"{r['relative_error']:.4f}"),
        ("PSNR (shown picture)", psnr_text),
        ("SSIM (shown picture)", ssim_text),
    ])
