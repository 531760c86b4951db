"""Checks for the notebooks' exercises.

Each ``check_<what>(answer, ...)`` prints "✓ ..." when the answer is right, or a
hint when it is not (never the answer itself), and returns True or False.
The checks recompute what they need from the inputs the exercise gives.

>>> check_power_iters(None, torch.eye(3), k=1)
Set `answer` to a whole number of power iterations (0, 1, 2, ...).
False
"""

import math

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


# --- 03 the SVD ---------------------------------------------------------------------

def _vector(x, length):
    """x as a float64 1-D tensor of the given length, or None when it is not one."""
    if x is None:
        return None
    try:
        v = _as_tensor(x).double().flatten()
    except (TypeError, ValueError, RuntimeError):
        return None
    return v if v.numel() == length else None


def check_rank_one(sigmas, u1, v1, x, y):
    """Exercise (03): the singular values, u_1 and v_1 of M = x y^T, typed in by hand."""
    x, y = _as_tensor(x).double(), _as_tensor(y).double()
    s, u, v = _vector(sigmas, 2), _vector(u1, len(x)), _vector(v1, len(y))
    if s is None or u is None or v is None:
        print(f"Set `sigmas` to 2 numbers, `u1` to {len(x)} numbers and `v1` to {len(y)} numbers.")
        return False
    sigma = (x.norm() * y.norm()).item()
    tol = 1e-3                 # typed-in fractions to 3 decimals or better
    if abs(s[1].item()) > tol:
        print("M = x y^T has rank one: how many singular values can be non-zero?")
        return False
    if abs(s[0].item() - sigma) > tol * sigma:
        print("sigma_1 is not right. Write M = (|x| |y|) (x/|x|) (y/|y|)^T: the number in front is sigma_1.")
        return False
    if abs(u.norm().item() - 1) > tol or abs(v.norm().item() - 1) > tol:
        print("Singular vectors have length 1: divide x and y by their lengths.")
        return False
    if (s[0] * torch.outer(u, v) - torch.outer(x, y)).abs().max().item() > tol * sigma:
        print("sigma_1 u_1 v_1^T should give back M. Check the directions, and flip the signs of "
              "both vectors or of neither.")
        return False
    print(f"✓ sigma = ({s[0].item():g}, {s[1].item():g}); sigma_1 u_1 v_1^T gives back M.")
    return True


def check_rotation_sigmas(answer, theta):
    """Exercise (03): the two singular values of the rotation by theta."""
    s = _vector(answer, 2)
    if s is None:
        print("Set `rotation_sigmas` to the two singular values, e.g. from torch.linalg.svdvals.")
        return False
    c, si = math.cos(theta), math.sin(theta)
    # float32 SVD of a 2 x 2 matrix: round-off far below 1e-5
    if torch.allclose(s.sort().values, torch.tensor(sorted([abs(c), abs(si)]), dtype=s.dtype), atol=1e-5):
        print("Those are |cos theta| and |sin theta|, the sizes of the entries. A singular value is a "
              "stretch: how much does a rotation stretch a vector?")
        return False
    if (s - 1).abs().max().item() > 1e-5:
        print("Not quite. A rotation keeps every length: what does that make Q^T Q, and its eigenvalues?")
        return False
    print("✓ Both singular values are 1: a rotation maps the circle to itself.")
    return True


def check_largest_stretch(best_random, stretch_v1, A):
    """Exercise (03): the best ||A v|| over random unit vectors, and ||A v_1|| = sigma_1."""
    if not all(isinstance(a, (int, float, np.floating)) or torch.is_tensor(a) and a.numel() == 1
               for a in (best_random, stretch_v1)):
        print("Set `best_random_stretch` and `stretch_v1` to numbers (use .item() on a tensor).")
        return False
    sigma_1 = torch.linalg.svdvals(_as_tensor(A).double())[0].item()
    best_random, stretch_v1 = float(best_random), float(stretch_v1)
    tol = 1e-4                  # float32 products of n terms: relative round-off far below 1e-4
    if best_random > sigma_1 * (1 + tol):
        print("Your best random stretch is larger than any stretch A can give. Did you make the "
              "random vectors unit length (divide each column by its norm)?")
        return False
    if best_random < 0.05 * sigma_1:
        print("Your best random stretch is very small. Is it the largest ||A v|| over the vectors, "
              "with v of length 1?")
        return False
    if abs(stretch_v1 - sigma_1) > tol * sigma_1:
        print("||A v_1|| is not right. v_1 is the first row of Vh (not the first column).")
        return False
    print(f"✓ The random vectors reach {best_random / sigma_1:.0%} of sigma_1; v_1 reaches sigma_1 itself.")
    return True


def check_frobenius_from_sigmas(answer, A):
    """Exercise (03): ||A||_F^2 computed from the singular values."""
    if not isinstance(answer, (int, float, np.floating)) and not (torch.is_tensor(answer) and answer.numel() == 1):
        print("Set `frobenius_squared` to a number computed from S.")
        return False
    A = _as_tensor(A).double()
    answer = float(answer)
    target = A.pow(2).sum().item()
    s = torch.linalg.svdvals(A)
    # float32 singular values squared and summed: relative round-off below 1e-5
    if abs(answer - target) <= 1e-5 * target:
        print(f"✓ {answer:.1f}: the sum of the squared singular values is the sum of the squared pixels.")
        return True
    if abs(answer - s.sum().item()) <= 1e-4 * s.sum().item():
        print("That is the sum of the singular values. The eigenvalues of A^T A are sigma_i squared.")
    elif abs(answer - target ** 0.5) <= 1e-4 * target ** 0.5:
        print("That is ||A||_F itself; the exercise asks for its square.")
    else:
        print("Not quite: add up one term per singular value. What are the eigenvalues of A^T A?")
    return False


