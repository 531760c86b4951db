"""Colour: load_colour's contract, the three colour schemes, their storage counts and files."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image
from test_loader import pil_bytes, png_bytes, png_header_only

import helpers
from helpers import ImageError, load_colour


@pytest.fixture(scope="module")
def astronaut():
    return helpers.sample_colour_image("astronaut")


@pytest.fixture(scope="module")
def coffee():
    return skimage.data.coffee()  # bundled with scikit-image: 400 x 600 colour photo


def noise(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- load_colour: good inputs ---------------------------------------------------

def test_rgb_path_and_bytes_agree(tmp_path):
    rgb = noise((30, 40, 3))
    path = tmp_path / "imágenes ñ.png"
    path.write_bytes(png_bytes(rgb))
    for source in (path, str(path), path.read_bytes()):
        img = load_colour(source)
        assert img.dtype == np.uint8 and img.shape == (30, 40, 3) and img.flags.writeable
        assert np.array_equal(img, rgb)


def test_greyscale_file_gives_three_equal_channels():
    grey = noise((20, 30))
    img = load_colour(png_bytes(grey))
    assert img.shape == (20, 30, 3)
    assert all(np.array_equal(img[..., c], grey) for c in range(3))


def test_colour_and_grey_loaders_agree_on_luma():
    rgb = noise((25, 35, 3), seed=4)
    data = png_bytes(rgb)
    assert np.abs(helpers.luma(load_colour(data)).astype(int) - helpers.load_greyscale(data)).max() <= 1


def test_sixteen_bit_colour_is_scaled():
    import cv2

    rgb16 = np.zeros((4, 5, 3), dtype=np.uint16)
    rgb16[..., 2] = 65535   # OpenCV writes BGR: index 2 is red
    rgb16[..., 1] = 32896
    ok, buf = cv2.imencode(".png", rgb16)
    assert ok
    img = load_colour(buf.tobytes())
    assert img.dtype == np.uint8 and img[0, 0].tolist() == [255, 128, 0]


def test_alpha_is_composited_on_white_with_a_notice(capsys):
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 255          # red ...
    rgba[:, :4, 3] = 255        # ... opaque on the left, transparent on the right
    img = load_colour(png_bytes(rgba))
    assert img[:, :4].reshape(-1, 3).tolist() == [[255, 0, 0]] * 24
    assert img[:, 4:].min() == 255
    assert "transparent" in capsys.readouterr().out


def test_palette_keeps_its_colours():
    pal = Image.fromarray(np.array([[0, 1], [1, 0]] * 2, dtype=np.uint8), mode="P")
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red, 1 blue
    img = load_colour(pil_bytes(pal, "PNG"))
    assert img[0, 0].tolist() == [255, 0, 0] and img[0, 1].tolist() == [0, 0, 255]


def test_cmyk_becomes_rgb():
    cmyk = Image.new("CMYK", (3, 3), (0, 0, 0, 0))  # no ink: white
    img = load_colour(pil_bytes(cmyk, "JPEG"))
    assert img.shape == (3, 3, 3) and img.min() >= 250


def test_exif_orientation_is_applied():
    tall = np.zeros((40, 20, 3), dtype=np.uint8)
    tall[:10, :, 1] = 255  # green band at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img = load_colour(pil_bytes(Image.fromarray(tall), "JPEG", exif=exif, quality=95))
    assert img.shape == (20, 40, 3)
    assert img[:, -10:, 1].mean() > 200 and img[:, :10, 1].mean() < 50


def test_several_frames_give_the_first(capsys):
    frames = [Image.fromarray(np.full((5, 7, 3), v, dtype=np.uint8)) for v in (10, 200)]
    img = load_colour(pil_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:]), name="anim.gif")
    assert img.shape == (5, 7, 3) and abs(int(img[0, 0, 0]) - 10) <= 2
    assert "anim.gif has 2 frames" in capsys.readouterr().out


def test_large_image_is_downscaled_with_a_notice(capsys):
    out = load_colour(png_bytes(noise((300, 400, 3))), max_pixels=30_000, name="big.png")
    assert out.shape == (150, 200, 3)
    assert "downscaled to 150 × 200" in capsys.readouterr().out


# --- load_colour: bad inputs (the same fixtures as tests/test_loader.py) ---------

def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_colour(tmp_path / "nope.png")


def test_directory_and_empty_file(tmp_path):
    with pytest.raises(ImageError, match="folder"):
        load_colour(tmp_path)
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.png: the file is empty"):
        load_colour(path)


@pytest.mark.parametrize("data, match", [
    (b"these are lecture notes, not a picture", "notes.png: not an image"),
    (b"%PDF-1.7\n%...", "PDF"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
])
def test_not_an_image_or_unsupported(data, match):
    with pytest.raises(ImageError, match=match):
        load_colour(data, name="notes.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(fmt):
    data = pil_bytes(Image.fromarray(noise((64, 64, 3), seed=1)), fmt)
    with pytest.raises(ImageError, match="photo: the file is truncated or damaged"):
        load_colour(data[: len(data) // 2], name="photo")


def test_float_pixels_are_refused():
    with pytest.raises(ImageError, match="floating-point"):
        load_colour(pil_bytes(Image.fromarray(np.zeros((4, 4), np.float32), mode="F"), "TIFF"))


@pytest.mark.parametrize("shape", [(1, 50, 3), (50, 1, 3)])
def test_one_pixel_wide_is_refused(shape):
    with pytest.raises(ImageError, match="at least 2 pixels"):
        load_colour(png_bytes(np.zeros(shape, np.uint8)), name="thin.png")


def test_decompression_bomb_is_refused_from_the_header():
    with pytest.raises(ImageError, match="bomb.png: declares"):
        load_colour(png_header_only(30000, 30000), name="bomb.png")


def test_wrong_type():
    with pytest.raises(TypeError, match="path or bytes"):
        load_colour(np.zeros((4, 4, 3), np.uint8))


# --- colour spaces and the three schemes ------------------------------------------

def test_ycbcr_is_bt601_full_range():
    # JPEG's published constants (T.871): white and black have neutral chroma 128 of 255.
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], np.uint8)
    ycbcr = helpers.rgb_to_ycbcr(rgb)
    # float32 arithmetic on 3 terms of size <= 1: well under 1e-6
    mid = 128 / 255
    assert np.allclose(ycbcr[0, 0], [1, mid, mid], atol=1e-6)
    assert np.allclose(ycbcr[0, 1], [0, mid, mid], atol=1e-6)
    assert np.allclose(ycbcr[0, 2], [0.299, mid - 0.168736, mid + 0.5], atol=1e-6)


@pytest.mark.parametrize("space", helpers.COLOUR_SPACES)
def test_full_rank_round_trip(space, factors):
    for rgb, decompositions in factors:
        m, n, _ = rgb.shape
        full = min(m, 3 * n) if space == "stacked" else min(m, n)
        out = helpers.colour_reconstruct(decompositions[space], full, space)
        assert out.dtype == np.uint8 and out.shape == rgb.shape
        # float32 SVD round-off plus colour conversion: at most 2 grey levels after rounding
        assert np.abs(out.astype(int) - rgb).max() <= 2


def test_per_plane_ranks_and_rank_errors(astronaut):
    out = helpers.colour_approx(astronaut, (40, 10, 10), "ycbcr")
    assert out.shape == astronaut.shape
    for bad in (0, 513, 2.5, (10, 10), (10, 0, 10)):
        with pytest.raises(ValueError, match="rank|ranks"):
            helpers.colour_approx(astronaut, bad, "rgb")
    with pytest.raises(ValueError, match="from 1 to 512"):
        helpers.colour_approx(astronaut, (40, 600, 10), "ycbcr")
    with pytest.raises(ValueError, match="from 1 to 512"):
        helpers.colour_approx(astronaut, (10, 10, 10), "stacked")
    with pytest.raises(ValueError, match="space"):
        helpers.colour_approx(astronaut, 10, "hsv")
    with pytest.raises(ValueError, match="RGB uint8"):
        helpers.colour_approx(astronaut[..., 0], 10)


def test_stored_value_counts():
    assert helpers.colour_stored_values(512, 512, 10) == 3 * 10 * 1025
    assert helpers.colour_stored_values(512, 512, (20, 5, 5), "ycbcr") == 30 * 1025
    assert helpers.colour_stored_values(400, 600, 13, "stacked") == 13 * (400 + 1800 + 1)
    # the stacked matrix is 400 x 1800, so its rank goes up to 400
    assert helpers.colour_stored_values(400, 600, 400, "stacked") == 400 * 2201
    with pytest.raises(ValueError, match="from 1 to 400"):
        helpers.colour_stored_values(400, 600, 401, "stacked")


@pytest.fixture(scope="module")
def factors(astronaut, coffee):
    """Each photo with its SVDs in every scheme, computed once for the module."""
    return [(rgb, {space: helpers.colour_svd(rgb, space) for space in helpers.COLOUR_SPACES})
            for rgb in (astronaut, coffee)]


@pytest.mark.parametrize("ratio", [25, 12.5, 6.25])
def test_luma_heavy_ycbcr_beats_per_channel_and_stacked(ratio, factors):
    for rgb, decompositions in factors:
        m, n, _ = rgb.shape
        budget = 3 * m * n / ratio
        k_rgb = int(budget // (3 * (m + n + 1)))
        k_stacked = int(budget // (m + 3 * n + 1))
        c = int(budget // (6 * (m + n + 1)))   # luma rank 4c, chroma ranks c: 6c(m + n + 1) values
        schemes = {"rgb": k_rgb, "stacked": k_stacked, "ycbcr": (4 * c, c, c)}
        quality = {}
        for space, ranks in schemes.items():
            assert helpers.colour_stored_values(m, n, ranks, space) <= budget
            approx = helpers.colour_reconstruct(decompositions[space], ranks, space)
            quality[space] = helpers.psnr(rgb, approx)
        # YCbCr stores no more values than per-channel here, and still wins clearly
        assert helpers.colour_stored_values(m, n, schemes["ycbcr"], "ycbcr") <= \
            helpers.colour_stored_values(m, n, k_rgb, "rgb")
        assert quality["ycbcr"] > quality["rgb"] + 0.5, quality
        assert quality["stacked"] > quality["rgb"], quality


def test_colour_svd_file_round_trip(astronaut):
    decompositions = helpers.colour_svd(astronaut, "ycbcr")
    buf = io.BytesIO()
    size = helpers.save_colour_svd(buf, decompositions, (40, 10, 10), "ycbcr")
    assert size == len(buf.getvalue())
    # about one byte per stored value, plus scales and packaging
    assert size < 1.2 * helpers.colour_stored_values(512, 512, (40, 10, 10), "ycbcr")
    buf.seek(0)
    from_file = helpers.load_colour_svd(buf)
    exact = helpers.colour_reconstruct(decompositions, (40, 10, 10), "ycbcr")
    assert from_file.shape == astronaut.shape
    # 8-bit factors cost a little quality, never a lot
    assert 0 <= helpers.psnr(astronaut, exact) - helpers.psnr(astronaut, from_file) < 0.5


def test_colour_svd_file_stacked(tmp_path, astronaut):
    path = tmp_path / "stacked.npz"
    size = helpers.save_colour_svd(path, helpers.colour_svd(astronaut, "stacked"), 30, "stacked")
    assert size == path.stat().st_size
    assert helpers.load_colour_svd(path).shape == astronaut.shape


def test_show_crops_at_1to1_draws_every_pixel_unchanged(astronaut):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core.pylabtools import print_figure

    rows, cols = slice(316, 444), slice(116, 244)
    pictures = [astronaut, helpers.colour_approx(astronaut, 10), helpers.luma(astronaut)[::-1].copy()]
    titles = ["original", "rank 10", "grey, upside down"]
    crops = [np.dstack([p[rows, cols]] * 3) if p.ndim == 2 else p[rows, cols] for p in pictures]
    fig = helpers.show_crops_at_1to1(pictures, titles, rows, cols)
    assert [t.get_text() for t in fig.texts] == titles
    fig.canvas.draw()
    drawn = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    # 414 pixels wide: 4.14 inches x 100 dpi is 413.99999999999994 in floating point
    assert drawn.shape == (128 + 30, 3 * (128 + 10), 3)  # crops 10 pixels apart, 30 for the titles
    for i, crop in enumerate(crops):
        assert np.array_equal(drawn[30:, i * 138:i * 138 + 128], crop)  # no resampling at all
    # what Jupyter shows: a PNG cropped to the figure's tight box, with a margin
    shown = np.asarray(Image.open(io.BytesIO(print_figure(fig, "png", bbox_inches="tight"))))[..., :3]
    top, left = next((y, x) for y in range(60) for x in range(30)   # the margin is 0.1 inch
                     if np.array_equal(shown[y:y + 128, x:x + 128], crops[0]))
    for i, crop in enumerate(crops):
        assert np.array_equal(shown[top:top + 128, left + i * 138:left + i * 138 + 128], crop)
    plt.close(fig)


def test_show_crops_at_1to1_bad_input(astronaut):
    rows, cols = slice(0, 64), slice(0, 64)
    with pytest.raises(ValueError, match="one title per picture"):
        helpers.show_crops_at_1to1([astronaut, astronaut], ["only one"], rows, cols)
    with pytest.raises(ValueError, match="uint8 images of one size"):
        helpers.show_crops_at_1to1([astronaut, astronaut[:100]], ["a", "b"], rows, cols)
    with pytest.raises(ValueError, match="uint8 images of one size"):
        helpers.show_crops_at_1to1([helpers.to_unit(astronaut)], ["float"], rows, cols)
    with pytest.raises(ValueError, match="uint8 images of one size"):
        helpers.show_crops_at_1to1([np.dstack([astronaut, astronaut[..., :1]])], ["RGBA"], rows, cols)
    with pytest.raises(ValueError, match="is empty"):
        helpers.show_crops_at_1to1([astronaut], ["outside"], slice(600, 700), cols)


# --- the colour explorer's kernel side -------------------------------------------------

def test_colour_cache_matches_colour_approx(astronaut):
    from explorer.colour import ColourCache

    cache = ColourCache(astronaut)
    for k_luma, k_chroma in [(40, 10), (1, 1), (100, 3), (17, 33), (512, 512)]:
        shown = cache.picture(k_luma, k_chroma)
        expected = helpers.colour_approx(astronaut, (k_luma, k_chroma, k_chroma), "ycbcr")
        # the same sums in another float32 order: at most one level apart after rounding
        assert np.abs(shown.astype(int) - expected).max() <= 1
        readouts = cache.readouts(k_luma, k_chroma, shown)
        assert readouts["stored_values"] == helpers.colour_stored_values(512, 512, (k_luma, k_chroma, k_chroma), "ycbcr")
        assert readouts["ratio"] == pytest.approx(3 * 512 * 512 / readouts["stored_values"])
        # helpers.psnr scales to float32 in [0, 1] first: float32 round-off, about 1e-7 relative
        assert readouts["psnr"] == pytest.approx(helpers.psnr(astronaut, shown), rel=1e-6)
    assert np.abs(cache.picture(512, 512).astype(int) - astronaut).max() <= 2   # full rank: the photo


def test_colour_cache_moves_and_rank_errors(astronaut):
    from explorer.colour import ColourCache, ColourSpectrumPanel

    cache = ColourCache(astronaut)
    first = cache.picture(20, 5).copy()
    luma_moved = cache.picture(60, 5).copy()
    chroma_moved = cache.picture(60, 30)
    assert not np.array_equal(first, luma_moved) and not np.array_equal(luma_moved, chroma_moved)
    assert cache.readouts(60, 30)["psnr"] > cache.readouts(20, 5)["psnr"]
    for bad in [(0, 5), (5, 513), (2.5, 5)]:
        with pytest.raises(ValueError, match="from 1 to 512"):
            cache.picture(*bad)
    with pytest.raises(ValueError, match="RGB uint8"):
        ColourCache(astronaut[..., 0])
    assert set(cache.spectra) == {"Y", "Cb", "Cr"}
    panel = ColourSpectrumPanel(cache.spectra)
    assert panel.draw(60, 30)[:4] == b"\x89PNG" and panel.draw(60, 30) != panel.draw(61, 30)


def test_colour_explorer_driven_in_the_kernel(astronaut):
    import cv2

    from explorer.colour import ColourExplorer

    explorer = ColourExplorer(sample="astronaut", rank=40, chroma_rank=10)
    assert explorer.in_colour and explorer.picture.channels == 3 and explorer.picture.rank == 40
    assert explorer.readouts["stored_values"] == helpers.colour_stored_values(512, 512, (40, 10, 10), "ycbcr")
    expected = helpers.colour_approx(astronaut, (40, 10, 10), "ycbcr")
    # float32 sums in another order: one level at most
    shown = explorer.picture.image  # the whole picture (the page rebuilds its own from the factors)
    assert np.abs(shown.astype(int) - expected).max() <= 1
    before = explorer.readouts["psnr"]
    explorer.chroma_slider.value = 30          # the chroma slider redraws, the luma rank stays
    assert explorer.readouts["k_chroma"] == 30 and explorer.readouts["k_luma"] == 40
    assert explorer.readouts["psnr"] > before
    explorer.slider.value = 80                 # the rank slider is the luma rank in colour
    assert explorer.readouts["k_luma"] == 80 and explorer.picture.rank == 80
    assert explorer.readouts["ssim"] is not None   # no event loop here: SSIM on luma at once
    assert "SSIM on luma" in explorer.table.value

    explorer.mode.value = "grey"               # the toggle: the luma plane, one slider
    assert explorer.picture.channels == 1 and explorer.readouts["stored_values"] == 80 * 1025
    explorer.mode.value = "colour"
    assert explorer.picture.channels == 3

    ok, png = cv2.imencode(".png", helpers.sample_image("camera"))
    assert explorer._on_upload("camera.png", png.tobytes())          # a grey upload: no toggle
    assert not explorer.in_colour and explorer.colour_controls.layout.display == "none"
    ok, png = cv2.imencode(".png", cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB))
    explorer._on_upload("photo.png", png.tobytes())                 # a colour upload keeps its colour
    assert explorer.in_colour and explorer.picture.channels == 3
    assert explorer.colour_controls.layout.display is None
    explorer.close()


def page_colour_picture(picture, k, kc):
    """The RGB picture the page rebuilds from the Y, Cb, Cr factors it was sent (picture.js)."""
    planes, rank, rows, cols = picture.factor_shape
    values = np.frombuffer(picture.factors, "<f2").astype(np.float32).reshape(planes, -1)
    sums = [(v[:rank * rows].reshape(rank, rows)[:r].T @ v[rank * rows:].reshape(rank, cols)[:r])
            for v, r in zip(values, (k, kc, kc), strict=True)]
    t = np.array(picture.to_rgb).reshape(3, 4)
    rgb = np.einsum("cp,pij->ijc", t[:, :3], np.array(sums, np.float64)) + t[:, 3]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def test_colour_explorer_sends_the_picture_at_the_size_shown(astronaut):
    import cv2

    from explorer.colour import ColourExplorer

    explorer = ColourExplorer(sample="astronaut", rank=40, chroma_rank=10, sources=False)
    explorer.picture.view_size = [256, 900]  # 256 x 256 on screen
    assert explorer.picture.live and explorer.picture.factor_shape == [3, 512, 256, 256]  # Y, Cb, Cr
    sent = []
    explorer.picture.observe(lambda change: sent.append(change.name), ["pixels", "factors"])
    for k, kc in [(41, 10), (41, 12), (300, 12)]:  # the luma slider, the chroma slider, a jump
        explorer.chroma_slider.value = kc
        explorer.set_rank(k)
        assert not sent  # the page rebuilds it from the factors it has
        small = page_colour_picture(explorer.picture, k, kc)
        kernel = explorer.colour_cache.picture(k, kc, size=(256, 256)).astype(int)
        assert np.abs(small.astype(int) - kernel).max() <= 1  # float16 factors: one level at most
        # the full picture scaled down, but for rounding: within one level wherever no RGB value
        # may have been clipped (there the clipping comes after the averaging)
        full = explorer.colour_cache.picture(k, kc)
        scaled = cv2.resize(full, (256, 256), interpolation=cv2.INTER_AREA).astype(int)
        unclipped = ((full > 0) & (full < 255)).all(axis=2).astype(np.float32)
        inside = cv2.resize(unclipped, (256, 256), interpolation=cv2.INTER_AREA) == 1
        difference = np.abs(small.astype(int) - scaled).max(axis=2)
        assert difference[inside].max() <= 1 and inside.mean() > 0.5, (k, kc, inside.mean())
        assert np.array_equal(explorer._recon, full) and explorer.readouts["k_chroma"] == kc
    explorer.close()


# --- the exercise checks of notebook 07 ----------------------------------------------------

def test_check_colour_break_even(capsys):
    import checks

    m, n = 512, 512
    assert checks.check_colour_break_even((m * n / (m + n + 1), 3 * m * n / (m + 3 * n + 1)), m, n)
    assert "✓" in capsys.readouterr().out
    for wrong in [None, (1, 2, 3), (255, 383), (m * n / (m + n + 1), m * n / (m + 3 * n + 1)), ("a", 1)]:
        assert not checks.check_colour_break_even(wrong, m, n)
        out = capsys.readouterr().out
        assert "✓" not in out and "383.8" not in out and "255.8" not in out   # a hint, never the answer


def test_check_best_split(capsys, coffee):
    import checks

    total = int(3 * 400 * 600 / 12.5 // (400 + 600 + 1))
    decompositions = helpers.colour_svd(coffee, "ycbcr")
    scores = {c: helpers.psnr(coffee, helpers.colour_reconstruct(decompositions, (total - 2 * c, c, c), "ycbcr"))
              for c in range(1, total // 3 + 1)}
    best = max(scores, key=scores.get)
    assert checks.check_best_split(best, coffee, total)
    assert "✓" in capsys.readouterr().out
    for wrong in [None, 0, total, total // 3, 1, 2.0]:
        assert not checks.check_best_split(wrong, coffee, total)
        assert "✓" not in capsys.readouterr().out


def test_large_colour_upload_in_a_kernel_is_decoded_once_and_shows_colour_first(astronaut, monkeypatch):
    import asyncio

    import cv2

    import explorer.colour
    import explorer.widget
    from explorer.colour import ColourCache, ColourExplorer

    decoded = []
    for module in (explorer.colour, explorer.widget):
        real = module.read_image
        monkeypatch.setattr(module, "read_image", lambda *a, _real=real, **k: decoded.append(k) or _real(*a, **k))
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)   # over 0.5 MP
    ok, png = cv2.imencode(".png", cv2.cvtColor(big, cv2.COLOR_RGB2BGR))

    async def session():  # a running event loop, as in a Jupyter kernel
        explorer = ColourExplorer(sample="camera", rank=40)
        decoded.clear()
        spectrum_before = bytes(explorer.spectrum.value)
        explorer._on_upload("big.png", png.tobytes())
        assert decoded == [{"name": "big.png", "colour": True}]  # one decode, in colour
        # the Y, Cb, Cr spectrum (0.2 s of matplotlib) is drawn right after the first picture
        assert bytes(explorer.spectrum.value) == spectrum_before
        await asyncio.sleep(0.01)
        spectrum = cv2.imdecode(np.frombuffer(bytes(explorer.spectrum.value), np.uint8), cv2.IMREAD_COLOR)
        blue, red = (spectrum[..., 0] > 150) & (spectrum[..., 2] < 100), (spectrum[..., 2] > 150) & (spectrum[..., 0] < 100)
        assert blue.sum() > 100 and red.sum() > 100, "the spectrum does not show the Cb (blue) and Cr (red) lines"
        # the first picture at once, in colour, from randomized SVDs of Y, Cb and Cr
        fast = ColourCache(big, leading=explorer.APPROXIMATE_RANK)
        assert explorer.in_colour and not explorer.colour_cache.exact and explorer.picture.channels == 3
        assert explorer.chroma_slider.max == explorer.slider.max == explorer.APPROXIMATE_RANK
        k, kc = explorer.slider.value, explorer.chroma_slider.value
        assert np.array_equal(explorer._recon, fast.picture(k, kc))
        assert "randomized SVDs" in explorer.caption.value and "randomized SVDs" in explorer.table.value
        for _ in range(1200):  # up to 2 minutes on a busy machine: colour first, then grey
            await asyncio.sleep(0.1)
            assert explorer.colour_cache.exact or not explorer.cache.exact  # luma never outruns colour
            if explorer.colour_cache.exact and explorer.cache.exact:
                break
        assert explorer.chroma_slider.max == explorer.slider.max == 1024
        assert np.array_equal(explorer._recon, ColourCache(big).picture(k, kc))
        assert "randomized" not in explorer.caption.value and "exact SVDs" in explorer.table.value
        explorer.slider.value = 700  # past the randomized ranks, in colour and in grey
        await asyncio.sleep(0.1)
        assert explorer.readouts["k_luma"] == 700 and explorer.picture.rank == 700
        assert explorer.cache.sums.built_ranks == []  # colour on screen: no memory for grey's sums (issue 20)
        explorer.mode.value = "grey"
        assert explorer.picture.channels == 1 and explorer.readouts["k"] == 700
        assert explorer.cache.sums.built_ranks  # built when grey is first shown
        explorer.close()

    asyncio.run(session())
