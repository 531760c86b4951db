"""Exercise checks of notebooks 01-06: each passes the right answer (the folded solution's)
and rejects a wrong one with a hint that does not give the answer away.

The folded solutions themselves run in tests/test_notebooks.py, where each ends with
``assert checks.check_...(...)``.
"""

import math

import numpy as np
import pytest
import torch

import checks
import helpers


@pytest.fixture(scope="module")
def camera():
    return helpers.to_unit(helpers.sample_image("camera"))


def verdict(capsys, check, *args, **kwargs):
    """(result, printed text) of one check call."""
    result = check(*args, **kwargs)
    return result, capsys.readouterr().out


def passes(capsys, check, *args, **kwargs):
    result, out = verdict(capsys, check, *args, **kwargs)
    assert result is True and out.startswith("✓"), out


def fails(capsys, check, *args, must_not_say=(), **kwargs):
    result, out = verdict(capsys, check, *args, **kwargs)
    assert result is False and out.strip() and not out.startswith("✓"), out
    for secret in must_not_say:
        assert secret not in out, f"the hint gives the answer away: {out}"
    return out


# --- 03 -------------------------------------------------------------------------

X, Y = torch.tensor([1.0, 2.0, 2.0]), torch.tensor([3.0, 4.0])


def test_rank_one(capsys):
    passes(capsys, checks.check_rank_one, [15.0, 0.0], [1 / 3, 2 / 3, 2 / 3], [3 / 5, 4 / 5], X, Y)
    passes(capsys, checks.check_rank_one, [15, 0], [-1 / 3, -2 / 3, -2 / 3], [-0.6, -0.8], X, Y)
    fails(capsys, checks.check_rank_one, None, None, None, X, Y)
    fails(capsys, checks.check_rank_one, [9.0, 0.0], [1 / 3, 2 / 3, 2 / 3], [0.6, 0.8], X, Y, must_not_say=["15"])
    fails(capsys, checks.check_rank_one, [15.0, 1.0], [1 / 3, 2 / 3, 2 / 3], [0.6, 0.8], X, Y)
    fails(capsys, checks.check_rank_one, [15.0, 0.0], [1, 2, 2], [3, 4], X, Y)
    out = fails(capsys, checks.check_rank_one, [15.0, 0.0], [-1 / 3, -2 / 3, -2 / 3], [0.6, 0.8], X, Y)
    assert "sign" in out


def test_rotation_sigmas(capsys):
    q = torch.tensor([[math.cos(1.0), -math.sin(1.0)], [math.sin(1.0), math.cos(1.0)]])
    passes(capsys, checks.check_rotation_sigmas, torch.linalg.svdvals(q), 1.0)
    fails(capsys, checks.check_rotation_sigmas, None, 1.0)
    fails(capsys, checks.check_rotation_sigmas, [math.sin(1.0), math.cos(1.0)], 1.0, must_not_say=["1.0", "both"])
    fails(capsys, checks.check_rotation_sigmas, [2.0, 0.5], 1.0)


def test_largest_stretch(capsys, camera):
    A = torch.from_numpy(camera)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    sigma_1 = S[0].item()
    stretch_v1 = (A @ Vh[0]).norm().item()
    passes(capsys, checks.check_largest_stretch, 0.6 * sigma_1, stretch_v1, camera)
    fails(capsys, checks.check_largest_stretch, None, stretch_v1, camera)
    fails(capsys, checks.check_largest_stretch, 2 * sigma_1, stretch_v1, camera)        # vectors not unit length
    fails(capsys, checks.check_largest_stretch, 0.6 * sigma_1, (A[:, 0]).norm().item(), camera,
          must_not_say=[f"{sigma_1:.1f}"])                                               # a column, not v_1


def test_frobenius_from_sigmas(capsys, camera):
    S = torch.linalg.svdvals(torch.from_numpy(camera))
    passes(capsys, checks.check_frobenius_from_sigmas, (S.double() ** 2).sum().item(), camera)
    fails(capsys, checks.check_frobenius_from_sigmas, None, camera)
    out = fails(capsys, checks.check_frobenius_from_sigmas, S.sum().item(), camera)
    assert "squared" in out or "square" in out
    fails(capsys, checks.check_frobenius_from_sigmas, (S.double() ** 2).sum().sqrt().item(), camera)


