"""Exercise checks of notebooks 00-09: each passes the right answer (the folded solution's),
accepts the other natural forms of it (a NumPy array where a tensor is expected and back, a 0-d
tensor or a NumPy scalar where a number is, a tuple where a list is, ...), and rejects a wrong
one with a hint that does not give the answer away.

The folded solutions themselves run in tests/test_notebooks.py, after their notebooks.
"""

import importlib.metadata
import inspect
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import checks
import helpers


@pytest.fixture(scope="module")
def camera():
    return helpers.to_unit(helpers.sample_image("camera"))


@pytest.fixture(scope="module")
def camera_uint8():
    return helpers.sample_image("camera")


def verdict(capsys, check, *args, **kwargs):
    """(result, printed text) of one check call."""
    result = check(*args, **kwargs)
    return result, capsys.readouterr().out


def passes(capsys, check, *args, **kwargs):
    result, out = verdict(capsys, check, *args, **kwargs)
    assert result is True and out.startswith("✓"), out


def fails(capsys, check, *args, must_not_say=(), **kwargs):
    result, out = verdict(capsys, check, *args, **kwargs)
    assert result is False and out.strip() and "✓" not in out, out
    for secret in must_not_say:
        assert secret not in out, f"the hint gives the answer away: {out}"
    return out


def test_every_check_has_its_test():
    names = [name for name, _ in inspect.getmembers(checks, inspect.isfunction) if name.startswith("check_")]
    tests = {name for name in dir(sys.modules[__name__]) if name.startswith("test_")}
    assert len(names) >= 30
    assert [name for name in names if "test_" + name.removeprefix("check_") not in tests] == []


# --- 00 -------------------------------------------------------------------------

def test_pillow_pin(capsys):
    import PIL
    from packaging.version import Version

    requirements = Path(helpers.__file__).with_name("requirements.txt").read_text().splitlines()
    pin = next(line.removeprefix("pillow==").strip() for line in requirements if line.startswith("pillow=="))
    passes(capsys, checks.check_pillow_pin, PIL.__version__, pin)                  # the solution
    passes(capsys, checks.check_pillow_pin, importlib.metadata.version("pillow"), "==" + pin)
    passes(capsys, checks.check_pillow_pin, Version(PIL.__version__), Version(pin))
    fails(capsys, checks.check_pillow_pin, None, None)
    fails(capsys, checks.check_pillow_pin, "0.0.1", pin, must_not_say=[PIL.__version__])
    fails(capsys, checks.check_pillow_pin, PIL.__version__, "0.0.1", must_not_say=[pin])


def test_height_width(capsys):
    hubble = helpers.sample_image("hubble")
    rows, columns = hubble.shape
    passes(capsys, checks.check_height_width, rows, columns, hubble)
    passes(capsys, checks.check_height_width, np.int64(rows), torch.tensor(columns), hubble)
    passes(capsys, checks.check_height_width, *torch.from_numpy(hubble).shape, hubble)
    fails(capsys, checks.check_height_width, None, None, hubble)
    assert "Swapped" in fails(capsys, checks.check_height_width, columns, rows, hubble)
    fails(capsys, checks.check_height_width, rows, rows, hubble, must_not_say=[str(columns)])
    fails(capsys, checks.check_height_width, rows + 0.5, columns, hubble)


def test_more_numbers_than_pixels(capsys):
    passes(capsys, checks.check_more_numbers_than_pixels, 256, 512, 512)
    for other_form in (np.int64(256), torch.tensor(256), 256.0):
        passes(capsys, checks.check_more_numbers_than_pixels, other_form, 512, 512)
    for wrong in (None, "256", True):
        fails(capsys, checks.check_more_numbers_than_pixels, wrong, 512, 512)
    fails(capsys, checks.check_more_numbers_than_pixels, 255, 512, 512, must_not_say=["256"])
    fails(capsys, checks.check_more_numbers_than_pixels, 300, 512, 512, must_not_say=["256"])


# --- 01 -------------------------------------------------------------------------

