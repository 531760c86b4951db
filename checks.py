"""Checks for the notebooks' exercises.

Each ``check_<what>(answer, ...)`` prints "✓ ..." when the answer is right, or a
hint when it is not (never the answer itself), and returns True or False.
The checks recompute what they need from the inputs the exercise gives.

>>> check_power_iters(None, torch.eye(3), k=1)
Set `answer` to a whole number of power iterations (0, 1, 2, ...).
False
"""

import io
import math

import cv2
import numpy as np
import torch

import helpers

# --- answers in any natural form ---------------------------------------------------
# A student's answer may be a torch tensor or a NumPy array, a list or a tuple, a Python
# number, a NumPy scalar or a 0-d tensor. These converters bring each kind to one form, so
# that a check accepts every correct form without special cases of its own.

def _as_tensor(x):
    """x as a CPU torch tensor (a tensor as it is, else through NumPy)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return torch.as_tensor(np.asarray(x))


def _as_array(x):
    """x as a NumPy array (a torch tensor through the CPU)."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _number(x):
    """x as a float when it is one real number (a Python or NumPy number, or an array or tensor
    holding one), else None. True and False are not numbers here, nor are strings."""
    if isinstance(x, (bool, np.bool_, str, bytes)) or x is None:
        return None
    if isinstance(x, (int, float, np.integer, np.floating)):
        return float(x)
    if isinstance(x, (torch.Tensor, np.ndarray)):
        x = _as_array(x)
        if x.size == 1 and (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            return float(x.reshape(-1)[0])
    return None


def _whole(x):
    """x as an int when it is one whole number (2, np.int64(2), torch.tensor(2), 2.0), else None."""
    number = _number(x)
    return int(number) if number is not None and number.is_integer() else None


def _whole_number(answer, name):
    """The answer as an int, or None after printing a hint that it should be a whole number."""
    whole = _whole(answer)
    if whole is None:
        print(f"Set `{name}` to a whole number.")
    return whole


def _truth(x):
    """x as a bool when it is True or False (also np.bool_ or a 1-element bool tensor), else None."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (torch.Tensor, np.ndarray)):
        x = _as_array(x)
        if x.dtype == np.bool_ and x.size == 1:
            return bool(x.reshape(-1)[0])
    return None


def _vector(x, length):
    """x as a float64 1-D tensor of the given length, or None when it is not one."""
    if x is None or isinstance(x, (str, bytes)):
        return None
    try:
        v = _as_tensor(x).double().flatten()
    except (TypeError, ValueError, RuntimeError):
        return None
    return v if v.numel() == length else None


def _optimal_error(S, k):
    """Eckart-Young: the best rank-k Frobenius error is sqrt(sum of the tail sigma^2)."""
    return S[k:].double().pow(2).sum().sqrt().item()


# --- 08 randomized SVD ------------------------------------------------------------

# The largest ||A - Q Q^T A||_F / (optimal rank-k error) that check_range_basis accepts. Measured
# for notebook 08's exercise (the camera, 512 x 512 float32, k = 20, oversample = 10) with
# Q, _ = torch.linalg.qr(A @ G), G = torch.randn(512, 30, generator=torch.Generator().manual_seed(s))
# for the 20,000 seeds s = 0, ..., 19,999: the ratio ranges from 1.17 to 1.363 (worst: seed 8959),
# median 1.25. 1.6 leaves a margin of 17% above that worst seed (tests/test_checks.py re-measures
# 500 seeds against it). The wrong sketch A.T @ G gives 1.87 to 2.34 over the same seeds, all above.
# HMT's (2011, Thm 10.5) bound on the *average*, sqrt(1 + k/(p - 1)) = 1.80 here, holds for every
# matrix and is too loose to tell the two apart; for other inputs, measure the ratio anew.
RANGE_BASIS_MAX_RATIO = 1.6


def check_range_basis(Q, A, *, k, oversample=10, max_ratio=RANGE_BASIS_MAX_RATIO):
    """Exercise (08): Q is an orthonormal basis for a Gaussian sketch of A with k + oversample columns.

    Q is accepted when ||A - Q Q^T A||_F is at most ``max_ratio`` times the optimal rank-k error.
    """
    A = _as_tensor(A)
    m, n = A.shape
    width = k + oversample
    if Q is None or not hasattr(Q, "shape"):
        print("Set `Q` to the orthonormal basis: sketch A with a Gaussian matrix, then call torch.linalg.qr.")
        return False
    Q = _as_tensor(Q).to(A.dtype)
    if tuple(Q.shape) == (n, width) and m != n:
        print(f"Q has one row per column of A ({n}), so it is a basis for A.T's range. "
              "Multiply A itself by the Gaussian matrix: the sketch is A @ G.")
        return False
    if tuple(Q.shape) != (m, width):
        print(f"Q should have one row per row of A and k + oversample columns; yours is {tuple(Q.shape)}. "
              "How many columns does the Gaussian matrix need?")
        return False
    # float32 QR of an m x width matrix: round-off far below 1e-4
    if (Q.T @ Q - torch.eye(width, dtype=A.dtype)).abs().max().item() > 1e-4:
        print("The columns of Q are not orthonormal (Q^T Q is not I). Did you keep the Q of torch.linalg.qr?")
        return False
    optimal = _optimal_error(torch.linalg.svdvals(A), k)
    ratio = torch.linalg.norm(A - Q @ (Q.T @ A)).item() / optimal
    if ratio > max_ratio:
        if torch.linalg.norm(A.T - Q @ (Q.T @ A.T)).item() <= max_ratio * optimal:
            print("Q is orthonormal, but it fits the rows of A (the range of A.T), not its columns. "
                  "Multiply A itself by the Gaussian matrix: the sketch is A @ G.")
        else:
            print("Q is orthonormal but captures too little of A. Is the sketch A @ G (not G alone)?")
        return False
    print(f"✓ Q is an orthonormal {m} x {width} basis; it leaves ||A - Q Q^T A||_F at "
          f"{ratio:.2f} times the optimal rank-{k} error.")
    return True


def check_power_iters(answer, A, *, k, within=0.01):
    """Exercise (08): the smallest number of power iterations whose rank-k error is
    within ``within`` (a fraction) of the optimal (Eckart-Young) error."""
    answer = _whole(answer)
    if answer is None or answer < 0:
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
    pair = _vector(answer, 2)
    if pair is None:
        print("Set `answer` to a pair: (per-channel break-even rank, stacked break-even rank).")
        return False
    per_channel, stacked = m * n / (m + n + 1), 3 * m * n / (m + 3 * n + 1)
    names = ("per-channel", "stacked")
    for name, got, want, values in zip(names, pair.tolist(), (per_channel, stacked),
                                       ("3k(m + n + 1)", "k(m + 3n + 1)"), strict=True):
        # exact formulas; allow round-off only (float32, as in a tensor, is within 1e-7 relative)
        if not abs(got - want) <= 1e-6 * want:
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
    answer = _whole(answer)
    if answer is None or not 1 <= answer <= total // 3:
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
    answer = _number(answer)
    if answer is None:
        print("Set `answer` to a number: a fraction between 0 and 1.")
        return False
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
    best_random, stretch_v1 = _number(best_random), _number(stretch_v1)
    if best_random is None or stretch_v1 is None:
        print("Set `best_random_stretch` and `stretch_v1` to numbers (use .item() on a tensor).")
        return False
    sigma_1 = torch.linalg.svdvals(_as_tensor(A).double())[0].item()
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
    answer = _number(answer)
    if answer is None:
        print("Set `frobenius_squared` to a number computed from S.")
        return False
    A = _as_tensor(A).double()
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

def check_rank_for_psnr(answer, img, *, target=30):
    """Exercise (04): the smallest rank whose uint8 reconstruction reaches ``target`` dB."""
    answer = _whole_number(answer, "k30")
    if answer is None:
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
    answer = _whole_number(answer, "plus_rank")
    if answer is None:
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
    answer = _whole_number(answer, "k_eps")
    if answer is None:
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


# --- 06 the explorer ----------------------------------------------------------------

def check_ramp_pattern_rank(answer):
    """Exercise (06): the rank of a ramp (every row the same) plus sin(a y) cos(b x)."""
    answer = _whole_number(answer, "expected_rank")
    if answer is None:
        return False
    y = np.linspace(0, 1, 200)[:, None]
    x = np.linspace(0, 1, 300)[None, :]
    picture = 0.2 + 0.5 * x * np.ones_like(y) + 0.2 * np.sin(9 * y) * np.cos(7 * x)
    right = int(np.linalg.matrix_rank(picture))
    if answer == min(picture.shape):
        print("That is full rank: true for the uint8 picture (rounding adds noise), but before rounding "
              "each part is a column times a row. How many such parts are there?")
        return False
    if answer != right:
        print("Each part is one column times one row (the ramp: every row is the same). "
              "How many rank-one parts does the sum have?")
        return False
    print(f"✓ Rank {answer}: one rank-one layer per part.")
    return True


def check_break_even_rank(answer, m, n):
    """Exercise (06): the break-even rank for uint8 factors, rounded to a whole rank."""
    answer = _whole_number(answer, "k_break_even")
    if answer is None:
        return False
    k_star = helpers.break_even_rank(m, n)
    if answer not in (math.floor(k_star), math.ceil(k_star)):
        ratio = m * n / helpers.stored_bytes(m, n, max(answer, 1), "uint8")
        print(f"At rank {answer} the factors take {1 / ratio:.2f} times the pixels' bytes. At the break-even "
              "rank, k(m + n + 1) one-byte values take as many bytes as the m n pixels.")
        return False
    print(f"✓ Rank {answer}: the break-even rank is {k_star:.1f}.")
    return True


def check_stretched_error(stretched, img, picture):
    """Exercise (06): |img - picture| as uint8, scaled so that the largest error is 255."""
    if stretched is None or not hasattr(stretched, "shape") or tuple(stretched.shape) != tuple(img.shape):
        print(f"Set `stretched` to an image of the picture's shape, {tuple(img.shape)}.")
        return False
    stretched, img, picture = _as_array(stretched), _as_array(img), _as_array(picture)
    if stretched.dtype != np.uint8:
        print(f"`stretched` is {stretched.dtype}; round it and convert to uint8, as in notebook 02.")
        return False
    error = np.abs(img.astype(np.int16) - picture.astype(np.int16)).astype(np.float64)
    if stretched.max() != 255:
        print("The largest error should be white (255). Divide by the largest error, then scale to 255.")
        return False
    right = np.rint(255 * error / error.max())
    if np.abs(stretched - right).max() > 1:       # rounding up or down: at most one grey level
        print("Not quite. Use the absolute error |img - picture| in a signed type (uint8 wraps around), "
              "scaled by 255 / (largest error).")
        return False
    print("✓ The error, stretched so that the largest is white.")
    return True


def _gavish_donoho_rank(noisy, sigma):
    """The number of singular values of ``noisy`` above Gavish and Donoho's threshold for known noise sigma."""
    short, long = sorted(np.shape(noisy))
    beta = short / long
    lambda_star = math.sqrt(2 * (beta + 1) + 8 * beta / (beta + 1 + math.sqrt(beta**2 + 14 * beta + 1)))
    s = torch.linalg.svdvals(_as_tensor(noisy).double())
    return int((s > lambda_star * math.sqrt(long) * sigma).sum())


def check_threshold_rank(answer, noisy, sigma):
    """Exercise (06): the rank the known-noise optimal hard threshold keeps for this noisy picture."""
    answer = _whole_number(answer, "k_threshold")
    if answer is None:
        return False
    right = _gavish_donoho_rank(noisy, sigma)
    if answer > right:
        print("Too many singular values kept. Is the threshold lambda*(beta) * sqrt(n) * sigma, with n the "
              "longer side and sigma this picture's noise level?")
        return False
    if answer < right:
        print("Too few kept. Count the singular values of the noisy picture (not the clean one) above "
              "lambda*(beta) * sqrt(n) * sigma.")
        return False
    print(f"✓ Rank {answer}: more noise, so fewer singular values stand out above it.")
    return True


# --- 01 loading ---------------------------------------------------------------------

def check_brightest_pixel(position, n_white, img):
    """Exercise (01): the (row, column) of a brightest pixel, and the number of pure white pixels."""
    img = np.asarray(img)
    pair = _vector(position, 2)
    i, j = (None, None) if pair is None else (_whole(p) for p in pair.tolist())
    n_white = _whole(n_white)
    if i is None or j is None or n_white is None:
        print("Set `brightest` to a (row, column) pair and `n_white` to a whole number.")
        return False
    if not (0 <= i < img.shape[0] and 0 <= j < img.shape[1]):
        print(f"({i}, {j}) lies outside the image, which has {img.shape[0]} rows and {img.shape[1]} columns. "
              "Did you use np.unravel_index?")
        return False
    if img[i, j] != img.max():
        swapped = j < img.shape[0] and i < img.shape[1] and img[j, i] == img.max()
        print("Rows come first: (row, column)." if swapped else
              f"img[{i}, {j}] is {img[i, j]}, not the largest value. np.argmax gives a flat index; "
              "np.unravel_index turns it into (row, column).")
        return False
    if n_white != np.count_nonzero(img == 255):
        print("The count of pure white pixels is not right: count where img == 255 (np.count_nonzero).")
        return False
    print(f"✓ img[{i}, {j}] = {img[i, j]} is a brightest pixel; {n_white} pixels are pure white.")
    return True


def check_transpose(transposed, img):
    """Exercise (01): the transpose of the image, entry (i, j) moved to (j, i)."""
    img = np.asarray(img)
    if transposed is None or not hasattr(transposed, "shape"):
        print("Set `transposed` to the transposed image (an array).")
        return False
    transposed = _as_array(transposed)
    if np.array_equal(transposed, img.T):
        print(f"✓ The transpose: {img.shape[0]} x {img.shape[1]} became {transposed.shape[0]} x {transposed.shape[1]}.")
        return True
    if any(np.array_equal(transposed, other) for other in (np.rot90(img), np.rot90(img, -1), img[::-1], img[:, ::-1])):
        print("That is a rotation or a mirror across the middle. The transpose moves entry (i, j) to (j, i): "
              "a mirror across the main diagonal.")
    else:
        print("Not the transpose. Entry (i, j) of the image must land at (j, i).")
    return False


def check_bt709(grey_709, r, g, b):
    """Exercise (01): the BT.709 grey image 0.2126 R + 0.7152 G + 0.0722 B, as floats."""
    r, g, b = (np.asarray(c, dtype=np.float64) for c in (r, g, b))
    if grey_709 is None or not hasattr(grey_709, "shape") or np.shape(grey_709) != r.shape:
        print(f"Set `grey_709` to an array of the photo's shape, {r.shape}.")
        return False
    grey_709 = _as_array(grey_709).astype(np.float64)
    right = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # float32 arithmetic on values up to 255: round-off below 1e-3 grey levels
    if np.abs(grey_709 - right).max() <= 1e-3:
        print("✓ BT.709 grey, unrounded.")
        return True
    if np.abs(grey_709 - right).max() <= 0.5 + 1e-3:
        print("Close: keep the floats; rounding to whole grey levels hides the small differences you want to see.")
    elif np.abs(grey_709 - (0.299 * r + 0.587 * g + 0.114 * b)).max() <= 0.5 + 1e-3:
        print("Those are BT.601's weights. Use BT.709's, given in the exercise.")
    else:
        print("Not quite. Check which channel gets which weight: r, g and b, not the BGR order OpenCV uses.")
    return False


# --- 02 normalization ---------------------------------------------------------------

def check_brighten_float(brighter, img):
    """Exercise (02): the image brightened by 100 grey levels in floats, back as uint8."""
    img = np.asarray(img)
    if brighter is None or not hasattr(brighter, "shape") or np.shape(brighter) != img.shape:
        print(f"Set `brighter_float` to an image of shape {img.shape}.")
        return False
    brighter = _as_array(brighter)
    if brighter.dtype != np.uint8:
        print(f"`brighter_float` is {brighter.dtype}; convert back with helpers.to_uint8.")
        return False
    if np.array_equal(brighter, (img + np.uint8(100)).astype(np.uint8)):
        print("The bright pixels wrapped around to dark ones: that is uint8 arithmetic. Add in floats (A + 100/255).")
        return False
    if not np.array_equal(brighter, np.clip(img.astype(np.int16) + 100, 0, 255).astype(np.uint8)):
        print("Not quite: add 100/255 to the normalized image A, then convert with helpers.to_uint8.")
        return False
    print("✓ The same as brightening in int16 and clipping: to_uint8 clips after scaling.")
    return True


def check_halved_sigmas(answer, A):
    """Exercise (02): the singular values of A / 2, predicted from those of A."""
    A = _as_tensor(A).float()
    s = torch.linalg.svdvals(A)
    count = len(s)
    mine = _vector(answer, count)
    if mine is None:
        print(f"Set `S_half_predicted` to {count} numbers (a tensor like S1).")
        return False
    actual = torch.linalg.svdvals(A / 2).double()
    # float32 SVDs of A and A/2: each within about n * eps32 * sigma_1 of exact (notebook 02, section 3)
    tol = 2 * count * torch.finfo(torch.float32).eps * s[0].item()
    if (mine - s.double()).abs().max().item() <= tol:
        print("Those are the singular values of A itself. What does halving every entry do to every stretch?")
        return False
    if (mine - actual).abs().max().item() > tol:
        print("Not quite. A / 2 = U (Sigma / 2) V^T is still an SVD: which factor changes?")
        return False
    print("✓ Halving A halves every singular value; U and V stay the same.")
    return True


def check_shift_sigmas(answer, A, *, shift=0.1):
    """Exercise (02): sigma_i(A + shift) - sigma_i(A) for the first five i."""
    mine = _vector(answer, 5)
    if mine is None:
        print("Set `differences` to the 5 differences S_plus[:5] - S1[:5].")
        return False
    A = _as_tensor(A).float()
    right = (torch.linalg.svdvals(A + shift)[:5] - torch.linalg.svdvals(A)[:5]).double()
    # float32 SVDs: each value within about n * eps32 * sigma_1 (a few 1e-3 at most here); allow 1e-2
    if (mine - right).abs().max().item() <= 1e-2:
        print("✓ Not a shift: sigma_1 takes most of it and the others change by different amounts.")
        return True
    if (mine - shift).abs().max().item() <= 1e-6:
        print("Adding a constant to every entry does not add it to every singular value. Compute them.")
    else:
        print("Not quite: compute torch.linalg.svdvals(A + 0.1) and subtract the values of A, first five.")
    return False


# --- 05 sizes -----------------------------------------------------------------------

def check_full_hd_break_even(k_uint8, k_float32, saves_at_200):
    """Exercise (05): a 1080 x 1920 frame's break-even ranks, and whether float32 rank 200 saves bytes."""
    k_uint8, k_float32, saves_at_200 = _number(k_uint8), _number(k_float32), _truth(saves_at_200)
    if k_uint8 is None or k_float32 is None or saves_at_200 is None:
        print("Set `k_star_uint8` and `k_star_float32` to numbers and `saves_at_200` to True or False.")
        return False
    m, n = 1080, 1920
    right_1, right_4 = helpers.break_even_rank(m, n, 1), helpers.break_even_rank(m, n, 4)
    if abs(k_uint8 - right_1) > 1 or abs(k_float32 - right_4) > 1:     # a whole rank either side
        if abs(k_uint8 - right_4) <= 1 and abs(k_float32 - right_1) <= 1:
            print("The two are swapped: four bytes per value reach the pixels' bytes sooner.")
        else:
            print("Not quite. Solve k (m + n + 1) x (bytes per value) = m n (one byte per pixel) for k.")
        return False
    if saves_at_200 != (helpers.stored_bytes(m, n, 200, "float32") < m * n):
        print("Compare rank 200 with the float32 break-even rank: below it the SVD saves bytes, above it not.")
        return False
    print(f"✓ k* = {right_1:.1f} with 1-byte values and {right_4:.1f} with float32.")
    return True


def _smallest_reaching(sizes, quality, target):
    ok = np.flatnonzero(np.asarray(quality) >= target)
    return None if ok.size == 0 else int(np.asarray(sizes)[ok].min())


def check_plaid_best_rank(answer, plaid_curves):
    """Exercise (05): the rank where the plaid's SVD file beats the smallest JPEG of equal PSNR by most."""
    svd_sizes, svd_quality, ranks = plaid_curves["SVD file"]
    jpeg_sizes, jpeg_quality, _ = plaid_curves["JPEG"]
    answer = _whole_number(answer, "best_rank")
    if answer is None:
        return False
    if answer not in ranks:
        print(f"Pick one of the ranks of the sweep: {list(ranks)}.")
        return False
    ratios = {}
    for size, quality, k in zip(svd_sizes, svd_quality, ranks, strict=True):
        match = _smallest_reaching(jpeg_sizes, jpeg_quality, quality)
        if match is not None:
            ratios[k] = match / size
    if answer not in ratios:
        print(f"At rank {answer} no JPEG of the sweep reaches the SVD file's PSNR, so there is no ratio.")
        return False
    best = max(ratios, key=ratios.get)
    if answer != best:
        print(f"At rank {answer} the JPEG is {ratios[answer]:.1f} times the SVD file; another rank does better. "
              "Compute the ratio at every rank.")
        return False
    print(f"✓ Rank {answer}: the JPEG of equal PSNR is {ratios[answer]:.1f} times the SVD file.")
    return True


def check_document_winner(winner, doc):
    """Exercise (05): which of "SVD file", "JPEG", "WebP" reaches 30 dB on the document in fewest bytes."""
    methods = ("SVD file", "JPEG", "WebP")
    spelled = {method.lower(): method for method in methods}      # "webp" names WebP too
    winner = spelled.get(winner.strip().lower()) if isinstance(winner, str) else None
    if winner is None:
        print(f"Set `winner` to one of {methods}.")
        return False
    decomposition = helpers.svd(helpers.to_unit(doc))
    sizes = {}
    for k in (5, 10, 25, 50, 75, 100, 150, 200, 300):
        buffer = io.BytesIO()
        size = helpers.save_svd(buffer, decomposition, k)
        buffer.seek(0)
        if helpers.psnr(doc, helpers.to_uint8(helpers.reconstruct(helpers.load_svd(buffer), k))) >= 30:
            sizes["SVD file"] = size
            break
    for method, fmt, settings in (("JPEG", "jpeg", range(5, 100, 5)), ("WebP", "webp", [1, *range(5, 101, 5)])):
        reaching = []
        for setting in settings:
            data = helpers.encode(doc, fmt, setting)
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if helpers.psnr(doc, decoded) >= 30:
                reaching.append(len(data))
        if reaching:
            sizes[method] = min(reaching)
    best = min(sizes, key=sizes.get)
    if winner != best:
        print(f"{winner} is not the smallest at 30 dB. For each method find the smallest file that reaches "
              "30 dB, then compare.")
        return False
    print(f"✓ {winner}: " + ", ".join(f"{m} {s / 1000:.1f} kB" for m, s in sizes.items()) + " at 30 dB.")
    return True


# --- 00 start here ------------------------------------------------------------------

def check_pillow_pin(installed, pinned):
    """Exercise (00): Pillow's installed version (PIL.__version__) and its pin in requirements.txt."""
    from pathlib import Path

    import PIL
    from packaging.requirements import Requirement
    from packaging.version import Version

    installed, pinned = (str(v) if isinstance(v, Version) else v for v in (installed, pinned))
    if not isinstance(installed, str) or not isinstance(pinned, str):
        print("Set `pillow_installed` and `pillow_pinned` to version strings such as '1.2.3'.")
        return False
    if installed.strip() != PIL.__version__:
        print("`pillow_installed` is not the version Python imports: print PIL.__version__.")
        return False
    requirements = (Path(helpers.__file__).parent / "requirements.txt").read_text().splitlines()
    pins = [Requirement(line) for line in (line.split("#")[0].strip() for line in requirements) if line]
    pin = next(str(r.specifier).removeprefix("==") for r in pins if r.name.lower() == "pillow"
               and (r.marker is None or r.marker.evaluate()))
    if pinned.strip().removeprefix("==") != pin:
        print("The pin is in the dictionary `pins`, under the package's name in lower case ('pillow').")
        return False
    print(f"✓ Pillow {PIL.__version__}, " + ("as pinned." if PIL.__version__ == pin else
                                             f"but the pin is {pin}: run `make lab` again."))
    return True


def check_height_width(height, width, img):
    """Exercise (00): the height and the width of an image, from its shape."""
    height = _whole_number(height, "height")
    width = None if height is None else _whole_number(width, "width")
    if width is None:
        return False
    rows, columns = np.shape(img)[:2]
    if (height, width) == (columns, rows):
        print("Swapped: the shape is (rows, columns), and rows run down the picture.")
        return False
    if (height, width) != (rows, columns):
        print("Read both numbers from the image's .shape.")
        return False
    print(f"✓ {height} rows (the height) and {width} columns (the width).")
    return True


def check_more_numbers_than_pixels(answer, m, n):
    """Exercise (00): the smallest rank at which k(m + n + 1) stored numbers exceed m n pixels."""
    answer = _whole_number(answer, "k_more")
    if answer is None:
        return False
    right = m * n // (m + n + 1) + 1
    if helpers.stored_values(m, n, answer) <= m * n:
        print(f"At rank {answer} the SVD keeps {helpers.stored_values(m, n, answer):,} numbers, not more than "
              f"the {m * n:,} pixels. Go higher.")
        return False
    if answer > right:
        print(f"At rank {answer} the SVD keeps more numbers than pixels, but so does a lower rank. Find the smallest.")
        return False
    print(f"✓ Rank {answer}: {helpers.stored_values(m, n, answer):,} numbers against {m * n:,} pixels.")
    return True