# --- 04 -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def camera_uint8():
    return helpers.sample_image("camera")


def test_rank_for_psnr(capsys, camera_uint8):
    d = helpers.svd(helpers.to_unit(camera_uint8))
    k30 = next(k for k in range(1, 513)
               if helpers.psnr(camera_uint8, helpers.to_uint8(helpers.reconstruct(d, k))) >= 30)
    passes(capsys, checks.check_rank_for_psnr, k30, camera_uint8, target=30)
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
    fails(capsys, checks.check_spectral_errors, None, R)
    fails(capsys, checks.check_spectral_errors, right[:10], R)
    assert "Off by one" in fails(capsys, checks.check_spectral_errors, d.S[:49], R)
    assert "2-norm" in fails(capsys, checks.check_spectral_errors, frobenius, R)


def test_rival(capsys, camera):
    d = helpers.svd(camera)
    skip_first = ((d.U[:, 1:11] * d.S[1:11]) @ d.Vh[1:11]).numpy()
    passes(capsys, checks.check_rival, skip_first, camera, k=10)
    passes(capsys, checks.check_rival, helpers.reconstruct(d, 10), camera, k=10)
    fails(capsys, checks.check_rival, None, camera, k=10)
    fails(capsys, checks.check_rival, skip_first[:100], camera, k=10)
    fails(capsys, checks.check_rival, helpers.reconstruct(d, 11), camera, k=10)


def test_plus_rank(capsys):
    passes(capsys, checks.check_plus_rank, 2)
    fails(capsys, checks.check_plus_rank, None)
    fails(capsys, checks.check_plus_rank, 1, must_not_say=["2"])
    fails(capsys, checks.check_plus_rank, 9, must_not_say=["2"])


def test_rank_for_spectral_error(capsys, camera):
    S = torch.linalg.svdvals(torch.from_numpy(camera).double()).numpy()
    eps = S[0] / 100
    right = int(np.sum(S > eps))
    passes(capsys, checks.check_rank_for_spectral_error, right, S, eps)
    fails(capsys, checks.check_rank_for_spectral_error, None, S, eps)
    assert "Off by one" in fails(capsys, checks.check_rank_for_spectral_error, right + 1, S, eps)
    assert "Off by one" in fails(capsys, checks.check_rank_for_spectral_error, right - 1, S, eps)
    fails(capsys, checks.check_rank_for_spectral_error, right + 20, S, eps, must_not_say=[str(right)])


# --- 06 -------------------------------------------------------------------------

def test_ramp_pattern_rank(capsys):
    passes(capsys, checks.check_ramp_pattern_rank, 2)
    fails(capsys, checks.check_ramp_pattern_rank, None)
    fails(capsys, checks.check_ramp_pattern_rank, 1, must_not_say=["2"])
    fails(capsys, checks.check_ramp_pattern_rank, 200, must_not_say=["2 "])


def test_break_even_rank(capsys):
    m, n = helpers.sample_image("hubble").shape
    k_star = helpers.break_even_rank(m, n)
    passes(capsys, checks.check_break_even_rank, round(k_star), m, n)
    fails(capsys, checks.check_break_even_rank, None, m, n)
    fails(capsys, checks.check_break_even_rank, round(k_star / 4), m, n, must_not_say=[f"{k_star:.1f}"])


def test_stretched_error(capsys, camera_uint8):
    d = helpers.svd(helpers.to_unit(camera_uint8))
    picture = helpers.to_uint8(helpers.reconstruct(d, 100))
    error = np.abs(camera_uint8.astype(np.int16) - picture)
    right = np.rint(255 * error / error.max()).astype(np.uint8)
    passes(capsys, checks.check_stretched_error, right, camera_uint8, picture)
    fails(capsys, checks.check_stretched_error, None, camera_uint8, picture)
    fails(capsys, checks.check_stretched_error, right.astype(np.float64), camera_uint8, picture)
    fails(capsys, checks.check_stretched_error, (error * 4).clip(0, 255).astype(np.uint8), camera_uint8, picture)
    wrapped = camera_uint8 - picture                     # uint8 subtraction wraps around
    fails(capsys, checks.check_stretched_error, np.rint(255.0 * wrapped / wrapped.max()).astype(np.uint8),
          camera_uint8, picture)