def test_brightest_pixel(capsys, camera_uint8):
    img = camera_uint8
    i, j = np.unravel_index(np.argmax(img), img.shape)              # NumPy integers
    n_white = np.count_nonzero(img == 255)
    passes(capsys, checks.check_brightest_pixel, (i, j), n_white, img)
    passes(capsys, checks.check_brightest_pixel, [int(i), int(j)], np.int64(n_white), img)
    passes(capsys, checks.check_brightest_pixel, np.argwhere(img == img.max())[0], (img == 255).sum(), img)
    passes(capsys, checks.check_brightest_pixel, torch.tensor([i, j]),
           (torch.from_numpy(img) == 255).sum(), img)                 # a 0-d tensor
    fails(capsys, checks.check_brightest_pixel, None, None, img)
    fails(capsys, checks.check_brightest_pixel, (i + 0.5, j), n_white, img)
    fails(capsys, checks.check_brightest_pixel, (0, 0), n_white, img, must_not_say=[f"{i}, {j}"])
    fails(capsys, checks.check_brightest_pixel, (i, j), n_white + 1, img, must_not_say=[str(n_white)])
    fails(capsys, checks.check_brightest_pixel, (int(np.argmax(img)), 0), n_white, img)
    if img[j, i] != img.max():
        assert "Rows come first" in fails(capsys, checks.check_brightest_pixel, (j, i), n_white, img)


def test_transpose(capsys, camera_uint8):
    img = camera_uint8
    passes(capsys, checks.check_transpose, img.T, img)
    passes(capsys, checks.check_transpose, np.transpose(img).copy(), img)
    passes(capsys, checks.check_transpose, torch.from_numpy(img).T, img)
    fails(capsys, checks.check_transpose, None, img)
    assert "diagonal" in fails(capsys, checks.check_transpose, np.rot90(img), img)
    fails(capsys, checks.check_transpose, img, img)


def test_bt709(capsys):
    rgb = helpers.sample_colour_image("astronaut").astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    right = 0.2126 * r + 0.7152 * g + 0.0722 * b
    passes(capsys, checks.check_bt709, right, r, g, b)
    passes(capsys, checks.check_bt709, right.astype(np.float32), r, g, b)
    passes(capsys, checks.check_bt709, rgb @ np.array([0.2126, 0.7152, 0.0722]), r, g, b)
    passes(capsys, checks.check_bt709, torch.from_numpy(right), r, g, b)
    fails(capsys, checks.check_bt709, None, r, g, b)
    assert "BT.601" in fails(capsys, checks.check_bt709, 0.299 * r + 0.587 * g + 0.114 * b, r, g, b)
    fails(capsys, checks.check_bt709, np.rint(right), r, g, b)
    fails(capsys, checks.check_bt709, 0.2126 * b + 0.7152 * g + 0.0722 * r, r, g, b)


# --- 02 -------------------------------------------------------------------------

def test_brighten_float(capsys, camera_uint8):
    img = camera_uint8
    right = helpers.to_uint8(helpers.to_unit(img) + 100 / 255)
    passes(capsys, checks.check_brighten_float, right, img)
    passes(capsys, checks.check_brighten_float, torch.from_numpy(right), img)
    passes(capsys, checks.check_brighten_float, np.clip(img.astype(np.int16) + 100, 0, 255).astype(np.uint8), img)
    fails(capsys, checks.check_brighten_float, None, img)
    assert "wrapped" in fails(capsys, checks.check_brighten_float, img + np.uint8(100), img)
    fails(capsys, checks.check_brighten_float, helpers.to_unit(img) + 100 / 255, img)


def test_halved_sigmas(capsys, camera):
    A = torch.from_numpy(camera)
    S = torch.linalg.svdvals(A)
    passes(capsys, checks.check_halved_sigmas, S / 2, A)
    passes(capsys, checks.check_halved_sigmas, S.numpy() / 2, A)
    passes(capsys, checks.check_halved_sigmas, (S / 2).tolist(), camera)
    fails(capsys, checks.check_halved_sigmas, None, A)
    fails(capsys, checks.check_halved_sigmas, S, A)
    fails(capsys, checks.check_halved_sigmas, S / 4, A)


def test_shift_sigmas(capsys, camera):
    A = torch.from_numpy(camera)
    right = torch.linalg.svdvals(A + 0.1)[:5] - torch.linalg.svdvals(A)[:5]
    passes(capsys, checks.check_shift_sigmas, right, A)
    passes(capsys, checks.check_shift_sigmas, right.numpy(), A)
    passes(capsys, checks.check_shift_sigmas, tuple(right.tolist()), camera)
    fails(capsys, checks.check_shift_sigmas, None, A)
    fails(capsys, checks.check_shift_sigmas, [0.1] * 5, A)
    fails(capsys, checks.check_shift_sigmas, right + 1, A)


