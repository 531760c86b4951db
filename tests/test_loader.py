"""load_greyscale: every input class from DESIGN.md gets a picture or one clear error.

The fixtures are made here, in memory or in tmp_path; no junk files are committed.
"""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

import helpers
from helpers import ImageError, load_greyscale


def png_bytes(array, mode=None, **save_args):
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG", **save_args) if mode else \
        Image.fromarray(array).save(buf, format="PNG", **save_args)
    return buf.getvalue()


def pil_bytes(image, fmt, **save_args):
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save_args)
    return buf.getvalue()


@pytest.fixture
def gradient():
    return np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))  # 48 x 64


# --- good inputs ----------------------------------------------------------------

def test_path_str_path_and_bytes_agree(tmp_path, gradient):
    path = tmp_path / "g.png"
    path.write_bytes(png_bytes(gradient))
    for source in (path, str(path), path.read_bytes()):
        img = load_greyscale(source)
        assert img.dtype == np.uint8 and img.shape == (48, 64)
        assert np.array_equal(img, gradient)


def test_non_ascii_path(tmp_path, gradient):
    folder = tmp_path / "imágenes ñ 画像"
    folder.mkdir()
    path = folder / "grâce é.png"
    path.write_bytes(png_bytes(gradient))
    assert np.array_equal(load_greyscale(path), gradient)


def test_colour_uses_the_same_weights_as_opencv():
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    ours = load_greyscale(png_bytes(rgb))
    theirs = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert np.abs(ours.astype(int) - theirs).max() <= 1
    expected = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))
    assert np.abs(ours - expected).max() <= 1


def test_sixteen_bit_is_scaled_not_clipped():
    values = np.array([[0, 257, 32896, 65535]] * 3, dtype=np.uint16)
    img = load_greyscale(png_bytes(values))
    assert img.dtype == np.uint8
    assert img[0].tolist() == [0, 1, 128, 255]


def test_sixteen_bit_colour_png_via_opencv():
    rgb16 = np.full((4, 5, 3), 65535, dtype=np.uint16)
    rgb16[..., 0] = 0  # OpenCV writes BGR: no blue
    ok, buf = cv2.imencode(".png", rgb16)
    assert ok
    img = load_greyscale(buf.tobytes())
    assert img.shape == (4, 5)
    assert abs(int(img[0, 0]) - round(255 * (0.299 + 0.587))) <= 1


def test_alpha_is_laid_on_white(capsys):
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 0            # fully transparent black ...
    rgba[:, :4, 3] = 255        # ... except the left half, opaque black
    img = load_greyscale(png_bytes(rgba))
    assert img[:, :4].max() == 0 and img[:, 4:].min() == 255
    assert "transparent" in capsys.readouterr().out


def test_opaque_alpha_prints_no_notice(capsys):
    rgba = np.full((6, 8, 4), 255, dtype=np.uint8)
    load_greyscale(png_bytes(rgba))
    assert capsys.readouterr().out == ""


def test_palette_image():
    pal = Image.fromarray(np.array([[0, 1], [1, 0]] * 2, dtype=np.uint8), mode="P")
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red, 1 blue
    img = load_greyscale(pil_bytes(pal, "PNG"))
    assert abs(int(img[0, 0]) - 76) <= 1 and abs(int(img[0, 1]) - 29) <= 1


def test_palette_with_transparency():
    pal = Image.fromarray(np.array([[0, 1]] * 3, dtype=np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    img = load_greyscale(pil_bytes(pal, "PNG", transparency=1))
    assert img[:, 0].tolist() == [0, 0, 0] and img[:, 1].tolist() == [255, 255, 255]


def test_gif_with_several_frames_gives_the_first(capsys):
    frames = [Image.fromarray(np.full((5, 7), v, dtype=np.uint8)) for v in (10, 200, 90)]
    data = pil_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])
    img = load_greyscale(data, name="anim.gif")
    assert img.shape == (5, 7) and abs(int(img[0, 0]) - 10) <= 2
    assert "anim.gif has 3 frames" in capsys.readouterr().out


def test_multipage_tiff_gives_the_first():
    pages = [Image.fromarray(np.full((4, 4), v, dtype=np.uint8)) for v in (30, 60)]
    img = load_greyscale(pil_bytes(pages[0], "TIFF", save_all=True, append_images=pages[1:]))
    assert img.tolist() == [[30] * 4] * 4


def test_exif_orientation_is_applied():
    tall = np.zeros((40, 20), dtype=np.uint8)
    tall[:10, :] = 255  # white band at the top
    image = Image.fromarray(tall)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img = load_greyscale(pil_bytes(image, "JPEG", exif=exif, quality=95))
    assert img.shape == (20, 40)              # displayed landscape
    assert img[:, -10:].mean() > 200          # the top band is now on the right
    assert img[:, :10].mean() < 50


