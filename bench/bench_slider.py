"""Slider latency of the rank explorer, kernel side, against the common demo.

Run with `make bench` (or `.venv/bin/python bench/bench_slider.py`). It measures,
in one process and interleaved so that a noisy machine hurts both alike:

* the explorer: from a new rank to the messages being ready, i.e. what
  `RankExplorer` does on every slider move (rebuild A_k from a cached partial
  sum, `to_uint8`, the cheap readouts, the picture's raw pixels, the spectrum
  marker as PNG, the readout table). It is timed twice: with no view size known (a
  notebook being executed, or the 1:1 view), and with a view of VIEW device pixels,
  as the browser reports it: then the page rebuilds the picture it shows from U·Σ and
  Vᵀ at that size, sent once (the bytes are printed), and a move sends no pixels; the
  kernel's share is the readouts and the full-size picture, after the page painted.
  Key press to painted in the page, and the page's cost per rank-one layer, are
  measured in Chromium by tests/test_browser.py (screenshots/latency.txt), next to
  the old path through the kernel (a slider sending precomputed pixels, the floor).
  SSIM is left out because the widget computes it only after the slider rests
  (helpers.SETTLE_SECONDS);
* the common demo: recompute the SVD with torch.linalg.svd on every move,
  reconstruct, and draw a two-panel matplotlib figure (the picture and the
  spectrum with a marker) to PNG. It runs with PyTorch's default thread count,
  as in a student's notebook; the explorer uses helpers.EXPLORER_THREADS (1),
  so at 1 MP the demo is also timed with that many threads. On a busy machine
  the default threads make the demo much slower, and the ratio larger.

Test images: the hubble sample (1000 x 872) resized with cv2.resize (bicubic)
to 1000 x 1000 (1 megapixel) and to 2048 x 2048 (4.2 megapixels, the
helpers.MAX_PIXELS cap). Ranks: 25 spread over 1..min(m, n), in random order,
several repeats. Figures are medians (and the 90th percentile) in milliseconds.

Then the first picture after an upload (issue 12): from the moment the file's bytes
have arrived (the upload control calls the explorer) to the picture's factors being
set for the browser (the page paints from them), inside a running asyncio loop as in a kernel. Two paths, side
by side and interleaved, FIRST_REPEATS times each at 1 and 4.2 megapixels:

* randomized first (the explorer's default there): `randomized_svd` of the
  APPROXIMATE_RANK leading triplets, the picture, then the exact SVD on a
  background thread; also timed: when the exact factors are on screen, and slider
  moves (kernel side) made while the background SVD runs;
* exact first (as before issue 12): the whole SVD and cache before the picture.

`python bench/bench_slider.py first` runs only this part.

The browser side (key press to picture painted) is measured by the browser tests,
tests/test_browser.py, which print their medians.
"""

import asyncio
import io
import math
import random
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import helpers  # noqa: E402
from explorer.cache import torch_threads  # noqa: E402

RANKS_PER_SIZE = 25
REPEATS = {1000: 6, 2048: 3}  # passes over the 25 ranks
NAIVE_REPEATS = {1000: 5, 2048: 3}
VIEW = [960, 960]  # device pixels: a 480-pixel-wide picture on a 2x (HiDPI) screen
FIRST_REPEATS = 3  # uploads per path and size for the first-picture times


def rss_mb():
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_image(side):
    img = helpers.sample_image("hubble")
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)


