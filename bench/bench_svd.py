"""Randomized SVD against the full SVD, side by side in one run.

Targets (issue 12, DESIGN.md): at 2048 x 2048 and k = 50, helpers.randomized_svd
(2 power iterations) is at least 20 times faster than helpers.svd, and its Frobenius
error is at most 1.02 times the optimal (Eckart-Young) error. Also printed: the same
at 512, 1024 and 4096 (one full SVD at 4096, which takes tens of seconds on 2 cores),
and CPU against GPU when a CUDA GPU is present.

The test matrices are the hubble sample (872 x 1000) resized to s x s with bicubic
interpolation (cv2.INTER_CUBIC): upscaled above 1000, so their rank stays near 872
and their spectrum is the photo's own.

    make bench                 # runs this with the other benchmarks
    python bench/bench_svd.py  # this one only
"""

import contextlib
import functools
import statistics
import time

import cv2
import torch

import helpers

K = 50
TARGET_SPEEDUP = 20
TARGET_ERROR_RATIO = 1.02


def hubble_matrix(side):
    """The hubble sample as a side x side float32 matrix in [0, 1]."""
    img = cv2.resize(helpers.sample_image("hubble"), (side, side), interpolation=cv2.INTER_CUBIC)
    return torch.from_numpy(helpers.to_unit(img))


@contextlib.contextmanager
def on_the_cpu():
    """Make helpers.svd and helpers.randomized_svd compute on the CPU even when CUDA is there."""
    chosen = helpers.compute_device
    helpers.compute_device = lambda: torch.device("cpu")
    try:
        yield
    finally:
        helpers.compute_device = chosen


def median_seconds(work, repeats, device="cpu"):
    """Median wall time of ``work()`` over ``repeats`` calls, after one warm-up call."""
    work()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        work()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def frobenius_error(A, d):
    return torch.linalg.norm(A - (d.U * d.S) @ d.Vh).item()


def compare(side, full_repeats, fast_repeats):
    A = hubble_matrix(side)
    full = helpers.svd(A)
    optimal = full.S[K:].double().pow(2).sum().sqrt().item()
    error_ratio = frobenius_error(A, helpers.randomized_svd(A, K)) / optimal
    # Alternate the two so that a busy spell on a shared machine hits both.
    t_full, t_fast = [], []
    for _ in range(full_repeats):
        t_full.append(median_seconds(lambda: helpers.svd(A), 1))
        t_fast.append(median_seconds(lambda: helpers.randomized_svd(A, K), fast_repeats))
    return statistics.median(t_full), statistics.median(t_fast), error_ratio


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; the table below is on the CPU")
    print(f"hubble resized to s x s, k = {K}, randomized_svd with oversample=10, power_iters=2")
    print(f"{'size':>11} {'full SVD':>10} {'randomized':>11} {'speed-up':>9} {'error / optimal':>16}")
    results = {}
    for side, full_repeats in ((512, 5), (1024, 3), (2048, 3), (4096, 1)):
        with on_the_cpu():
            t_full, t_fast, ratio = compare(side, full_repeats, fast_repeats=5)
        results[side] = (t_full, t_fast, ratio)
        print(f"{side:>5}x{side:<5} {t_full:>9.3f}s {t_fast * 1000:>9.1f}ms {t_full / t_fast:>8.0f}x "
              f"{ratio:>16.4f}", flush=True)

    t_full, t_fast, ratio = results[2048]
    speed_ok = t_full / t_fast >= TARGET_SPEEDUP
    error_ok = ratio <= TARGET_ERROR_RATIO
    print(f"target at 2048 x 2048, k = {K}: speed-up {t_full / t_fast:.0f}x (>= {TARGET_SPEEDUP}x) "
          f"{'met' if speed_ok else 'NOT met'}; error {ratio:.4f} x optimal (<= {TARGET_ERROR_RATIO}) "
          f"{'met' if error_ok else 'NOT met'}")

    if not torch.cuda.is_available():
        print("GPU: no CUDA device here, so the GPU path was not measured.")
        return
    print(f"GPU: {torch.cuda.get_device_name()} (times include copying the factors back to the CPU)")
    for side in (2048, 4096):
        A_cpu = hubble_matrix(side)
        A_gpu = A_cpu.cuda()
        for name, decompose in (("full SVD", helpers.svd),
                                (f"randomized k={K}", functools.partial(helpers.randomized_svd, k=K))):
            with on_the_cpu():
                t_cpu = median_seconds(functools.partial(decompose, A_cpu), 1 if side == 4096 else 3)
            t_gpu = median_seconds(functools.partial(decompose, A_gpu), 5, device="cuda")
            print(f"  {side}x{side} {name:<16} CPU {t_cpu:8.3f}s  GPU {t_gpu:8.4f}s  ({t_cpu / t_gpu:.0f}x)")


if __name__ == "__main__":
    main()