# --- 04 truncation ------------------------------------------------------------------

def _whole_number(answer, name):
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
        print(f"Set `{name}` to a whole number.")
        return False
    return True


def check_rank_for_psnr(answer, img, *, target=30):
    """Exercise (04): the smallest rank whose uint8 reconstruction reaches ``target`` dB."""
    if not _whole_number(answer, "k30"):
        return False
    decomposition = helpers.svd(helpers.to_unit(img))
    max_rank = len(decomposition.S)
    if not 1 <= answer <= max_rank:
        print(f"A rank lies between 1 and {max_rank}.")
        return False

    def psnr_at(k):
        return helpers.psnr(img, helpers.to_uint8(helpers.reconstruct(decomposition, k)))

    if psnr_at(answer) < target:
        print(f"At rank {answer} the PSNR is {psnr_at(answer):.2f} dB, below {target} dB. Try a higher rank.")
        return False
    if answer > 1 and psnr_at(answer - 1) >= target:
        print(f"Rank {answer} reaches {target} dB, but so does a lower rank. Find the smallest.")
        return False
    print(f"✓ Rank {answer} is the first to reach {target} dB ({psnr_at(answer):.2f} dB).")
    return True


def check_spectral_errors(errors, R):
    """Exercise (04): ||R - R_k||_2 for k = 1, ..., min(m, n) - 1."""
    s = torch.linalg.svdvals(_as_tensor(R).double())
    count = len(s) - 1
    e = _vector(errors, count)
    if e is None:
        print(f"Set `spectral_errors` to a list of {count} numbers, one per rank k = 1, ..., {count}.")
        return False
    # float64: both sides within about n * eps64 * sigma_1 of exact; 1e-8 relative is far above that
    if torch.allclose(e, s[:count], rtol=1e-8):
        print("Off by one: these are sigma_1, ..., sigma_k. Which singular value does rank k drop first?")
        return False
    if not torch.allclose(e, s[1:], rtol=1e-8):
        print("Some errors are not right. Use the 2-norm (np.linalg.norm(..., 2) or torch.linalg.matrix_norm(..., ord=2)), "
              "not the Frobenius norm, of R minus its rank-k reconstruction.")
        return False
    print(f"✓ All {count} errors equal sigma_(k+1), as Eckart-Young says.")
    return True


def check_rival(rival, A, *, k):
    """Exercise (04): a rank-k rival approximation of A, and its Frobenius error against A_k's."""
    A = _as_tensor(A).double()
    if rival is None or not hasattr(rival, "shape") or tuple(rival.shape) != tuple(A.shape):
        print(f"Set `rival` to an array of A's shape, {tuple(A.shape)}.")
        return False
    rival = _as_tensor(rival).double()
    s_rival = torch.linalg.svdvals(rival)
    # a float32 rank-k matrix has its other singular values at round-off level, below 1e-4 sigma_1
    if s_rival[k].item() > 1e-4 * s_rival[0].item():
        print(f"Your rival has rank above {k}: build it from at most {k} rank-one layers.")
        return False
    error = torch.linalg.norm(A - rival).item()
    best = _optimal_error(torch.linalg.svdvals(A), k)
    print(f"✓ A rank-{k} rival with error {error:.2f}, {error / best - 1:.1%} above the "
          f"Eckart-Young error {best:.2f}.")
    return True


def check_plus_rank(answer):
    """Exercise (04): the rank of a 9 x 9 plus sign (one white row and one white column)."""
    if not _whole_number(answer, "plus_rank"):
        return False
    plus = torch.zeros(9, 9)
    plus[4, :] = 1
    plus[:, 4] = 1
    right = int(torch.linalg.matrix_rank(plus))
    if answer < right:
        print("One rank-one layer is a column times a row. Can a single one draw both bars?")
        return False
    if answer > right:
        print("Count the different rows: most rows are the same. Which rows differ from the others?")
        return False
    print(f"✓ Rank {answer}: one layer for each bar.")
    return True


def check_rank_for_spectral_error(answer, S, eps):
    """Exercise (04): the lowest k with ||A - A_k||_2 = sigma_(k+1) <= eps."""
    if not _whole_number(answer, "k_eps"):
        return False
    s = _as_tensor(S).double()
    right = int((s > eps).sum())
    if answer == right - 1 or answer == right + 1:
        print("Off by one. At rank k the 2-norm error is sigma_(k+1), which is S[k] in Python.")
        return False
    if answer != right:
        error = s[answer].item() if 0 <= answer < len(s) else 0.0
        print(f"At rank {answer} the 2-norm error is {error:.4g}, "
              f"{'above' if error > eps else 'below'} eps. Count the singular values above eps.")
        return False
    print(f"✓ Rank {answer}: sigma_{answer + 1} = {s[answer].item():.4g} <= eps, sigma_{answer} is above it.")
    return True