# --- 01 -------------------------------------------------------------------------

def test_brightest_pixel(capsys, camera_uint8):
    img = camera_uint8
    i, j = np.unravel_index(np.argmax(img), img.shape)
    n_white = int(np.count_nonzero(img == 255))
    passes(capsys, checks.check_brightest_pixel, (i, j), n_white, img)
    fails(capsys, checks.check_brightest_pixel, None, None, img)
    fails(capsys, checks.check_brightest_pixel, (0, 0), n_white, img)
    fails(capsys, checks.check_brightest_pixel, (i, j), n_white + 1, img, must_not_say=[str(n_white)])
    fails(capsys, checks.check_brightest_pixel, (int(np.argmax(img)), 0), n_white, img)


def test_transpose(capsys, camera_uint8):
    passes(capsys, checks.check_transpose, camera_uint8.T, camera_uint8)
    fails(capsys, checks.check_transpose, None, camera_uint8)
    assert "diagonal" in fails(capsys, checks.check_transpose, np.rot90(camera_uint8), camera_uint8)
    fails(capsys, checks.check_transpose, camera_uint8, camera_uint8)


def test_bt709(capsys):
    rgb = helpers.sample_colour_image("astronaut").astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    right = 0.2126 * r + 0.7152 * g + 0.0722 * b
    passes(capsys, checks.check_bt709, right, r, g, b)
    passes(capsys, checks.check_bt709, right.astype(np.float32), r, g, b)
    fails(capsys, checks.check_bt709, None, r, g, b)
    assert "BT.601" in fails(capsys, checks.check_bt709, 0.299 * r + 0.587 * g + 0.114 * b, r, g, b)
    fails(capsys, checks.check_bt709, np.rint(right), r, g, b)
    fails(capsys, checks.check_bt709, 0.2126 * b + 0.7152 * g + 0.0722 * r, r, g, b)


# --- 02 -------------------------------------------------------------------------

def test_brighten_float(capsys, camera_uint8):
    img = camera_uint8
    passes(capsys, checks.check_brighten_float, helpers.to_uint8(helpers.to_unit(img) + 100 / 255), img)
    fails(capsys, checks.check_brighten_float, None, img)
    assert "wrapped" in fails(capsys, checks.check_brighten_float, img + np.uint8(100), img)
    fails(capsys, checks.check_brighten_float, helpers.to_unit(img) + 100 / 255, img)


def test_halved_sigmas(capsys, camera):
    A = torch.from_numpy(camera)
    S = torch.linalg.svdvals(A)
    passes(capsys, checks.check_halved_sigmas, S / 2, A)
    fails(capsys, checks.check_halved_sigmas, None, A)
    fails(capsys, checks.check_halved_sigmas, S, A)
    fails(capsys, checks.check_halved_sigmas, S / 4, A)


def test_shift_sigmas(capsys, camera):
    A = torch.from_numpy(camera)
    right = torch.linalg.svdvals(A + 0.1)[:5] - torch.linalg.svdvals(A)[:5]
    passes(capsys, checks.check_shift_sigmas, right, A)
    fails(capsys, checks.check_shift_sigmas, None, A)
    fails(capsys, checks.check_shift_sigmas, [0.1] * 5, A)
    fails(capsys, checks.check_shift_sigmas, right + 1, A)


# --- 05 -------------------------------------------------------------------------

