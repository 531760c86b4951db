"""Checks for the notebooks' exercises.

Each ``check_<what>(answer, ...)`` prints "✓ ..." when the answer is right, or a
hint when it is not (never the answer itself), and returns True or False.
The checks recompute what they need from the inputs the exercise gives.

>>> check_power_iters(None, torch.eye(3), k=1)
Set `answer` to a whole number of power iterations (0, 1, 2, ...).
False
"""

import numpy as np
import torch

import helpers


def _as_tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _optimal_error(S, k):
    """Eckart-Young: the best rank-k Frobenius error is sqrt(sum of the tail sigma^2)."""
    return S[k:].double().pow(2).sum().sqrt().item()


# --- 08 randomized SVD ------------------------------------------------------------

def check_range_basis(Q, A, *, k, oversample=10):
    """Exercise (08): Q is an orthonormal basis for a Gaussian sketch of A with k + oversample columns."""
    A = _as_tensor(A)
    m = A.shape[0]
    width = k + oversample
    if Q is None or not hasattr(Q, "shape"):
        print("Set `Q` to the orthonormal basis: sketch A with a Gaussian matrix, then call torch.linalg.qr.")
        return False
    Q = _as_tensor(Q).to(A.dtype)
    if tuple(Q.shape) != (m, width):
        print(f"Q should have one row per row of A and k + oversample columns; yours is {tuple(Q.shape)}. "
              "How many columns does the Gaussian matrix need?")
        return False
    # float32 QR of an m x width matrix: round-off far below 1e-4
    if (Q.T @ Q - torch.eye(width, dtype=A.dtype)).abs().max().item() > 1e-4:
        print("The columns of Q are not orthonormal (Q^T Q is not I). Did you keep the Q of torch.linalg.qr?")
        return False
    error = torch.linalg.norm(A - Q @ (Q.T @ A)).item()
    S = torch.linalg.svdvals(A)
    # HMT (2011), Thm 10.5: the average error is at most sqrt(1 + k/(oversample - 1)) times
    # the optimal rank-k error; their tail bound makes 1.5 times that very unlikely.
    bound = 1.5 * (1 + k / max(oversample - 1, 1)) ** 0.5 * _optimal_error(S, k)
    if error > bound:
        print("Q is orthonormal but captures too little of A. Is the sketch A @ G (not G alone)?")
        return False
    print(f"✓ Q is an orthonormal {m} x {width} basis; it leaves ||A - Q Q^T A||_F = {error:.2f}, "
          f"{error / _optimal_error(S, k):.2f} times the optimal rank-{k} error.")
    return True


def check_power_iters(answer, A, *, k, within=0.01):
    """Exercise (08): the smallest number of power iterations whose rank-k error is
    within ``within`` (a fraction) of the optimal (Eckart-Young) error."""
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)) or answer < 0:
        print("Set `answer` to a whole number of power iterations (0, 1, 2, ...).")
        return False
    A = _as_tensor(A)
    optimal = _optimal_error(torch.linalg.svdvals(A), k)

    def excess(q):
        d = helpers.randomized_svd(A, k, power_iters=q)
        return torch.linalg.norm(A - (d.U * d.S) @ d.Vh).item() / optimal - 1

    if excess(answer) > within:
        print(f"With power_iters={answer} the rank-{k} error is {excess(answer):.1%} above the optimum, "
              f"not within {within:.0%}. Try more.")
        return False
    if answer > 0 and excess(answer - 1) <= within:
        print(f"power_iters={answer} is within {within:.0%}, but fewer iterations are too. Find the smallest.")
        return False
    print(f"✓ power_iters={answer} is the smallest that brings the rank-{k} error within {within:.0%} "
          f"of the optimum ({excess(answer):.2%} above it).")
    return True


# --- 07 colour ----------------------------------------------------------------------

def check_colour_break_even(answer, m, n):
    """Exercise (07): the break-even ranks (per-channel k, stacked k) of an m x n colour
    picture: where the stored values, one byte each, equal its 3·m·n bytes of pixels."""
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        print("Set `answer` to a pair: (per-channel break-even rank, stacked break-even rank).")
        return False
    per_channel, stacked = m * n / (m + n + 1), 3 * m * n / (m + 3 * n + 1)
    names = ("per-channel", "stacked")
    for name, got, want, values in zip(names, answer, (per_channel, stacked),
                                       ("3k(m + n + 1)", "k(m + 3n + 1)"), strict=True):
        try:
            got = float(got)
        except (TypeError, ValueError):
            print(f"The {name} rank should be a number, got {got!r}.")
            return False
        if not abs(got - want) <= 1e-6 * want:  # exact formulas; allow float round-off only
            print(f"The {name} rank is off. Set the stored values {values} equal to the 3·m·n bytes "
                  "of pixels and solve for k (do not round).")
            return False
    print(f"✓ per-channel breaks even at k = {per_channel:.1f} and stacked at k = {stacked:.1f}; "
          f"stacked allows {stacked / per_channel:.2f} times the rank.")
    return True


def _split_psnr(decompositions, rgb, total, chroma):
    ranks = (total - 2 * chroma, chroma, chroma)
    return helpers.psnr(rgb, helpers.colour_reconstruct(decompositions, ranks, "ycbcr"))


def check_best_split(answer, rgb, total):
    """Exercise (07): the chroma rank c (luma rank total - 2c) with the highest PSNR on RGB."""
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)) or not 1 <= answer <= total // 3:
        print(f"Set `answer` to the chroma rank c, a whole number from 1 to {total // 3} "
              "(the luma rank is then total - 2c).")
        return False
    decompositions = helpers.colour_svd(rgb, "ycbcr")
    scores = {c: _split_psnr(decompositions, rgb, total, c) for c in range(1, total // 3 + 1)}
    best = max(scores, key=scores.get)
    if scores[answer] < scores[best]:
        print(f"Chroma rank {answer} gives {scores[answer]:.2f} dB, but another split does better. "
              "Did you try every chroma rank from 1 up to total // 3?")
        return False
    print(f"✓ chroma rank {answer} with luma rank {total - 2 * answer}: {scores[answer]:.2f} dB, "
          f"the best split of {total} ranks.")
    return True
