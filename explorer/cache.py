"""The SVD of one image kept as partial sums, so that any rank-k picture is quick.

``PartialSums`` holds the rank-one layers of a matrix and their sums every few ranks.
``RankCache(img)`` holds the exact SVD that way; ``RankCache(img, leading=100)`` only
the leading triplets from ``randomized_svd``, a few times faster on a large image, so
that the explorer can show a first picture at once. ``exact_cache_soon`` builds the
exact cache on a background thread meanwhile. Both give the picture at full size or
at the smaller size the screen shows (``picture(k, size=...)``), from the same layers
scaled down.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import math
import threading
import time

import cv2
import numpy as np
import torch

from helpers import Decomposition, check_image, check_rank, cumulative_energy, randomized_svd, svd, to_unit

#: Memory the explorer may spend on cached partial sums A_c (see ``RankCache``).
CHECKPOINT_BUDGET = 256 * 2**20

#: Memory for the partial sums at the size the screen shows (see ``PartialSums.scaled``):
#: at 624 x 624 a sum every 98 ranks of a 2048 x 2048 image.
VIEW_BUDGET = 32 * 2**20

#: PyTorch threads the explorer uses for its SVD and products. One thread is about
#: as fast for the slider's small products, and far more robust when other
#: processes compete for the cores (Binder, a busy laptop): measured here with the
#: machine busy, 2 threads took 3 to 25 s for SVDs that 1 thread did in 0.2 to 2 s,
#: and 20 ms instead of 4 ms per slider move at 1 megapixel.
EXPLORER_THREADS = 1

_now = time.perf_counter

#: Blocks from this size up (bytes) get their own pages from the system, handed back when freed.
MMAP_THRESHOLD = 2**20


def _large_blocks_to_the_system(threshold: int = MMAP_THRESHOLD) -> bool:
    """Have glibc's malloc serve blocks of ``threshold`` bytes or more with their own pages
    (mmap), returned to the system as soon as they are freed; True if set.

    glibc starts at 128 KiB but raises that threshold each time such a block is freed, up
    to 32 MiB, after which freed picture-sized tensors (16 MB at 4 megapixels) stay in the
    process for the next allocations, which come in other sizes. A fixed threshold keeps
    glibc from raising it: the colour explorer's peak on a 24 MP upload went from 1.51 to
    1.32 GB (bench/bench_memory.py).

    >>> _large_blocks_to_the_system() in (True, False)
    True
    """
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, int(threshold)))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to set
        return False


_large_blocks_to_the_system()


class torch_threads:
    """Run a block with ``n`` PyTorch threads, then restore the previous number.

    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    """

    def __init__(self, n: int = EXPLORER_THREADS):
        self.n = n

    def __enter__(self):
        self.before = torch.get_num_threads()
        if self.n != self.before:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.before:
            torch.set_num_threads(self.before)


def checkpoint_spacing(m: int, n: int, r: int, *, budget: int = CHECKPOINT_BUDGET) -> int:
    """Ranks between cached partial sums of an m x n image of rank r: at least
    32, more when the float32 sums would not fit ``budget`` bytes.

    >>> checkpoint_spacing(1000, 1000, 1000), checkpoint_spacing(2048, 2048, 2048)
    (32, 128)
    """
    most = max(1, budget // (4 * m * n))  # float32 partial sums that fit the budget
    return max(32, math.ceil(r / most))


class PartialSums:
    """The rank-one layers sigma_i u_i v_i^T of a matrix, and their partial sums
    A_c = layers 1 .. c every ``spacing`` ranks, so that A_k for any k costs at most
    spacing/2 layers, one small matmul (from the nearest sum, up or down).

    ``US`` is U with column i scaled by sigma_i (m x r), ``Vh`` is r x n, both float32.
    ``spacing`` overrides the spacing chosen from ``budget`` (bytes of sums).

    ``lazy=True`` builds no sum up front: ``approx`` builds them, in order, up to the
    one it needs (the same sums, the same values), and a rank nearer 0 than the first
    sum needs none. For a picture that may never be shown at full size from these sums
    (the colour explorer's grey side, while colour is on screen): no memory for them.

    >>> U, S, Vh = torch.linalg.svd(torch.rand(60, 50), full_matrices=False)
    >>> sums = PartialSums(U * S, Vh, spacing=16)
    >>> sums.checkpoint_ranks, bool(torch.allclose(sums.approx(50, torch.empty(60, 50)), U @ torch.diag(S) @ Vh, atol=1e-5))
    ([16, 32, 48, 50], True)
    >>> later = PartialSums(U * S, Vh, spacing=16, lazy=True)
    >>> later.built_ranks, bool(torch.equal(later.approx(45, torch.empty(60, 50)), sums.approx(45, torch.empty(60, 50))))
    ([], True)
    >>> later.built_ranks
    [16, 32, 48]
    """

    def __init__(self, US: torch.Tensor, Vh: torch.Tensor, *, budget: int = CHECKPOINT_BUDGET,
                 spacing: int | None = None, lazy: bool = False):
        self._US, self._Vh = US.contiguous(), Vh.contiguous()
        (m, r), n = US.shape, Vh.shape[1]
        self.shape, self.max_rank = (m, n), r
        self.spacing = int(spacing) if spacing else checkpoint_spacing(m, n, r, budget=budget)
        ranks = [*range(self.spacing, r, self.spacing), r]
        self._ranks = np.array([0, *ranks])
        self._sums = {}
        if not lazy:
            self._build_to(r)

    def _build_to(self, c: int) -> torch.Tensor:
        """The partial sum A_c (a checkpoint rank), built with those below it if not yet."""
        if c not in self._sums:
            built = [0, *self._sums]  # in order: each sum is the one below plus its layers
            previous = built[-1]
            total = self._sums[previous] if previous else torch.zeros(self.shape)
            for nxt in self._ranks[len(built):]:
                nxt = int(nxt)
                total = self._sums[nxt] = torch.addmm(total, self._US[:, previous:nxt], self._Vh[previous:nxt])
                previous = nxt
                if nxt == c:
                    break
        return self._sums[c]

    @property
    def built_ranks(self) -> list[int]:
        """The ranks c whose partial sums A_c are built (all of them unless ``lazy``)."""
        return list(self._sums)

    @property
    def checkpoint_ranks(self) -> list[int]:
        """The ranks c whose partial sums A_c are kept."""
        return [int(c) for c in self._ranks[1:]]

    @property
    def nbytes(self) -> int:
        """Bytes held: the scaled factors and the partial sums."""
        return sum(t.numel() * t.element_size() for t in [self._US, self._Vh, *self._sums.values()])

    def approx(self, k: int, out: torch.Tensor) -> torch.Tensor:
        """A_k (float32): a kept partial sum (never modify it), or written into ``out``."""
        k = check_rank(k, self.max_rank)
        c = int(self._ranks[np.abs(self._ranks - k).argmin()])
        with torch_threads():
            if c == k:
                return self._build_to(c)
            if c == 0:
                torch.mm(self._US[:, :k], self._Vh[:k], out=out)
            elif k > c:  # A_k = A_c + layers c+1 .. k
                torch.addmm(self._build_to(c), self._US[:, c:k], self._Vh[c:k], out=out)
            else:  # A_k = A_c - layers k+1 .. c
                torch.addmm(self._build_to(c), self._US[:, k:c], self._Vh[k:c], alpha=-1, out=out)
        return out

    def scaled(self, rows: int, cols: int, *, budget: int = VIEW_BUDGET) -> PartialSums:
        """The same layers for the matrix scaled down to rows x cols by area averaging
        (``cv2.INTER_AREA``). Scaling averages rows, then columns: it is linear, so
        scale(A_k) = (rows of U S averaged) @ (columns of Vh averaged), and a picture at
        the size the screen shows costs rows x cols x (layers), not m x n x (layers).

        >>> A = torch.rand(60, 50)
        >>> U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        >>> small = PartialSums(U * S, Vh).scaled(24, 20)
        >>> expected = cv2.resize(A.numpy(), (20, 24), interpolation=cv2.INTER_AREA)
        >>> small.shape, bool(np.allclose(small.approx(50, torch.empty(24, 20)).numpy(), expected, atol=1e-5))
        ((24, 20), True)
        """
        US, Vh = self.scaled_factors(rows, cols)
        with torch_threads():
            return PartialSums(torch.from_numpy(US), torch.from_numpy(Vh), budget=budget)

    def scaled_factors(self, rows: int, cols: int, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(U S, Vh) of the first ``rank`` layers (default all) for the matrix scaled down to
        rows x cols by area averaging, as float32 NumPy arrays (rows x rank, rank x cols): the
        factors that ``scaled`` sums, and that the explorer sends to the page.

        >>> sums = PartialSums(torch.rand(60, 8), torch.rand(8, 50))
        >>> [a.shape for a in sums.scaled_factors(24, 20, rank=5)]
        [(24, 5), (5, 20)]
        """
        r = self.max_rank if rank is None else check_rank(rank, self.max_rank)
        US, Vh = np.ascontiguousarray(self._US[:, :r].numpy()), self._Vh[:r].numpy()
        if (rows, cols) == self.shape:
            return US.copy(), Vh.copy()
        US = cv2.resize(US, (r, rows), interpolation=cv2.INTER_AREA).reshape(rows, r)
        Vh = cv2.resize(Vh, (cols, r), interpolation=cv2.INTER_AREA).reshape(r, cols)
        return US, Vh


class RankCache:
    """The SVD of one image, arranged so that any rank-k approximation is quick.

    A plain ``(U[:, :k] * S[:k]) @ Vh[:k]`` costs 2·m·n·k operations: about 2
    GFLOP for a 1-megapixel image at k = 1000, far too slow for a slider. The
    cache keeps partial sums A_c = sigma_1 u_1 v_1^T + ... + sigma_c u_c v_c^T
    (float32) every ``spacing`` ranks and builds A_k from the nearest one by
    adding or subtracting at most spacing/2 rank-one layers in one small matmul
    (``PartialSums``). It also keeps the running sums of sigma^2 for the energy
    and error readouts. ``spacing`` overrides the spacing chosen from ``budget`` (bytes);
    ``lazy=True``: the partial sums are built when a picture first needs them (``PartialSums``).

    ``picture(k, size=(rows, cols))`` gives the picture at the smaller size the
    screen shows, from the layers scaled down (``PartialSums.scaled``, kept for the
    last size asked): at 4 megapixels shown at 624 x 624 it costs a tenth as much.

    With ``leading=k0`` (fewer than min(m, n)) the factors are the k0 leading
    triplets from ``randomized_svd`` (2 power iterations): ``exact`` is False and
    ranks go up to ``max_rank`` = k0 only. The readouts stay honest: the factors
    give A~_k = U_k U_k^T A, an orthogonal projection of A, so ``energy`` and
    ``relative_error`` are those of the picture A~_k itself (from ||A||_F^2, known
    from the image, minus the k values sigma~_i^2). The optimal rank-k error
    (Eckart-Young) is at most that, and the sigma~_i at most the true sigma_i.

    >>> from helpers import reconstruct, sample_image
    >>> cache = RankCache(sample_image("camera"))
    >>> bool(np.allclose(cache.reconstruction(50), reconstruct(cache.decomposition, 50), atol=1e-5))
    True
    >>> quick = RankCache(sample_image("camera"), leading=100)
    >>> quick.exact, quick.max_rank, quick.full_rank
    (False, 100, 512)
    >>> bool(cache.relative_error(50) <= quick.relative_error(50) < 1.02 * cache.relative_error(50))
    True
    """

    def __init__(self, img: np.ndarray, *, leading: int | None = None, budget: int = CHECKPOINT_BUDGET,
                 spacing: int | None = None, lazy: bool = False):
        img = check_image(img, label="RankCache")
        with torch_threads():
            self._build(img, leading, budget, spacing, lazy)

    def _build(self, img, leading, budget, spacing, lazy):
        start = _now()
        self.image = np.ascontiguousarray(img)
        self.shape = (m, n) = img.shape
        self.full_rank = min(m, n)
        A = to_unit(self.image)
        self.exact = leading is None or check_rank(leading, self.full_rank) == self.full_rank
        U, S, Vh = svd(A) if self.exact else randomized_svd(A, leading)
        self.decomposition = Decomposition(U, S, Vh)
        self.max_rank = int(S.shape[0])
        self.svd_seconds = _now() - start
        if spacing is None and not self.exact:
            # a stand-in for the seconds until the exact cache: one partial sum, at the top
            # rank (a move costs at most max_rank / 2 layers), not one every 32 ranks
            spacing = self.max_rank
        self.sums = PartialSums(U * S, Vh, budget=budget, spacing=spacing, lazy=lazy)
        self._out = torch.empty(m, n)
        self._view = None  # (rows, cols), their PartialSums and work buffer: the last size shown
        s2 = S.double().numpy() ** 2
        if self.exact:
            self._total = float(s2.sum())
            self.energy = cumulative_energy(S)  # energy[k - 1]: the fraction kept by rank k
            self._tail = np.append(np.cumsum(s2[::-1])[::-1], 0.0)  # _tail[k] = sum of sigma_i^2, i > k
        else:  # sigma~ are known for i <= k0 only: the rest of ||A||^2 is what A~_k leaves out
            self._total = cv2.norm(self.image, cv2.NORM_L2SQR) / 255.0**2  # ||A||_F^2, from exact integer sums
            kept = np.cumsum(s2)
            self.energy = kept / self._total if self._total > 0 else np.ones_like(kept)
            self._tail = np.maximum(self._total - np.append(0.0, kept), 0.0)  # _tail[k] = ||A - A~_k||^2
        self.seconds = _now() - start

    @property
    def spacing(self) -> int:
        """Ranks between cached partial sums."""
        return self.sums.spacing

    @property
    def checkpoint_ranks(self) -> list[int]:
        """The ranks c whose partial sums A_c are cached."""
        return self.sums.checkpoint_ranks

    @property
    def nbytes(self) -> int:
        """Bytes held: image, factors, partial sums (at full size and at the size shown),
        work buffers and sums of sigma^2."""
        d = self.decomposition
        view = 0 if self._view is None else self._view[1].nbytes + 4 * self._view[2].numel()
        return (self.image.nbytes + self.sums.nbytes + 4 * (d.U.numel() + d.S.numel() + self._out.numel())
                + view + self._tail.nbytes + self.energy.nbytes)

    def _sums_at(self, size):
        """The partial sums and a work buffer for pictures of ``size`` (None: full size)."""
        if size is None or tuple(size) == self.shape:
            return self.sums, self._out
        if self._view is None or self._view[0] != tuple(size):
            rows, cols = size
            self._view = (tuple(size), self.sums.scaled(rows, cols), torch.empty(rows, cols))
        return self._view[1], self._view[2]

    def reconstruction(self, k: int) -> np.ndarray:
        """Rank-k approximation as a new float32 NumPy array (like ``reconstruct``)."""
        return self.sums.approx(k, self._out).numpy().copy()

    def picture(self, k: int, *, out: np.ndarray | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
        """The displayable rank-k picture, ``to_uint8(A_k)``: a new uint8 array, or
        written into ``out`` (a uint8 array of the picture's shape) and returned.

        ``size=(rows, cols)``, smaller than the image: the picture at that size, A_k
        averaged over each pixel's area (``cv2.INTER_AREA``), then rounded. That is
        ``cv2.resize`` of the full picture within one grey level, except in a few
        pixels where A_k leaves [0, 1] (clipped after averaging, not before).
        """
        sums, work = self._sums_at(size)
        approx = sums.approx(k, work)
        return _to_uint8(approx, work, np.empty(sums.shape, np.uint8) if out is None else out)

    def relative_error(self, k: int) -> float:
        """||A - A_k||_F / ||A||_F from the tail energy: sqrt(sum of sigma_i^2 for i > k / total)
        (for randomized factors: the error of the picture A~_k, at least the optimal one)."""
        k = check_rank(k, self.max_rank)
        return math.sqrt(self._tail[k] / self._total) if self._total > 0 else 0.0


def _to_uint8(approx, work, out):
    """to_uint8(approx) written into ``out``, with no large temporaries (they cost page
    faults: 16 MB each at 4 megapixels). ``work`` (float32, approx's shape) is scratch;
    it may be approx itself: the steps work in place."""
    scaled = work.numpy()
    np.multiply(approx.numpy(), np.float32(255), out=scaled)  # the same steps as to_uint8
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    np.copyto(out, scaled, casting="unsafe")
    return out


_background = None
_background_lock = threading.Lock()


def exact_cache_soon(img: np.ndarray, *, wanted=None, build=None) -> concurrent.futures.Future:
    """Start building the exact ``RankCache(img)`` on the explorer's background thread.

    One thread, shared by every explorer, so jobs run one after the other; it uses
    ``EXPLORER_THREADS`` PyTorch threads (a per-thread setting), and PyTorch releases
    the GIL while it computes, so the kernel's event loop and the slider keep going.
    ``wanted``, a function called when the job starts, can return False to skip a job
    nobody needs any more (the future then holds None). ``build`` (default
    ``RankCache``) is called with the image instead, e.g. a colour cache.

    >>> exact_cache_soon(np.eye(3, dtype=np.uint8) * 255).result().max_rank
    3
    """
    global _background
    with _background_lock:
        if _background is None:
            _background = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="explorer-svd")
    return _background.submit(_exact_cache, np.array(img), wanted, build)


def _exact_cache(img, wanted, build):
    if wanted is not None and not wanted():
        return None
    return (build or RankCache)(img)
