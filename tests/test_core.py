"""Normalize, decompose, truncate, reconstruct, measure: unit and property tests."""

import io
import math
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import helpers

shapes = st.tuples(st.integers(2, 40), st.integers(2, 40))


def random_matrix(shape, seed):
    return np.random.default_rng(seed).random(shape).astype(np.float64)


# --- normalize ---------------------------------------------------------------

def test_to_unit_gives_float32_in_unit_range():
    img = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    x = helpers.to_unit(img)
    assert x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x * 255, img)


def test_to_unit_refuses_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        helpers.to_unit(np.zeros((2, 2), dtype=np.float32))


@given(arrays(np.uint8, shapes))
def test_to_uint8_inverts_to_unit(img):
    assert np.array_equal(helpers.to_uint8(helpers.to_unit(img)), img)


def test_to_uint8_clips_and_rounds():
    x = np.array([-0.5, -0.001, 0.0, 0.5 / 255, 0.4, 1.0, 1.002, 7.0])
    out = helpers.to_uint8(x)
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 0, 0, 102, 255, 255, 255]  # 0.5 rounds to even: 0


def test_to_uint8_accepts_tensors_and_refuses_nan():
    assert helpers.to_uint8(torch.tensor([0.0, 1.0])).tolist() == [0, 255]
    with pytest.raises(ValueError, match="NaN"):
        helpers.to_uint8(np.array([np.nan]))


# --- decompose ---------------------------------------------------------------

def test_svd_shapes_and_container():
    d = helpers.svd(random_matrix((7, 4), 0))
    assert d.U.shape == (7, 4) and d.S.shape == (4,) and d.Vh.shape == (4, 4)
    assert d.shape == (7, 4) and d.max_rank == 4
    assert all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in d)


def test_svd_keeps_dtype_and_refuses_integers():
    assert helpers.svd(np.eye(3, dtype=np.float32)).S.dtype == torch.float32
    assert helpers.svd(np.eye(3)).S.dtype == torch.float64
    with pytest.raises(ValueError, match="to_unit"):
        helpers.svd(np.eye(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        helpers.svd(np.zeros((2, 2, 2)))


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 2**32 - 1))
def test_svd_factors_are_orthonormal_and_sorted(shape, seed):
    d = helpers.svd(random_matrix(shape, seed))
    r = d.max_rank
    eye = torch.eye(r, dtype=torch.float64)
    assert torch.allclose(d.U.T @ d.U, eye, atol=1e-10)
    assert torch.allclose(d.Vh @ d.Vh.T, eye, atol=1e-10)
    assert (d.S >= 0).all() and (d.S[:-1] >= d.S[1:]).all()


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 2**32 - 1))
def test_full_rank_reconstruction_gives_back_the_input(shape, seed):
    a = random_matrix(shape, seed)
    d = helpers.svd(a)
    np.testing.assert_allclose(helpers.reconstruct(d, d.max_rank), a, atol=1e-10)


def test_full_rank_reconstruction_of_a_real_image():
    img = helpers.sample_image("camera")
    a = helpers.to_unit(img)
    d = helpers.svd(a)
    approx = helpers.reconstruct(d, d.max_rank)
    assert approx.dtype == np.float32
    assert np.abs(approx - a).max() < 1e-4
    assert np.array_equal(helpers.to_uint8(approx), img)


# --- Eckart-Young --------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 2**32 - 1), st.data())
def test_eckart_young_on_random_matrices(shape, seed, data):
    a = random_matrix(shape, seed)
    d = helpers.svd(a)
    k = data.draw(st.integers(1, d.max_rank))
    err = a - helpers.reconstruct(d, k)
    s = d.S.numpy()
    tail = s[k:]
    spectral = np.linalg.norm(err, 2)
    expected_spectral = tail[0] if len(tail) else 0.0
    assert spectral == pytest.approx(expected_spectral, abs=1e-9)
    assert np.linalg.norm(err) == pytest.approx(np.sqrt(np.sum(tail**2)), abs=1e-9)