# --- 03 -------------------------------------------------------------------------

X, Y = torch.tensor([1.0, 2.0, 2.0]), torch.tensor([3.0, 4.0])


def test_rank_one(capsys):
    passes(capsys, checks.check_rank_one, [15.0, 0.0], [1 / 3, 2 / 3, 2 / 3], [3 / 5, 4 / 5], X, Y)
    passes(capsys, checks.check_rank_one, (15, 0), (-1 / 3, -2 / 3, -2 / 3), (-0.6, -0.8), X, Y)
    U, S, Vh = torch.linalg.svd(torch.outer(X, Y), full_matrices=False)
    passes(capsys, checks.check_rank_one, S, U[:, 0], Vh[0], X, Y)                 # tensors
    passes(capsys, checks.check_rank_one, S.numpy(), U[:, 0].numpy(), Vh[0].numpy(), X, Y)
    fails(capsys, checks.check_rank_one, None, None, None, X, Y)
    fails(capsys, checks.check_rank_one, [9.0, 0.0], [1 / 3, 2 / 3, 2 / 3], [0.6, 0.8], X, Y, must_not_say=["15"])
    fails(capsys, checks.check_rank_one, [15.0, 1.0], [1 / 3, 2 / 3, 2 / 3], [0.6, 0.8], X, Y)
    fails(capsys, checks.check_rank_one, [15.0, 0.0], [1, 2, 2], [3, 4], X, Y)
    out = fails(capsys, checks.check_rank_one, [15.0, 0.0], [-1 / 3, -2 / 3, -2 / 3], [0.6, 0.8], X, Y)
    assert "sign" in out


def test_rotation_sigmas(capsys):
    q = torch.tensor([[math.cos(1.0), -math.sin(1.0)], [math.sin(1.0), math.cos(1.0)]])
    passes(capsys, checks.check_rotation_sigmas, torch.linalg.svdvals(q), 1.0)
    passes(capsys, checks.check_rotation_sigmas, np.linalg.svd(q.numpy(), compute_uv=False), 1.0)
    passes(capsys, checks.check_rotation_sigmas, (1, 1), 1.0)
    fails(capsys, checks.check_rotation_sigmas, None, 1.0)
    fails(capsys, checks.check_rotation_sigmas, [math.sin(1.0), math.cos(1.0)], 1.0, must_not_say=["1.0", "both"])
    fails(capsys, checks.check_rotation_sigmas, [2.0, 0.5], 1.0)


def test_largest_stretch(capsys, camera):
    A = torch.from_numpy(camera)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    sigma_1 = S[0].item()
    stretch_v1 = (A @ Vh[0]).norm()                                     # a 0-d tensor
    passes(capsys, checks.check_largest_stretch, 0.6 * sigma_1, stretch_v1.item(), camera)
    passes(capsys, checks.check_largest_stretch, 0.6 * S[0], stretch_v1, camera)
    passes(capsys, checks.check_largest_stretch, np.float32(0.6 * sigma_1), np.float32(stretch_v1), camera)
    fails(capsys, checks.check_largest_stretch, None, stretch_v1, camera)
    fails(capsys, checks.check_largest_stretch, 2 * sigma_1, stretch_v1, camera)        # vectors not unit length
    fails(capsys, checks.check_largest_stretch, 0.6 * sigma_1, (A[:, 0]).norm().item(), camera,
          must_not_say=[f"{sigma_1:.1f}"])                                               # a column, not v_1


def test_frobenius_from_sigmas(capsys, camera):
    S = torch.linalg.svdvals(torch.from_numpy(camera))
    right = (S.double() ** 2).sum()
    passes(capsys, checks.check_frobenius_from_sigmas, right.item(), camera)
    passes(capsys, checks.check_frobenius_from_sigmas, (S ** 2).sum(), camera)           # float32, 0-d
    passes(capsys, checks.check_frobenius_from_sigmas, np.sum(S.numpy().astype(np.float64) ** 2), camera)
    fails(capsys, checks.check_frobenius_from_sigmas, None, camera)
    out = fails(capsys, checks.check_frobenius_from_sigmas, S.sum().item(), camera,
                must_not_say=[f"{right.item():.1f}"])
    assert "squared" in out or "square" in out
    fails(capsys, checks.check_frobenius_from_sigmas, right.sqrt().item(), camera)