def test_bilevel_and_cmyk_modes():
    one = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).convert("1")
    assert load_greyscale(pil_bytes(one, "PNG")).tolist() == [[0, 255], [255, 0]]
    cmyk = Image.new("CMYK", (3, 3), (0, 0, 0, 0))  # no ink: white
    assert load_greyscale(pil_bytes(cmyk, "JPEG")).min() >= 250


# --- bad inputs -----------------------------------------------------------------

def test_missing_path_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_greyscale(tmp_path / "nope.png")


def test_directory(tmp_path):
    with pytest.raises(ImageError, match="folder"):
        load_greyscale(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty.png: the file is empty"):
        load_greyscale(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are lecture notes, not a picture")
    with pytest.raises(ImageError, match=r"notes.png: not an image"):
        load_greyscale(path)


@pytest.mark.parametrize("head, what", [
    (b"%PDF-1.7\n%...", "PDF"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
])
def test_unsupported_formats_say_what_they_are(head, what):
    with pytest.raises(ImageError, match=what):
        load_greyscale(head, name="upload.bin")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(fmt):
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8))
    data = pil_bytes(img, fmt)
    with pytest.raises(ImageError, match="photo: the file is truncated or damaged"):
        load_greyscale(data[: len(data) // 2], name="photo")


def test_header_only_is_damaged():
    data = png_bytes(np.zeros((10, 10), np.uint8))
    with pytest.raises(ImageError, match="x.png"):
        load_greyscale(data[:40], name="x.png")


def test_float_tiff_is_refused():
    image = Image.fromarray(np.zeros((4, 4), dtype=np.float32), mode="F")
    with pytest.raises(ImageError, match="floating-point"):
        load_greyscale(pil_bytes(image, "TIFF"))


@pytest.mark.parametrize("shape", [(1, 50), (50, 1), (1, 1)])
def test_one_pixel_wide_images_are_refused(shape):
    with pytest.raises(ImageError, match="at least 2 pixels"):
        load_greyscale(png_bytes(np.zeros(shape, np.uint8)), name="thin.png")


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="path or bytes"):
        load_greyscale(np.zeros((4, 4), np.uint8))


# --- the pixel cap --------------------------------------------------------------

def test_large_image_is_downscaled_with_a_notice(capsys):
    img = np.random.default_rng(2).integers(0, 256, (300, 400), dtype=np.uint8)
    out = load_greyscale(png_bytes(img), max_pixels=30_000, name="big.png")
    assert out.size <= 30_000 and out.shape == (150, 200)
    notice = capsys.readouterr().out
    assert "big.png is 300 × 400 pixels" in notice and "downscaled to 150 × 200" in notice


def test_read_image_returns_the_notices_instead_of_printing(capsys):
    rgba = np.zeros((300, 400, 4), dtype=np.uint8)  # fully transparent, over a 30 000-pixel cap
    data = png_bytes(rgba)
    img, notice = helpers.read_image(data, name="clear.png", max_pixels=30_000)
    assert img.shape == (150, 200) and (img == 255).all()  # laid on white, downscaled
    lines = notice.splitlines()
    assert len(lines) == 2 and "clear.png has transparent pixels" in lines[0] and "downscaled to 150 × 200" in lines[1]
    assert capsys.readouterr().out == ""
    assert np.array_equal(load_greyscale(data, name="clear.png", max_pixels=30_000), img)
    assert capsys.readouterr().out == notice + "\n"  # load_greyscale prints the same notice
    assert helpers.read_image(png_bytes(np.zeros((4, 4), np.uint8)))[1] == ""


def test_large_jpeg_is_decoded_at_reduced_scale(capsys):
    img = Image.fromarray(np.random.default_rng(3).integers(0, 256, (1200, 1600), dtype=np.uint8))
    out = load_greyscale(pil_bytes(img, "JPEG"), max_pixels=100_000, name="phone.jpg")
    assert out.size <= 100_000
    assert abs(out.shape[1] / out.shape[0] - 4 / 3) < 0.02  # aspect ratio kept
    assert "phone.jpg is 1200 × 1600 pixels" in capsys.readouterr().out


def test_default_cap_keeps_images_under_it():
    img = np.zeros((2100, 2100), np.uint8)
    out = load_greyscale(png_bytes(img))
    assert out.size <= helpers.MAX_PIXELS


def png_header_only(width, height):
    """A few dozen bytes that declare a width x height greyscale PNG, with no pixel data."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    # 30000 x 30000 = 900 megapixels declared in 80 bytes: refused from the header.
    with pytest.raises(ImageError, match="bomb.png: declares far more pixels"):
        load_greyscale(png_header_only(30000, 30000), name="bomb.png")


def test_over_the_decode_limit_is_refused_with_its_size():
    with pytest.raises(ImageError, match="big.png: declares 8000 × 10000 pixels"):
        load_greyscale(png_header_only(10000, 8000), name="big.png")


def test_loaded_images_are_writable(gradient):
    img = load_greyscale(png_bytes(gradient))
    img[0, 0] = 7  # students edit pixels; a read-only array would raise here
    assert img.flags.c_contiguous and img[0, 0] == 7