@pytest.mark.parametrize("name", ["camera", "brick", "plaid"])
@pytest.mark.parametrize("k", [1, 10, 50, 250])
def test_eckart_young_on_real_images(name, k):
    a = helpers.to_unit(helpers.sample_image(name)).astype(np.float64)
    d = helpers.svd(a)
    err = a - helpers.reconstruct(d, k)
    s = d.S.numpy()
    assert np.linalg.norm(err, 2) == pytest.approx(s[k], rel=1e-6, abs=1e-9)
    assert np.linalg.norm(err) == pytest.approx(np.sqrt(np.sum(s[k:] ** 2)), rel=1e-6, abs=1e-9)


def test_truncate_keeps_the_leading_factors():
    d = helpers.svd(random_matrix((6, 5), 1))
    t = helpers.truncate(d, 3)
    assert t.U.shape == (6, 3) and t.S.shape == (3,) and t.Vh.shape == (3, 5)
    assert torch.equal(t.S, d.S[:3]) and torch.equal(t.U, d.U[:, :3]) and torch.equal(t.Vh, d.Vh[:3])


@pytest.mark.parametrize("bad", [0, -1, 6, 2.0, 2.5, True, "3", None])
def test_bad_ranks_name_the_valid_range(bad):
    d = helpers.svd(random_matrix((5, 8), 2))
    with pytest.raises(ValueError, match="from 1 to 5"):
        helpers.reconstruct(d, bad)
    with pytest.raises(ValueError, match="from 1 to 5"):
        helpers.truncate(d, bad)


def test_numpy_integer_ranks_are_accepted():
    d = helpers.svd(random_matrix((5, 8), 2))
    assert helpers.truncate(d, np.int64(2)).S.shape == (2,)


# --- measure -------------------------------------------------------------------

def test_psnr_and_ssim_match_scikit_image_and_accept_both_scales():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    img = helpers.sample_image("camera")
    approx = helpers.to_uint8(helpers.reconstruct(helpers.svd(helpers.to_unit(img)), 20))
    assert helpers.psnr(img, approx) == pytest.approx(peak_signal_noise_ratio(img, approx, data_range=255))
    assert helpers.psnr(img, approx) == pytest.approx(helpers.psnr(helpers.to_unit(img), helpers.to_unit(approx)))
    assert helpers.ssim(img, approx) == pytest.approx(structural_similarity(img, approx, data_range=255), abs=1e-4)
    assert helpers.psnr(img, img) == float("inf")
    assert helpers.ssim(img, img) == 1.0


@pytest.mark.parametrize("metric", [helpers.psnr, helpers.ssim, helpers.relative_error])
def test_metrics_refuse_images_of_different_shapes(metric):
    img = helpers.sample_image("camera")
    with pytest.raises(ValueError, match=r"differ in shape: \(512, 512\) and \(512,\)"):
        metric(img, img[0])  # would broadcast silently