def naive_move(img, k):
    """The usual demo: SVD again, reconstruct, and redraw a matplotlib figure to PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    A = torch.from_numpy(helpers.to_unit(img))
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    approx = ((U[:, :k] * S[:k]) @ Vh[:k]).numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    left.imshow(np.clip(approx, 0, 1), cmap="gray", vmin=0, vmax=1)
    left.set_title(f"rank {k}")
    left.axis("off")
    s = S.numpy()
    right.semilogy(np.arange(1, len(s) + 1), s)
    right.axvline(k, color="tab:red", ls="--")
    right.plot([k], [s[k - 1]], "o", color="tab:red")
    right.set_xlabel("index i")
    right.set_ylabel("singular value")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def percentile(values, q):
    return float(np.percentile(values, q))


def bench_size(side, rng):
    img = test_image(side)
    before = rss_mb()
    t0 = time.perf_counter()
    explorer = helpers.RankExplorer(image=img, rank=50, sources=False)
    build = time.perf_counter() - t0
    cache = explorer.cache
    r = cache.max_rank
    print(f"\n{side} x {side} ({img.size / 1e6:.1f} MP): SVD {cache.svd_seconds:.2f} s, "
          f"partial sums every {cache.spacing} ranks ({len(cache.checkpoint_ranks)} of them) "
          f"{cache.seconds - cache.svd_seconds:.2f} s, whole explorer ready in {build:.2f} s")
    print(f"  cache memory {cache.nbytes / 2**20:.0f} MiB; process RSS grew by {rss_mb() - before:.0f} MiB")

    ranks = np.unique(np.linspace(1, r, RANKS_PER_SIZE).round().astype(int)).tolist()
    for k in ranks[:3]:  # warm up
        explorer.render(k, settle=False)
    fast, fitted, naive, stages, sent = [], [], [], {}, {}
    sent_at, to_picture = [], {False: [], True: []}  # when the picture's pixels were set, per move
    explorer.picture.observe(lambda change: sent_at.append(time.perf_counter()), "pixels")
    for repeat in range(REPEATS[side]):
        order = ranks[:]
        rng.shuffle(order)
        for view, times in (([0, 0], fast), (VIEW, fitted)):  # whole picture, then fitted to the view
            explorer.picture.view_size = view
            for k in order:
                sent_at.clear()
                t = time.perf_counter()
                explorer.render(k, settle=False)
                times.append(1000 * (time.perf_counter() - t))
                if sent_at:  # pixels go out only with no view known: the page rebuilds the rest
                    to_picture[times is fitted].append(1000 * (sent_at[0] - t))
                for name, ms in explorer.timings.items():
                    stages.setdefault((name, times is fitted), []).append(ms)
            sent[times is fitted] = explorer.factor_bytes
        if repeat < NAIVE_REPEATS[side]:  # interleaved with the fast runs
            k = rng.choice(ranks)
            t = time.perf_counter()
            naive_move(img, k)
            naive.append(1000 * (time.perf_counter() - t))
    if side == 1000:  # the same demo with the explorer's thread count, for a like-for-like figure
        with torch_threads(helpers.EXPLORER_THREADS):
            naive_same_threads = []
            for _ in range(3):
                t = time.perf_counter()
                naive_move(img, rng.choice(ranks))
                naive_same_threads.append(1000 * (time.perf_counter() - t))
        print(f"  naive demo with {helpers.EXPLORER_THREADS} torch thread(s), like the explorer: "
              f"median {statistics.median(naive_same_threads):.0f} ms")
    for is_fitted, label in ((False, "no view: factors at full size, the saved ranks, sent once"),
                             (True, f"a view of {VIEW[0]} x {VIEW[1]}: factors at that size, every rank, sent once")):
        print(f"  stages, {label}, {sent[is_fitted] / 1e6:.2f} MB (median ms): " + ", ".join(
            f"{name} {statistics.median(v):.1f}" for (name, f), v in stages.items() if f == is_fitted))
    for times, label in ((fast, "no view"), (fitted, "with a view, the page painting from factors")):
        print(f"  explorer, {label}: median {statistics.median(times):.1f} ms, "
              f"p90 {percentile(times, 90):.1f} ms, max {max(times):.1f} ms over {len(times)} moves")
    fitted_sent = sent[True] / 1e6
    pixels_sent = sum(len(times) for times in to_picture.values())
    print(f"  pixels sent on {pixels_sent} of {len(fast) + len(fitted)} moves; with a view the page has "
          f"{fitted_sent:.2f} MB of float16 factors and rebuilds every rank itself")
    print(f"  naive: median {statistics.median(naive):.0f} ms over {len(naive)} moves")
    explorer.close()
    return (statistics.median(fast), statistics.median(naive), percentile(fast, 90), statistics.median(fitted),
            fitted_sent)


async def upload_once(explorer, data, rng):
    """Hand ``data`` to the explorer as the upload control does; return (seconds to the first
    picture, seconds to the exact factors on screen, kernel-side ms of slider moves meanwhile)."""
    painted = []
    watch = lambda change: painted.append((time.perf_counter(), explorer.cache.exact))  # noqa: E731
    explorer.picture.observe(watch, "factors")  # the page paints as soon as it has the factors
    moves = []
    try:
        t0 = time.perf_counter()
        explorer.upload.on_file("bench.png", data)
        first = painted[0][0] - t0
        while not explorer.cache.exact:  # move the slider while the exact SVD runs in the background
            await asyncio.sleep(0.05)
            if not explorer.cache.exact:
                t = time.perf_counter()
                explorer.render(rng.randint(1, explorer.cache.max_rank), settle=False)
                moves.append(1000 * (time.perf_counter() - t))
        exact = next(t for t, is_exact in painted if is_exact) - t0
        await asyncio.sleep(2 * explorer.FRAME_SECONDS + helpers.SETTLE_SECONDS)  # let SSIM run
    finally:
        explorer.picture.unobserve(watch, "factors")
    return first, exact, moves


def bench_first_picture():
    """First picture after an upload at 1 and 4.2 MP: randomized first against exact first."""
    rng = random.Random(1)
    fast = helpers.RankExplorer(sample="camera", rank=50)
    slow = helpers.RankExplorer(sample="camera", rank=50)
    slow.APPROXIMATE_FROM_PIXELS = math.inf  # exact first, as before issue 12
    results = {}

    async def run():
        for side in (1000, 2048):
            img = test_image(side)  # and its mirror image, so that every upload paints new pixels
            files = [cv2.imencode(".png", picture)[1].tobytes() for picture in (img, img[:, ::-1])]
            times = {"randomized": [], "exact": [], "exact later": [], "moves": []}
            for repeat in range(FIRST_REPEATS):  # interleaved, so that a noisy machine hurts both alike
                data = files[repeat % 2]
                first, exact, moves = await upload_once(fast, data, rng)
                times["randomized"].append(first)
                times["exact later"].append(exact)
                times["moves"] += moves
                first, _, _ = await upload_once(slow, data, rng)
                times["exact"].append(first)
            results[side] = times

    asyncio.run(run())
    fast.close()
    slow.close()
    print(f"\nfirst picture after an upload (bytes arrived -> picture sent; medians of {FIRST_REPEATS}, "
          f"randomized SVD of {helpers.RankExplorer.APPROXIMATE_RANK} triplets first):")
    for side, times in results.items():
        med = {name: statistics.median(v) for name, v in times.items() if name != "moves"}
        moves = times["moves"]
        print(f"  first picture {side} x {side} ({side * side / 1e6:.1f} MP): randomized first "
              f"{med['randomized']:.2f} s, exact first {med['exact']:.2f} s: "
              f"{med['exact'] / med['randomized']:.1f}x sooner; exact factors on screen after "
              f"{med['exact later']:.2f} s; slider meanwhile: median "
              + (f"{statistics.median(moves):.1f} ms over {len(moves)} moves" if moves else "no moves"))
    return results


def main():
    print(f"torch {torch.__version__} with {torch.get_num_threads()} threads, OpenCV {cv2.__version__}, "
          f"{torch.get_num_interop_threads()} interop threads")
    if sys.argv[1:] == ["first"]:
        bench_first_picture()
        return
    rng = random.Random(0)
    results = {side: bench_size(side, rng) for side in (1000, 2048)}
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process {peak:.0f} MiB (the naive demo's repeated 4 MP SVDs included)")
    for side, label in ((1000, "1 MP"), (2048, "4 MP")):
        print(f"p90 {results[side][2]:.1f} ms ({label})")
    for side, label in ((1000, "1 MP"), (2048, "4 MP")):
        fast, naive, _, fitted, fitted_sent = results[side]
        print(f"slider: median {fast:.1f} ms ({label}), with a view {fitted:.1f} ms of readouts after the page "
              f"painted ({fitted_sent:.2f} MB of factors sent once), naive {naive:.0f} ms, ratio {naive / fast:.1f}×")
    bench_first_picture()


if __name__ == "__main__":
    main()
