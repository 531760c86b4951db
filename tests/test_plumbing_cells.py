"""The rate-distortion helpers that notebook 05 calls: each point is a real file, measured honestly."""

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest

import helpers


@pytest.fixture(scope="module")
def picture():
    """A 64 x 96 piece of the camera photo: small, and full of detail (far from low rank)."""
    return np.ascontiguousarray(helpers.sample_image("camera")[300:364, 250:346])


def test_smallest_reaching_takes_the_smallest_file_not_the_first():
    sizes, quality, settings = np.array([900, 300, 500, 400]), np.array([40.0, 31.0, 36.0, 35.0]), [90, 30, 50, 40]
    assert helpers.smallest_reaching(sizes, quality, settings, 35.0) == (400, 40)
    assert helpers.smallest_reaching(sizes, quality, settings, 30.0) == (300, 30)
    assert helpers.smallest_reaching(sizes, quality, settings, 41.0) is None


def test_smallest_reaching_refuses_curves_of_different_lengths():
    with pytest.raises(ValueError, match="equally long"):
        helpers.smallest_reaching([1, 2], [30.0], [5, 10], 20.0)


def test_codec_curve_measures_the_real_files(picture):
    sizes, quality, settings = helpers.codec_curve(picture, "jpeg", [20, 80])
    assert settings == [20, 80]
    assert list(sizes) == [helpers.encoded_size(picture, "jpeg", q) for q in (20, 80)]
    assert quality[0] < quality[1] < np.inf
    with pytest.raises(ValueError, match="png, jpeg or webp"):
        helpers.codec_curve(picture, "gif", [50])


def test_svd_file_curve_measures_the_saved_file(picture):
    decomposition = helpers.svd(helpers.to_unit(picture))
    sizes, quality, ranks = helpers.svd_file_curve(picture, decomposition, [2, 20, 64])
    assert ranks == [2, 20, 64]
    assert list(sizes) == [helpers.save_svd(io.BytesIO(), decomposition, k) for k in ranks]
    assert quality[0] < quality[1] < quality[2]
    exact = helpers.psnr(picture, helpers.to_uint8(helpers.reconstruct(decomposition, 20)))
    assert 0 <= exact - quality[1] < 1.0          # 8-bit factors cost a little, never gain
    with pytest.raises(helpers.ImageError):
        helpers.svd_file_curve(helpers.to_unit(picture), decomposition, [2])
    with pytest.raises(ValueError, match="rank"):
        helpers.svd_file_curve(picture, decomposition, [65])


def test_lossless_sizes_are_the_exact_files(picture):
    sizes = helpers.lossless_sizes(picture)
    assert sizes == {"PNG (lossless)": helpers.encoded_size(picture, "png", 9),
                     "WebP lossless": helpers.encoded_size(picture, "webp", 101)}


def test_plot_rate_distortion_draws_high_psnr_on_the_cap_line():
    curves = {"SVD file": (np.array([100, 200, 400]), np.array([30.0, 70.0, np.inf]), [1, 2, 3]),
              "other": (np.array([150, 300]), np.array([25.0, 45.0]), [10, 20])}
    ax = helpers.plot_rate_distortion(curves, {"PNG (lossless)": 350}, shape=(16, 32), psnr_cap=60.0,
                                        levels=(30, 35), title="test")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["SVD file"].get_ydata()) == [30.0, 60.0, 60.0]
    assert list(lines["other"].get_ydata()) == [25.0, 45.0]
    assert list(lines["PNG (lossless)"].get_xydata()[0]) == [350, 60.0]
    assert lines["raw pixels, m·n bytes"].get_xdata()[0] == 16 * 32
    assert ax.get_xscale() == "log" and ax.get_title() == "test" and ax.get_ylim()[1] == 63.0
    plt.close(ax.figure)
