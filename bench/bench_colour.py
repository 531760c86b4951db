"""Slider latency of the colour explorer, kernel side, against the common colour demo.

Run with `.venv/bin/python bench/bench_colour.py` (or `make bench`). In one process,
interleaved so that a noisy machine hurts both alike, it measures:

* the colour explorer (explorer.colour): from a new luma or chroma rank to the
  picture's bytes being ready. That is ColourCache.picture (rebuild only the plane
  whose rank moved from a cached partial sum, YCbCr -> RGB uint8), the readouts
  (stored values, ratio, PSNR on RGB), the Y/Cb/Cr spectrum markers (blitted PNG)
  and explorer.picture.Picture.show (the raw RGB bytes for the canvas);
* the same through ColourExplorer.render (the widget: also the readout table and
  the caption), as during a drag; and with a view of VIEW device pixels, the time
  until the picture (computed at that size first) is sent;
* the common demo: an SVD of R, G and B again on every move (torch.linalg.svd),
  reconstruct, and draw a two-panel matplotlib figure (picture and spectra) to PNG,
  with PyTorch's default thread count and with the explorer's one thread.

Test image: the astronaut sample (512 x 512 RGB) resized with cv2.resize (bicubic)
to 1000 x 1000 (1 megapixel). Moves alternate between the luma and the chroma
slider, at random ranks in 1..1000. Figures are medians (and the 90th percentile).
"""

import io
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import helpers  # noqa: E402
from explorer.cache import EXPLORER_THREADS, torch_threads  # noqa: E402
from explorer.colour import ColourCache, ColourExplorer, ColourSpectrumPanel  # noqa: E402
from explorer.picture import Picture  # noqa: E402

SIDE = 1000
MOVES = 120
NAIVE_MOVES = 4
VIEW = [960, 960]  # device pixels: a 480-pixel-wide picture on a 2x (HiDPI) screen, as in bench_slider


def naive_move(rgb, k):
    """The usual colour demo: an SVD per channel again, reconstruct, redraw a figure to PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = torch.from_numpy(helpers.to_unit(rgb))
    channels, spectra = [], []
    for c in range(3):
        U, S, Vh = torch.linalg.svd(unit[..., c], full_matrices=False)
        channels.append((U[:, :k] * S[:k]) @ Vh[:k])
        spectra.append(S.numpy())
    approx = torch.stack(channels, dim=-1).clamp(0, 1).numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    left.imshow(approx)
    left.set_title(f"rank {k}")
    left.axis("off")
    for s in spectra:
        right.semilogy(np.arange(1, len(s) + 1), s)
    right.axvline(k, color="tab:red", ls="--")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def timed(f, *args):
    start = time.perf_counter()
    f(*args)
    return 1000 * (time.perf_counter() - start)


def main():
    print(f"torch {torch.__version__} with {torch.get_num_threads()} threads, OpenCV {cv2.__version__}")
    rgb = cv2.resize(helpers.sample_colour_image("astronaut"), (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
    start = time.perf_counter()
    cache = ColourCache(rgb)
    panel = ColourSpectrumPanel(cache.spectra)
    print(f"\ncolour {SIDE} x {SIDE} ({SIDE * SIDE / 1e6:.1f} MP): three SVDs and partial sums "
          f"{cache.seconds:.2f} s, explorer side ready in {time.perf_counter() - start:.2f} s; "
          f"cache memory {cache.nbytes / 2**20:.0f} MiB, a sum every {cache.spacing} ranks")

    picture, out = Picture(), np.empty((SIDE, SIDE, 3), np.uint8)
    rng = np.random.default_rng(0)
    k_luma, k_chroma = 50, 10
    explorer = ColourExplorer(image=rgb, rank=k_luma, chroma_rank=k_chroma, sources=False)

    def move(k_luma, k_chroma):  # what the colour explorer does on a move, step by step
        shown = cache.picture(k_luma, k_chroma, out=out)
        cache.readouts(k_luma, k_chroma, shown)
        panel.draw(k_luma, k_chroma)
        picture.show(shown, rank=k_luma)

    def explorer_move(k_luma, k_chroma):  # the widget itself, as during a drag (SSIM waits)
        with explorer._quietly():
            explorer.chroma_slider.value = k_chroma
        explorer.render(k_luma, settle=False)

    sent_at = []  # when the widget set the picture's pixels for the browser
    explorer.picture.observe(lambda change: sent_at.append(time.perf_counter()), "pixels")

    explorer.picture.view_size = VIEW  # the factors at that size, sent once
    factor_bytes = explorer.factor_bytes
    explorer.picture.view_size = [0, 0]

    def fitted_move(k_luma, k_chroma):  # with a view: the page paints from the factors, the kernel's readouts
        explorer.picture.view_size = VIEW
        start = time.perf_counter()
        explorer_move(k_luma, k_chroma)
        took = 1000 * (time.perf_counter() - start)
        explorer.picture.view_size = [0, 0]
        return took

    for _ in range(3):  # warm up
        move(int(rng.integers(1, SIDE + 1)), int(rng.integers(1, SIDE + 1)))
    fast, naive, naive_one, widget, fitted = {"luma": [], "chroma": []}, [], [], [], []
    for i in range(MOVES):
        which = "luma" if i % 2 else "chroma"
        if which == "luma":
            k_luma = int(rng.integers(1, SIDE + 1))
        else:
            k_chroma = int(rng.integers(1, SIDE + 1))
        fast[which].append(timed(move, k_luma, k_chroma))
        widget.append(timed(explorer_move, k_luma, k_chroma))
        fitted.append(fitted_move(k_luma, k_chroma))
        if i % (MOVES // NAIVE_MOVES) == 0:  # interleaved with the fast moves
            naive.append(timed(naive_move, rgb, k_luma))
            with torch_threads(EXPLORER_THREADS):
                naive_one.append(timed(naive_move, rgb, k_luma))
    both = fast["luma"] + fast["chroma"]
    median = statistics.median(both)
    print(f"  luma moves median {statistics.median(fast['luma']):.1f} ms, "
          f"chroma moves median {statistics.median(fast['chroma']):.1f} ms")
    print(f"  ColourExplorer.render (the widget, readout table and caption included): "
          f"median {statistics.median(widget):.1f} ms, p90 {np.percentile(widget, 90):.1f} ms")
    print(f"  the widget with a view of {VIEW[0]} x {VIEW[1]} device pixels: the page rebuilds the picture from "
          f"{factor_bytes / 1e6:.2f} MB of float16 factors (Y, Cb, Cr) sent once; the kernel's readouts and full "
          f"picture after it painted: median {statistics.median(fitted):.1f} ms (key press to painted: "
          f"tests/test_browser.py)")
    print(f"  naive colour demo: median {statistics.median(naive):.0f} ms "
          f"({statistics.median(naive_one):.0f} ms with {EXPLORER_THREADS} torch thread)")
    print(f"colour slider: median {median:.1f} ms (1 MP), p90 {np.percentile(both, 90):.1f} ms, "
          f"naive {statistics.median(naive):.0f} ms, ratio {statistics.median(naive) / median:.0f}× "
          f"({statistics.median(naive_one) / median:.0f}× against the naive demo at one thread)")


if __name__ == "__main__":
    main()