def test_metrics_of_an_all_black_image_have_no_nan_and_no_warning():
    black, grey = np.zeros((16, 24), np.uint8), np.full((16, 24), 7, np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0 / 0 RuntimeWarning would fail here
        assert helpers.psnr(black, black) == math.inf and helpers.ssim(black, black) == 1.0
        assert helpers.relative_error(black, black) == 0.0
        assert helpers.relative_error(black, grey) == math.inf  # any error is infinite relative to 0
        S = helpers.svd(helpers.to_unit(black)).S
        assert helpers.cumulative_energy(S).tolist() == [1.0] * 16  # nothing to lose
        assert helpers.rank_for_energy(S, 0.99) == 1


def test_relative_error_matches_the_tail_energy():
    a = helpers.to_unit(helpers.sample_image("camera")).astype(np.float64)
    d = helpers.svd(a)
    s2 = d.S.numpy() ** 2
    for k in (1, 30, 200):
        expected = np.sqrt(s2[k:].sum() / s2.sum())
        assert helpers.relative_error(a, helpers.reconstruct(d, k)) == pytest.approx(expected, rel=1e-6)


def test_cumulative_energy_and_rank_for_energy():
    s = np.array([3.0, 2.0, 1.0, 0.0])
    energy = helpers.cumulative_energy(s)
    np.testing.assert_allclose(energy, [9 / 14, 13 / 14, 1, 1])
    assert helpers.rank_for_energy(s, 0.5) == 1
    assert helpers.rank_for_energy(s, 9 / 14) == 1
    assert helpers.rank_for_energy(s, 0.65) == 2
    assert helpers.rank_for_energy(s, 1.0) == 3
    with pytest.raises(ValueError):
        helpers.rank_for_energy(s, 0)


# --- sizes ---------------------------------------------------------------------

@given(st.integers(1, 3000), st.integers(1, 3000), st.data())
def test_storage_counts_add_up(m, n, data):
    k = data.draw(st.integers(1, min(m, n)))
    values = helpers.stored_values(m, n, k)
    assert values == k * m + k + k * n  # k columns of U, k values, k rows of Vh
    for dtype, size in helpers.BYTES_PER_VALUE.items():
        assert helpers.stored_bytes(m, n, k, dtype) == values * size
    k_star = helpers.break_even_rank(m, n)
    assert (values < m * n) == (k < k_star)


def test_storage_refuses_a_bad_rank_or_dtype():
    with pytest.raises(ValueError, match="from 1 to 512"):
        helpers.stored_values(512, 600, 513)
    with pytest.raises(ValueError, match="dtype"):
        helpers.stored_bytes(512, 512, 1, "int4")


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", ".jpg"])
def test_encoded_sizes_are_real_files(fmt):
    import cv2

    img = helpers.sample_image("camera")
    data = helpers.encode(img, fmt, 90 if fmt != "png" else None)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert decoded.shape == img.shape
    assert helpers.encoded_size(img, fmt) == len(helpers.encode(img, fmt))
    if fmt == "png":
        assert np.array_equal(decoded, img)  # lossless


def test_encode_refuses_floats_and_unknown_formats():
    with pytest.raises(ValueError, match="to_uint8"):
        helpers.encode(np.zeros((4, 4), np.float32), "png")
    with pytest.raises(ValueError, match="format"):
        helpers.encode(np.zeros((4, 4), np.uint8), "gif")


def test_jpeg_quality_changes_the_size():
    img = helpers.sample_image("camera")
    assert helpers.encoded_size(img, "jpeg", 20) < helpers.encoded_size(img, "jpeg", 90)


# --- store ---------------------------------------------------------------------

def test_svd_file_round_trip(tmp_path):
    img = helpers.sample_image("camera")
    a = helpers.to_unit(img)
    d = helpers.svd(a)
    path = tmp_path / "camera_k50.npz"
    written = helpers.save_svd(path, d, 50)
    assert written == path.stat().st_size
    assert written < helpers.stored_values(512, 512, 50)  # under one byte per stored value
    loaded = helpers.load_svd(path)
    assert loaded.U.shape == (512, 50) and loaded.Vh.shape == (50, 512)
    exact = helpers.to_uint8(helpers.reconstruct(d, 50))
    from_file = helpers.to_uint8(helpers.reconstruct(loaded, 50))
    # 8-bit factors cost little quality next to the truncation itself.
    assert helpers.psnr(img, from_file) > helpers.psnr(img, exact) - 1.0
    assert helpers.psnr(exact, from_file) > 38


def test_svd_file_layout_is_as_documented():
    """int8 factors with one float32 scale per column of U and per row of Vh, float32 S."""
    d = helpers.svd(random_matrix((30, 20), 4).astype(np.float32))
    k = 6
    buf = io.BytesIO()
    helpers.save_svd(buf, d, k)
    buf.seek(0)
    with np.load(buf) as z:
        assert sorted(z.files) == ["S", "U", "U_scale", "Vh", "Vh_scale"]
        U, U_scale, S, Vh, Vh_scale = (z[name] for name in ("U", "U_scale", "S", "Vh", "Vh_scale"))
    assert (U.dtype, Vh.dtype, S.dtype, U_scale.dtype, Vh_scale.dtype) == (np.int8,) * 2 + (np.float32,) * 3
    assert U.shape == (30, k) and Vh.shape == (k, 20) and U_scale.shape == (1, k) and Vh_scale.shape == (k, 1)
    # each column of U (row of Vh) uses the whole range [-127, 127]: its own scale
    assert (np.abs(U.astype(int)).max(axis=0) == 127).all() and (np.abs(Vh.astype(int)).max(axis=1) == 127).all()
    np.testing.assert_array_equal(S, d.S[:k].numpy())
    # rounding to the nearest step: every value within half a step of its own scale
    assert (np.abs(U * U_scale - d.U[:, :k].numpy()) <= U_scale / 2 * (1 + 1e-5)).all()
    assert (np.abs(Vh * Vh_scale - d.Vh[:k].numpy()) <= Vh_scale / 2 * (1 + 1e-5)).all()


def test_svd_file_to_memory_and_no_suffix_added(tmp_path):
    d = helpers.svd(random_matrix((20, 30), 3).astype(np.float32))
    buf = io.BytesIO()
    n = helpers.save_svd(buf, d, 5)
    assert n == len(buf.getvalue())
    buf.seek(0)
    np.testing.assert_allclose(helpers.load_svd(buf).S, d.S[:5])
    path = tmp_path / "plain_name"
    helpers.save_svd(path, d, 5)
    assert path.exists()


# --- samples -------------------------------------------------------------------

def test_every_sample_loads():
    for name in helpers.SAMPLES:
        img = helpers.sample_image(name)
        assert img.dtype == np.uint8 and img.ndim == 2 and min(img.shape) >= 2


def test_plot_spectrum_checks_k():
    S = helpers.svd(random_matrix((5, 8), 2)).S
    ax = helpers.plot_spectrum(S, k=5)
    assert ax.get_legend().get_texts()[0].get_text() == "k = 5"
    for bad in (0, 6, 2.5):
        with pytest.raises(ValueError, match="from 1 to 5"):
            helpers.plot_spectrum(S, k=bad)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_circle_to_ellipse_titles_name_reflections_by_the_sign_of_det():
    import matplotlib.pyplot as plt

    for M in ([[2.0, 1.0], [0.5, 1.5]], [[2.0, 1.0], [1.5, 0.5]], [[0.0, -2.0], [1.0, 0.0]], [[-1.0, 0.3], [0.2, 3.0]]):
        U, _, Vh = torch.linalg.svd(torch.tensor(M, dtype=torch.float64))
        titles = [ax.get_title() for ax in helpers.plot_circle_to_ellipse(M)]
        for title, factor in ((titles[1], Vh), (titles[3], U)):
            expected = "a reflection" if torch.linalg.det(factor) < 0 else "a rotation"
            assert expected in title, (M, title)
        # det M = det U * sigma_1 sigma_2 * det V^T: a negative det M means exactly one reflection
        assert ("reflection" in titles[1]) != ("reflection" in titles[3]) or np.linalg.det(M) > 0
        plt.close("all")
    for bad in ([[1.0, 2.0, 3.0]], [[1.0, np.nan], [0.0, 1.0]]):
        with pytest.raises(ValueError, match="2 x 2"):
            helpers.plot_circle_to_ellipse(bad)


def test_plot_quality_against_rank_draws_both_scores_and_checks_lengths():
    import matplotlib.pyplot as plt

    ax_psnr, ax_ssim = helpers.plot_quality_against_rank(
        [1, 10, 100, 512], [20.0, 25.0, 33.0, np.inf], [0.5, 0.6, 0.9, 1.0],
        predicted=[19.9, 24.9, 33.1, np.inf], marks=(10, 100))
    assert [line.get_label() for line in ax_psnr.get_lines()[:2]] == ["measured (uint8)", "predicted from $\\sigma$"]
    assert len(ax_psnr.get_lines()[0].get_xdata()) == 3          # the infinite PSNR is left out
    assert len(ax_ssim.get_lines()[0].get_xdata()) == 4 and ax_ssim.get_title() == "SSIM against rank"
    with pytest.raises(ValueError, match="one length"):
        helpers.plot_quality_against_rank([1, 2], [20.0], [0.5, 0.6])
    plt.close("all")


def test_importing_helpers_is_light():
    """The first lesson cells need neither scikit-image's metrics nor the explorer."""
    code = ("import sys, helpers; print(sorted(m for m in ('skimage.metrics', 'explorer', 'ipywidgets', "
            "'matplotlib.pyplot') if m in sys.modules)); helpers.RankExplorer; print('explorer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]  # and RankExplorer is there on first use


def test_sample_sizes_fit_the_lessons():
    camera = helpers.sample_image("camera")
    assert min(camera.shape) >= 512  # ranks 500 ... 10 all make sense
    assert 0.8e6 <= helpers.sample_image("hubble").size <= 1.3e6  # about a megapixel


def test_plaid_is_low_rank():
    s = helpers.svd(helpers.to_unit(helpers.sample_image("plaid")).astype(np.float64)).S.numpy()
    # six layers carry the picture; the rest is float32 rounding in to_unit
    assert s[5] > 1e-4 * s[0] and s[6] < 1e-6 * s[0]


def test_unknown_sample_is_a_clear_error():
    with pytest.raises(ValueError, match="camera"):
        helpers.sample_path("lena")


def test_sample_image_works_from_another_directory(tmp_path):
    code = "import helpers; print(helpers.sample_image('camera').shape)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ""}, check=True)
    assert out.stdout.strip() == "(512, 512)"


def test_media_stays_small():
    total = sum(p.stat().st_size for p in helpers.MEDIA_DIR.iterdir() if p.is_file())
    assert total < 5 * 1024 * 1024


def test_cpu_seconds_puts_the_thread_count_back():
    threads = torch.get_num_threads()
    assert helpers.cpu_seconds(lambda: torch.get_num_threads(), repeats=2) >= 0
    with pytest.raises(ZeroDivisionError):
        helpers.cpu_seconds(lambda: 1 / 0)
    assert torch.get_num_threads() == threads
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="repeats"):
            helpers.cpu_seconds(lambda: None, repeats=bad)


def test_cpu_seconds_does_not_count_other_programs():
    """The notebooks' timing checks (03's slope, 08's speed-ups) must hold while other kernels compute."""
    X = torch.rand(600, 600, generator=torch.Generator().manual_seed(0))
    work = lambda: torch.linalg.svd(X, full_matrices=False)  # noqa: E731
    quiet = helpers.cpu_seconds(work)
    burn = "import torch\nX = torch.rand(1200, 1200)\nwhile True: torch.linalg.svd(X)"
    competitors = [subprocess.Popen([sys.executable, "-c", burn], env={**os.environ, "OMP_NUM_THREADS": "2"})
                   for _ in range(max(2, os.cpu_count() or 1))]
    try:
        import psutil
        deadline = time.monotonic() + 30
        # wait until each has imported torch and is computing (a second of CPU past its start)
        while any(psutil.Process(p.pid).cpu_times().user < 1.5 for p in competitors):
            assert time.monotonic() < deadline, "the competing programs did not start computing"
            time.sleep(0.1)
        loaded = helpers.cpu_seconds(work)
    finally:
        for p in competitors:
            p.kill()
            p.wait()
    print(f"SVD of 600 x 600: {quiet * 1000:.0f} ms CPU quiet, {loaded * 1000:.0f} ms with "
          f"{len(competitors)} programs computing")
    assert loaded < 2 * quiet