def test_full_hd_break_even(capsys):
    k1, k4 = helpers.break_even_rank(1080, 1920), helpers.break_even_rank(1080, 1920, 4)
    passes(capsys, checks.check_full_hd_break_even, k1, k4, False)
    passes(capsys, checks.check_full_hd_break_even, round(k1), round(k4), False)
    fails(capsys, checks.check_full_hd_break_even, None, None, None)
    assert "swapped" in fails(capsys, checks.check_full_hd_break_even, k4, k1, False)
    fails(capsys, checks.check_full_hd_break_even, k1, k4, True)
    fails(capsys, checks.check_full_hd_break_even, 1080 * 1920 / 3000 * 2, k4, False, must_not_say=[f"{k1:.1f}"])


def test_plaid_best_rank(capsys):
    # a small stand-in for notebook 05's sweep: SVD file sizes and PSNRs per rank, JPEG per quality
    curves = {"SVD file": (np.array([100, 200, 400]), np.array([30.0, 40.0, 40.0]), [1, 2, 3]),
              "JPEG": (np.array([300, 1000, 3000]), np.array([31.0, 40.5, 45.0]), [10, 50, 90])}
    passes(capsys, checks.check_plaid_best_rank, 2, curves)          # ratios 3, 5, 2.5
    fails(capsys, checks.check_plaid_best_rank, None, curves)
    fails(capsys, checks.check_plaid_best_rank, 1, curves, must_not_say=["rank 2"])
    fails(capsys, checks.check_plaid_best_rank, 7, curves)


def test_document_winner(capsys):
    doc = helpers.sample_image("document")
    passes(capsys, checks.check_document_winner, "WebP", doc)
    fails(capsys, checks.check_document_winner, None, doc)
    fails(capsys, checks.check_document_winner, "SVD file", doc, must_not_say=["WebP"])


# --- 00 -------------------------------------------------------------------------

def test_pillow_pin(capsys):
    import PIL

    passes(capsys, checks.check_pillow_pin, PIL.__version__, PIL.__version__)
    fails(capsys, checks.check_pillow_pin, None, None)
    fails(capsys, checks.check_pillow_pin, "0.0.1", PIL.__version__)
    fails(capsys, checks.check_pillow_pin, PIL.__version__, "0.0.1", must_not_say=[PIL.__version__])


def test_height_width(capsys):
    hubble = helpers.sample_image("hubble")
    rows, columns = hubble.shape
    passes(capsys, checks.check_height_width, rows, columns, hubble)
    fails(capsys, checks.check_height_width, None, None, hubble)
    assert "Swapped" in fails(capsys, checks.check_height_width, columns, rows, hubble)
    fails(capsys, checks.check_height_width, rows, rows, hubble)


def test_more_numbers_than_pixels(capsys):
    passes(capsys, checks.check_more_numbers_than_pixels, 256, 512, 512)
    fails(capsys, checks.check_more_numbers_than_pixels, None, 512, 512)
    fails(capsys, checks.check_more_numbers_than_pixels, 255, 512, 512, must_not_say=["256"])
    fails(capsys, checks.check_more_numbers_than_pixels, 300, 512, 512, must_not_say=["256"])


def test_threshold_rank(capsys):
    clean = helpers.to_unit(helpers.sample_image("camera")).astype(np.float64)
    noisier = clean + 0.2 * np.random.default_rng(0).standard_normal(clean.shape)
    beta_1 = 4 / 3 ** 0.5                                  # lambda*(1) = 4 / sqrt(3) for a square matrix
    s = np.linalg.svd(noisier, compute_uv=False)
    right = int(np.sum(s > beta_1 * np.sqrt(512) * 0.2))
    passes(capsys, checks.check_threshold_rank, right, noisier, 0.2)
    fails(capsys, checks.check_threshold_rank, None, noisier, 0.2)
    fails(capsys, checks.check_threshold_rank, right + 3, noisier, 0.2, must_not_say=[str(right)])
    fails(capsys, checks.check_threshold_rank, right - 3, noisier, 0.2, must_not_say=[str(right)])
    wrong_sigma = int(np.sum(s > beta_1 * np.sqrt(512) * 0.1))   # the old noise level: too many
    assert "Too many" in fails(capsys, checks.check_threshold_rank, wrong_sigma, noisier, 0.2)
