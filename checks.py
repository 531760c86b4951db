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


# --- 09 many images -----------------------------------------------------------------

def _centred_svd(X):
    X = _as_tensor(X).double()
    mean = X.mean(dim=1, keepdim=True)
    U, S, _ = torch.linalg.svd(X - mean, full_matrices=False)
    return X, mean, U, S


def check_explained_variance(answer, X, *, k):
    """Exercise (09): the fraction of the variance of the images (columns of X)
    explained by the first k principal components (eigenfaces)."""
    if isinstance(answer, bool) or not isinstance(answer, (float, int, np.floating, np.integer)):
        print("Set `answer` to a number: a fraction between 0 and 1.")
        return False
    answer = float(answer)
    X, _, _, S = _centred_svd(X)
    expected = (S[:k].pow(2).sum() / S.pow(2).sum()).item()
    if abs(answer - expected) <= 1e-3:      # an answer rounded to 3 decimals is accepted
        print(f"✓ the first {k} components explain {answer:.1%} of the variance.")
        return True
    if not 0 <= answer <= 1:
        print("A fraction of the variance lies between 0 and 1. Divide by the total.")
    elif abs(answer - (S[:k].sum() / S.sum()).item()) <= 1e-3:
        print("Variance goes with the squares of the singular values: square them before summing.")
    elif abs(answer - k / S.shape[0]) <= 1e-3:
        print("That is the fraction of components, not of variance. Use the singular values.")
    else:
        S_raw = torch.linalg.svdvals(X)
        if abs(answer - (S_raw[:k].pow(2).sum() / S_raw.pow(2).sum()).item()) <= 1e-3:
            print("Close: PCA describes the images around their mean. Subtract the mean face first.")
        else:
            print(f"Not yet. Explained variance = (sum of the first {k} sigma^2) / (sum of all sigma^2), "
                  "with the sigmas of the centred matrix.")
    return False


def check_face_rebuild(answer, X, *, index, k):
    """Exercise (09): image ``index`` (a column of X) rebuilt from the mean and k eigenfaces."""
    if answer is None or not hasattr(answer, "shape") and not isinstance(answer, (list, tuple)):
        print("Set `answer` to the rebuilt image: the mean face plus its projection on k eigenfaces.")
        return False
    X, mean, U, _ = _centred_svd(X)
    x, mean, U_k = X[:, index], mean[:, 0], U[:, :k]
    expected = mean + U_k @ (U_k.T @ (x - mean))
    answer = _as_tensor(answer).double()
    if answer.numel() != expected.numel():
        print(f"The image should have {expected.numel()} pixels; yours has {answer.numel()}.")
        return False
    answer = answer.reshape(-1)
    # float64 products of length <= 625: round-off below 1e-10; 1e-6 also accepts float32 work
    if torch.allclose(answer, expected, atol=1e-6, rtol=0):
        error = (torch.linalg.norm(x - answer) / torch.linalg.norm(x)).item()
        print(f"✓ image {index} rebuilt from {k} eigenfaces, relative error {error:.1%}.")
        return True
    if torch.allclose(answer + mean, expected, atol=1e-6, rtol=0):
        print("Almost: the eigenfaces describe differences from the mean face. Add the mean back.")
    elif torch.allclose(answer, U_k @ (U_k.T @ x) + mean, atol=1e-6, rtol=0) or torch.allclose(
            answer, U_k @ (U_k.T @ x), atol=1e-6, rtol=0):
        print("Subtract the mean face before projecting onto the eigenfaces, then add it back.")
    else:
        print(f"Not yet. Project the centred image onto the first {k} eigenfaces (U_k U_k^T (x - mean)), "
              "then add the mean face.")
    return False