# --- 04 -------------------------------------------------------------------------

def test_rank_for_psnr(capsys, camera_uint8):
    d = helpers.svd(helpers.to_unit(camera_uint8))
    k30 = next(k for k in range(1, 513)
               if helpers.psnr(camera_uint8, helpers.to_uint8(helpers.reconstruct(d, k))) >= 30)
    passes(capsys, checks.check_rank_for_psnr, k30, camera_uint8, target=30)
    passes(capsys, checks.check_rank_for_psnr, np.int64(k30), camera_uint8, target=30)
    passes(capsys, checks.check_rank_for_psnr, torch.tensor(k30), camera_uint8, target=30)
    fails(capsys, checks.check_rank_for_psnr, None, camera_uint8, target=30)
    fails(capsys, checks.check_rank_for_psnr, k30 - 1, camera_uint8, target=30, must_not_say=[str(k30)])
    fails(capsys, checks.check_rank_for_psnr, k30 + 5, camera_uint8, target=30, must_not_say=[str(k30)])
    fails(capsys, checks.check_rank_for_psnr, 0, camera_uint8, target=30)


def test_spectral_errors(capsys):
    R = torch.randn(50, 80, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    d = helpers.svd(R)
    right = [np.linalg.norm(R.numpy() - helpers.reconstruct(d, k), 2) for k in range(1, 50)]
    frobenius = [np.linalg.norm(R.numpy() - helpers.reconstruct(d, k)) for k in range(1, 50)]
    passes(capsys, checks.check_spectral_errors, right, R)
    passes(capsys, checks.check_spectral_errors, np.array(right), R)
    as_tensor = torch.stack([torch.linalg.matrix_norm(R - (d.U[:, :k] * d.S[:k]) @ d.Vh[:k], ord=2)
                             for k in range(1, 50)])
    passes(capsys, checks.check_spectral_errors, as_tensor, R.numpy())
    fails(capsys, checks.check_spectral_errors, None, R)
    fails(capsys, checks.check_spectral_errors, right[:10], R)
    assert "Off by one" in fails(capsys, checks.check_spectral_errors, d.S[:49], R)
    assert "2-norm" in fails(capsys, checks.check_spectral_errors, frobenius, R)


def test_rival(capsys, camera):
    d = helpers.svd(camera)
    skip_first = ((d.U[:, 1:11] * d.S[1:11]) @ d.Vh[1:11]).numpy()
    passes(capsys, checks.check_rival, skip_first, camera, k=10)
    passes(capsys, checks.check_rival, torch.from_numpy(skip_first), camera, k=10)
    passes(capsys, checks.check_rival, helpers.reconstruct(d, 10), torch.from_numpy(camera), k=10)
    fails(capsys, checks.check_rival, None, camera, k=10)
    fails(capsys, checks.check_rival, skip_first[:100], camera, k=10)
    fails(capsys, checks.check_rival, helpers.reconstruct(d, 11), camera, k=10)


def test_plus_rank(capsys):
    plus = torch.zeros(9, 9)
    plus[4, :] = 1
    plus[:, 4] = 1
    passes(capsys, checks.check_plus_rank, 2)
    passes(capsys, checks.check_plus_rank, torch.linalg.matrix_rank(plus))          # a 0-d int64 tensor
    passes(capsys, checks.check_plus_rank, np.linalg.matrix_rank(plus.numpy()))
    passes(capsys, checks.check_plus_rank, 2.0)
    for wrong in (None, "2", True):
        fails(capsys, checks.check_plus_rank, wrong)
    fails(capsys, checks.check_plus_rank, 1, must_not_say=["2"])
    fails(capsys, checks.check_plus_rank, 9, must_not_say=["2"])


def test_rank_for_spectral_error(capsys, camera):
    S = torch.linalg.svdvals(torch.from_numpy(camera).double()).numpy()
    eps = S[0] / 100
    right = int(np.sum(S > eps))
    passes(capsys, checks.check_rank_for_spectral_error, right, S, eps)
    passes(capsys, checks.check_rank_for_spectral_error, np.sum(S > eps), S, eps)             # np.int64
    passes(capsys, checks.check_rank_for_spectral_error, (torch.from_numpy(S) > eps).sum(), torch.from_numpy(S), eps)
    fails(capsys, checks.check_rank_for_spectral_error, None, S, eps)
    assert "Off by one" in fails(capsys, checks.check_rank_for_spectral_error, right + 1, S, eps)
    assert "Off by one" in fails(capsys, checks.check_rank_for_spectral_error, right - 1, S, eps)
    fails(capsys, checks.check_rank_for_spectral_error, right + 20, S, eps, must_not_say=[str(right)])


# --- 05 -------------------------------------------------------------------------

def test_full_hd_break_even(capsys):
    k1, k4 = helpers.break_even_rank(1080, 1920), helpers.break_even_rank(1080, 1920, 4)
    passes(capsys, checks.check_full_hd_break_even, k1, k4, False)
    passes(capsys, checks.check_full_hd_break_even, round(k1), round(k4), False)
    passes(capsys, checks.check_full_hd_break_even, np.float64(k1), torch.tensor(k4), np.bool_(False))
    passes(capsys, checks.check_full_hd_break_even, torch.tensor(k1), k4, torch.tensor(200) < k4)
    fails(capsys, checks.check_full_hd_break_even, None, None, None)
    fails(capsys, checks.check_full_hd_break_even, k1, k4, "no")
    assert "swapped" in fails(capsys, checks.check_full_hd_break_even, k4, k1, False)
    fails(capsys, checks.check_full_hd_break_even, k1, k4, True)
    fails(capsys, checks.check_full_hd_break_even, 1080 * 1920 / 3000 * 2, k4, False, must_not_say=[f"{k1:.1f}"])


def test_plaid_best_rank(capsys):
    # a small stand-in for notebook 05's sweep: SVD file sizes and PSNRs per rank, JPEG per quality
    curves = {"SVD file": (np.array([100, 200, 400]), np.array([30.0, 40.0, 40.0]), [1, 2, 3]),
              "JPEG": (np.array([300, 1000, 3000]), np.array([31.0, 40.5, 45.0]), [10, 50, 90])}
    passes(capsys, checks.check_plaid_best_rank, 2, curves)          # ratios 3, 5, 2.5
    passes(capsys, checks.check_plaid_best_rank, np.int64(2), curves)
    passes(capsys, checks.check_plaid_best_rank, torch.tensor(2), curves)
    as_arrays = {name: (sizes, quality, np.array(settings)) for name, (sizes, quality, settings) in curves.items()}
    passes(capsys, checks.check_plaid_best_rank, 2, as_arrays)
    fails(capsys, checks.check_plaid_best_rank, None, curves)
    fails(capsys, checks.check_plaid_best_rank, 1, curves, must_not_say=["rank 2"])
    fails(capsys, checks.check_plaid_best_rank, 7, curves)


def test_document_winner(capsys):
    doc = helpers.sample_image("document")
    passes(capsys, checks.check_document_winner, "WebP", doc)
    passes(capsys, checks.check_document_winner, np.str_("webp "), doc)
    fails(capsys, checks.check_document_winner, None, doc)
    fails(capsys, checks.check_document_winner, "PNG", doc)
    fails(capsys, checks.check_document_winner, "SVD file", doc, must_not_say=["WebP"])


# --- 06 -------------------------------------------------------------------------

def test_ramp_pattern_rank(capsys):
    y = np.linspace(0, 1, 200)[:, None]
    x = np.linspace(0, 1, 300)[None, :]
    picture = 0.2 + 0.5 * x * np.ones_like(y) + 0.2 * np.sin(9 * y) * np.cos(7 * x)
    passes(capsys, checks.check_ramp_pattern_rank, 2)
    passes(capsys, checks.check_ramp_pattern_rank, np.linalg.matrix_rank(picture))
    passes(capsys, checks.check_ramp_pattern_rank, torch.linalg.matrix_rank(torch.from_numpy(picture)))
    fails(capsys, checks.check_ramp_pattern_rank, None)
    fails(capsys, checks.check_ramp_pattern_rank, 1, must_not_say=["2"])
    fails(capsys, checks.check_ramp_pattern_rank, 200, must_not_say=["2 "])


def test_break_even_rank(capsys):
    m, n = helpers.sample_image("hubble").shape
    k_star = helpers.break_even_rank(m, n)
    passes(capsys, checks.check_break_even_rank, round(k_star), m, n)
    passes(capsys, checks.check_break_even_rank, math.ceil(k_star), m, n)
    passes(capsys, checks.check_break_even_rank, np.round(k_star), m, n)             # np.float64, whole
    passes(capsys, checks.check_break_even_rank, torch.tensor(k_star).round().int(), m, n)
    fails(capsys, checks.check_break_even_rank, None, m, n)
    fails(capsys, checks.check_break_even_rank, k_star, m, n, must_not_say=[f"{k_star:.1f}"])   # not whole
    fails(capsys, checks.check_break_even_rank, round(k_star / 4), m, n, must_not_say=[f"{k_star:.1f}"])


def test_stretched_error(capsys, camera_uint8):
    d = helpers.svd(helpers.to_unit(camera_uint8))
    picture = helpers.to_uint8(helpers.reconstruct(d, 100))
    error = np.abs(camera_uint8.astype(np.int16) - picture)
    right = np.rint(255 * error / error.max()).astype(np.uint8)
    passes(capsys, checks.check_stretched_error, right, camera_uint8, picture)
    passes(capsys, checks.check_stretched_error, torch.from_numpy(right), camera_uint8, picture)
    passes(capsys, checks.check_stretched_error, (255 * error // error.max()).astype(np.uint8), camera_uint8, picture)
    fails(capsys, checks.check_stretched_error, None, camera_uint8, picture)
    fails(capsys, checks.check_stretched_error, right.astype(np.float64), camera_uint8, picture)
    fails(capsys, checks.check_stretched_error, (error * 4).clip(0, 255).astype(np.uint8), camera_uint8, picture)
    wrapped = camera_uint8 - picture                     # uint8 subtraction wraps around
    fails(capsys, checks.check_stretched_error, np.rint(255.0 * wrapped / wrapped.max()).astype(np.uint8),
          camera_uint8, picture)


def test_threshold_rank(capsys):
    clean = helpers.to_unit(helpers.sample_image("camera")).astype(np.float64)
    noisier = clean + 0.2 * np.random.default_rng(0).standard_normal(clean.shape)
    beta_1 = 4 / 3 ** 0.5                                  # lambda*(1) = 4 / sqrt(3) for a square matrix
    s = np.linalg.svd(noisier, compute_uv=False)
    right = int(np.sum(s > beta_1 * np.sqrt(512) * 0.2))
    passes(capsys, checks.check_threshold_rank, right, noisier, 0.2)
    passes(capsys, checks.check_threshold_rank, np.sum(s > beta_1 * np.sqrt(512) * 0.2), noisier, 0.2)
    passes(capsys, checks.check_threshold_rank, (torch.from_numpy(s) > beta_1 * 512 ** 0.5 * 0.2).sum(),
           torch.from_numpy(noisier), 0.2)
    fails(capsys, checks.check_threshold_rank, None, noisier, 0.2)
    fails(capsys, checks.check_threshold_rank, right + 3, noisier, 0.2, must_not_say=[str(right)])
    fails(capsys, checks.check_threshold_rank, right - 3, noisier, 0.2, must_not_say=[str(right)])
    wrong_sigma = int(np.sum(s > beta_1 * np.sqrt(512) * 0.1))   # the old noise level: too many
    assert "Too many" in fails(capsys, checks.check_threshold_rank, wrong_sigma, noisier, 0.2)


# --- 07 -------------------------------------------------------------------------

def test_colour_break_even(capsys):
    m, n = 512, 512
    right = (m * n / (m + n + 1), 3 * m * n / (m + 3 * n + 1))
    passes(capsys, checks.check_colour_break_even, right, m, n)                      # the solution: a tuple
    passes(capsys, checks.check_colour_break_even, list(right), m, n)
    passes(capsys, checks.check_colour_break_even, np.array(right), m, n)            # issue 19, 07 c34
    passes(capsys, checks.check_colour_break_even, torch.tensor(right), m, n)        # float32
    secrets = [f"{right[0]:.1f}", f"{right[1]:.1f}"]
    for wrong in [None, (1, 2, 3), ("a", 1), "ab"]:
        fails(capsys, checks.check_colour_break_even, wrong, m, n, must_not_say=secrets)
    assert "per-channel" in fails(capsys, checks.check_colour_break_even, (255, 383), m, n, must_not_say=secrets)
    assert "stacked" in fails(capsys, checks.check_colour_break_even, (right[0], m * n / (m + 3 * n + 1)),
                              m, n, must_not_say=secrets)


@pytest.fixture(scope="module")
def coffee():
    import skimage.data

    return skimage.data.coffee()                # 400 x 600, as in notebook 07


def test_best_split(capsys, coffee):
    total = int(3 * 400 * 600 / 12.5 // (400 + 600 + 1))
    decompositions = helpers.colour_svd(coffee, "ycbcr")
    scores = np.array([helpers.psnr(coffee, helpers.colour_reconstruct(decompositions, (total - 2 * c, c, c), "ycbcr"))
                       for c in range(1, total // 3 + 1)])
    chroma = np.arange(1, total // 3 + 1)
    best = int(chroma[scores.argmax()])                                             # as the solution does
    passes(capsys, checks.check_best_split, best, coffee, total)
    passes(capsys, checks.check_best_split, chroma[scores.argmax()], coffee, total)   # np.int64
    for wrong in [None, 0, total, "9"]:
        fails(capsys, checks.check_best_split, wrong, coffee, total)
    fails(capsys, checks.check_best_split, 1 if best != 1 else 2, coffee, total, must_not_say=[f"rank {best}"])


# --- 08 -------------------------------------------------------------------------

K_EX, P_EX = 20, 10                             # notebook 08, exercise 1


def sketch(A, seed, transposed=False):
    """The solution's Q for this seed, or (transposed) the basis of the wrong sketch A.T @ G."""
    M = A.T if transposed else A
    G = torch.randn(M.shape[1], K_EX + P_EX, generator=torch.Generator().manual_seed(seed))
    return torch.linalg.qr(M @ G)[0]


def test_range_basis_bound_has_its_margin(camera):
    """The accepted ratio lies 15% or more above the worst of 500 correct seeds, and below every
    basis of the transposed sketch (checks.RANGE_BASIS_MAX_RATIO states the 20,000-seed figures)."""
    A = torch.from_numpy(camera)
    optimal = torch.linalg.svdvals(A)[K_EX:].double().pow(2).sum().sqrt().item()

    def ratio(Q):
        return torch.linalg.norm(A - Q @ (Q.T @ A)).item() / optimal

    correct = [ratio(sketch(A, seed)) for seed in range(500)]
    transposed = [ratio(sketch(A, seed, transposed=True)) for seed in range(500)]
    assert 1.15 * max(correct) < checks.RANGE_BASIS_MAX_RATIO < min(transposed), (max(correct), min(transposed))


def test_range_basis(capsys, camera):
    A = torch.from_numpy(camera)                                                   # 512 x 512
    Q = sketch(A, 0)                                                               # the solution
    passes(capsys, checks.check_range_basis, Q, A, k=K_EX, oversample=P_EX)
    passes(capsys, checks.check_range_basis, sketch(A, 8959), A, k=K_EX, oversample=P_EX)   # worst of 20,000
    G = np.random.default_rng(0).standard_normal((512, K_EX + P_EX))
    passes(capsys, checks.check_range_basis, np.linalg.qr(camera @ G)[0], camera, k=K_EX, oversample=P_EX)
    passes(capsys, checks.check_range_basis, Q.double(), camera, k=K_EX)
    fails(capsys, checks.check_range_basis, None, A, k=K_EX)
    fails(capsys, checks.check_range_basis, A @ torch.randn(512, 30), A, k=K_EX)   # not orthonormal
    fails(capsys, checks.check_range_basis, Q[:, :5], A, k=K_EX)
    noise = torch.linalg.qr(torch.randn(512, 30, generator=torch.Generator().manual_seed(0)))[0]
    assert "too little" in fails(capsys, checks.check_range_basis, noise, A, k=K_EX)
    # issue 19, 08 c29: the basis of A.T @ G (2.03 times the optimum for seed 0)
    for seed in range(3):
        out = fails(capsys, checks.check_range_basis, sketch(A, seed, transposed=True), A, k=K_EX, oversample=P_EX)
        assert "rows of A" in out and "A @ G" in out
    tall = A[:, :400]                                                              # 512 x 400: A.T has 400 rows
    out = fails(capsys, checks.check_range_basis, sketch(tall, 0, transposed=True), tall, k=K_EX)
    assert "one row per column" in out


@pytest.fixture(scope="module")
def hubble():
    return torch.from_numpy(helpers.to_unit(helpers.sample_image("hubble")))


def test_power_iters(capsys, hubble):
    A = hubble
    optimal = torch.linalg.svdvals(A)[50:].double().pow(2).sum().sqrt().item()
    best = next(q for q in range(10)
                if torch.linalg.norm(A - (lambda d: (d.U * d.S) @ d.Vh)(helpers.randomized_svd(A, 50, power_iters=q)))
                <= 1.01 * optimal)
    passes(capsys, checks.check_power_iters, best, A, k=50, within=0.01)
    passes(capsys, checks.check_power_iters, torch.tensor(best), A, k=50, within=0.01)
    for wrong in (None, "2", True, -1, 1.5):
        fails(capsys, checks.check_power_iters, wrong, A, k=50, within=0.01)
    fails(capsys, checks.check_power_iters, best - 1, A, k=50, within=0.01, must_not_say=[f"power_iters={best} "])


# --- 09 -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def faces():
    from skimage import data

    faces = data.lfw_subset()[:100]
    return torch.from_numpy(faces.reshape(100, -1).T.copy())        # 625 pixels x 100 faces, as in notebook 09


def test_explained_variance(capsys, faces):
    X = faces
    S = torch.linalg.svd(X - X.mean(dim=1, keepdim=True), full_matrices=False).S
    right = (S[:10] ** 2).sum() / (S ** 2).sum()                    # a 0-d tensor: issue 19, 09 c26
    passes(capsys, checks.check_explained_variance, (S[:10] ** 2).sum().item() / (S ** 2).sum().item(), X, k=10)
    passes(capsys, checks.check_explained_variance, right, X, k=10)
    passes(capsys, checks.check_explained_variance, right.float(), X, k=10)
    passes(capsys, checks.check_explained_variance, np.float64(right), X, k=10)
    passes(capsys, checks.check_explained_variance, round(right.item(), 3), X, k=10)
    S_raw = torch.linalg.svdvals(X)
    secrets = [f"{right.item():.3f}", f"{right.item():.1%}"]
    for wrong in [None, "0.7", True, 100 * right.item(), 10 / 100, right + 0.05]:
        fails(capsys, checks.check_explained_variance, wrong, X, k=10, must_not_say=secrets)
    assert "square them" in fails(capsys, checks.check_explained_variance, S[:10].sum() / S.sum(), X, k=10,
                                  must_not_say=secrets)
    assert "Subtract the mean" in fails(capsys, checks.check_explained_variance,
                                        (S_raw[:10] ** 2).sum() / (S_raw ** 2).sum(), X, k=10, must_not_say=secrets)


def test_face_rebuild(capsys, faces):
    X = faces
    mean = X.mean(dim=1)
    U = torch.linalg.svd(X - mean[:, None], full_matrices=False).U[:, :20]
    right = mean + U @ (U.T @ (X[:, 7] - mean))
    passes(capsys, checks.check_face_rebuild, right, X, index=7, k=20)
    passes(capsys, checks.check_face_rebuild, right.numpy(), X, index=7, k=20)
    passes(capsys, checks.check_face_rebuild, right.float().reshape(25, 25).numpy(), X.numpy(), index=7, k=20)
    passes(capsys, checks.check_face_rebuild, right.tolist(), X, index=7, k=20)
    for wrong in [None, right[:100], X[:, 7], mean + U[:, :10] @ (U[:, :10].T @ (X[:, 7] - mean))]:
        fails(capsys, checks.check_face_rebuild, wrong, X, index=7, k=20)
    assert "Add the mean back" in fails(capsys, checks.check_face_rebuild, right - mean, X, index=7, k=20)
    assert "Subtract the mean" in fails(capsys, checks.check_face_rebuild, U @ (U.T @ X[:, 7]), X, index=7, k=20)
