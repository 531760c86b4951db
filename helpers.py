"""Shared lesson code for the SVD image-compression notebooks.

Each name, and the notebook that teaches it:

==============================================================  ==========================
name                                                            taught in
==============================================================  ==========================
SAMPLES, sample_image, sample_path                              00_start_here, 01
load_greyscale, read_image, check_image, ImageError,            01_greyscale_loading
MAX_PIXELS, MAX_DECODE_PIXELS
to_unit, to_uint8, show_images, cpu_seconds                     02_normalization
svd, Decomposition, plot_spectrum, relative_error,              03_svd
plot_circle_to_ellipse
check_rank, truncate, reconstruct, psnr, ssim,                  04_truncation
cumulative_energy, rank_for_energy, plot_quality_against_rank
stored_values, stored_bytes, BYTES_PER_VALUE, break_even_rank,  05_size_comparison
encode, encoded_size, save_svd, load_svd, svd_file_curve,
codec_curve, lossless_sizes, smallest_reaching,
plot_rate_distortion
RankExplorer (04 and 06), RankCache, ERROR_GAIN, QUICK_RANKS    06_explorer
load_colour, sample_colour_image, rgb_to_ycbcr, ycbcr_to_rgb,   07_colour
luma, colour_planes, colour_svd, colour_reconstruct,
colour_approx, colour_stored_values, save_colour_svd,
load_colour_svd, COLOUR_SPACES, RGB_TO_YCBCR, ColourExplorer,
show_crops_at_1to1
randomized_svd, compute_device                                  08_randomized_svd
show_signed_images                                              09_many_images
==============================================================  ==========================

The sections follow the order of the series: load, normalize, decompose,
truncate and reconstruct, measure (quality and sizes), store, plot.
Every function takes and returns plain arrays (or the small ``Decomposition`` container),
so each step can be checked on its own. The rank explorer lives in the package
``explorer/``; the names in its row above are looked up there on first use.

>>> import helpers
>>> img = helpers.sample_image("camera")      # uint8, 512 x 512
>>> A = helpers.to_unit(img)                  # float32 in [0, 1]
>>> A10 = helpers.reconstruct(helpers.svd(A), 10)
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from PIL import (
    EpsImagePlugin,
    Image,
    ImageFile,
    ImageOps,
    PsdImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
)

__all__ = [
    "ImageError", "MAX_PIXELS", "MAX_DECODE_PIXELS", "SAMPLES",
    "read_image", "load_greyscale", "check_image", "sample_path", "sample_image",
    "to_unit", "to_uint8",
    "Decomposition", "compute_device", "svd", "randomized_svd", "check_rank", "truncate", "reconstruct",
    "show_signed_images",
    "psnr", "ssim", "relative_error", "cumulative_energy", "rank_for_energy",
    "BYTES_PER_VALUE", "stored_values", "stored_bytes", "break_even_rank",
    "encode", "encoded_size", "save_svd", "load_svd",
    "svd_file_curve", "codec_curve", "lossless_sizes", "smallest_reaching", "plot_rate_distortion",
    "show_images", "plot_spectrum", "plot_circle_to_ellipse", "plot_quality_against_rank",
    "load_colour", "sample_colour_image", "COLOUR_SPACES", "RGB_TO_YCBCR", "rgb_to_ycbcr", "ycbcr_to_rgb",
    "luma", "colour_planes", "colour_svd", "colour_reconstruct", "colour_approx", "colour_stored_values",
    "save_colour_svd", "load_colour_svd", "show_crops_at_1to1",
]

# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------

MEDIA_DIR = Path(__file__).resolve().parent / "media"

#: Sample images in ``media/`` (sources and licences in media/CREDITS.md).
SAMPLES = {
    "camera": "camera.png",        # 512 x 512 photo, the series' main example
    "astronaut": "astronaut.png",  # 512 x 512 colour photo, for colour -> grey
    "hubble": "hubble.png",        # 1000 x 872 photo, about 0.9 megapixels
    "document": "document.png",    # a page of text, generated
    "brick": "brick.png",          # 512 x 512 texture
    "plaid": "plaid.png",          # low-rank plaid, generated
}

#: Largest image the helpers work on: 2048 x 2048 = 4.2 megapixels. On two CPU
#: cores its SVD takes about 1.5 s and about 130 MB, so the explorer (which keeps
#: the factors and a few cached reconstructions) stays well inside Binder's
#: 2 GB. Larger images are downscaled to fit, with a printed notice.
MAX_PIXELS = 2048 * 2048

#: Files that declare more pixels than this are refused before decoding (a tiny
#: file can declare 30000 x 30000). JPEGs are first decoded at reduced scale,
#: so a 24-megapixel phone photo decodes at 6 megapixels and is accepted.
MAX_DECODE_PIXELS = 50_000_000

_MIN_SIDE = 2

#: What the loader reads, as the error messages say it.
READABLE = "PNG, JPEG, GIF, BMP, TIFF and WebP can be read"

# Formats people try that Pillow cannot read, recognised by their first bytes.
_UNSUPPORTED_SIGNATURES = [
    (b"%PDF", "a PDF document"),
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an XML/SVG file"),
]
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif")

# The first bytes of the formats the loader reads: a file that starts like one of them but
# cannot be opened is damaged, not "not an image".
# TIFF compressions that libtiff builds may leave out (Pillow's names for them).
_OPTIONAL_TIFF_CODECS = ("webp", "zstd", "lzma")

_READABLE_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"8BPS", "Photoshop (PSD)"), (b"BM", "BMP"),
]


class ImageError(ValueError):
    """A file, upload or array that cannot be used as a greyscale image.

    The message names the file and says what is wrong with it.

    >>> try:
    ...     load_greyscale(b"hello")
    ... except ImageError as err:
    ...     print(err)
    the uploaded data: not an image (PNG, JPEG, GIF, BMP, TIFF and WebP can be read)
    """


def check_image(img, *, label: str = "the image") -> np.ndarray:
    """Return ``img`` as a NumPy array if it is a 2-D ``uint8`` image at least
    2 pixels on each side; otherwise raise ``ImageError`` saying why.

    >>> check_image(np.zeros((2, 3), np.uint8)).shape
    (2, 3)
    """
    img = _numpy(img)
    if img.dtype != np.uint8 or img.ndim != 2:
        raise ImageError(f"{label}: expected a 2-D uint8 image (see load_greyscale), "
                         f"got {img.dtype} with shape {img.shape}")
    height, width = img.shape
    if min(height, width) < _MIN_SIDE:
        raise ImageError(f"{label}: the image is {height} × {width} pixels (rows × columns); SVD compression "
                         f"needs at least {_MIN_SIDE} pixels in each direction")
    return img


def load_greyscale(source: str | os.PathLike | bytes, *, name: str | None = None,
                   max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load an image file or uploaded bytes as a ``uint8`` greyscale matrix.

    Colour becomes grey with the ITU-R BT.601 weights 0.299 R + 0.587 G +
    0.114 B, correctly rounded (OpenCV's ``cvtColor`` uses the same weights and
    agrees within one grey level; its ``IMREAD_GRAYSCALE`` decoder rounds down
    more often, so it can be one level darker). EXIF orientation is
    applied, 16-bit images are scaled to 8 bits, transparent pixels are laid on
    white, and a file with several frames gives its first frame. Images over
    ``max_pixels`` are downscaled to fit, with a printed notice.

    Parameters
    ----------
    source : str, Path or bytes
        A path to an image file, or the raw bytes of one (an upload).
    name : str, optional
        What to call the source in messages (for example the upload's file name).
    max_pixels : int
        Pixel cap; see ``MAX_PIXELS``.

    Returns
    -------
    numpy.ndarray
        2-D array of dtype ``uint8``, shape (height, width).

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ImageError
        Anything else that makes the input unusable: a folder, an empty file,
        not an image, an unsupported format, a truncated file, an image only
        one pixel wide, or one too large to decode.

    Examples
    --------
    >>> img = load_greyscale(sample_path("camera"))
    >>> img.shape, img.dtype
    ((512, 512), dtype('uint8'))
    """
    image, notice = read_image(source, name=name, max_pixels=max_pixels)
    if notice:
        print(notice)
    return image


def read_image(source: str | os.PathLike | bytes, *, name: str | None = None,
               max_pixels: int = MAX_PIXELS, colour: bool = False) -> tuple[np.ndarray, str]:
    """``load_greyscale`` without the printing: return ``(image, notice)``.

    ``notice`` is what ``load_greyscale`` prints (several frames, transparent
    pixels, downscaled to fit ``max_pixels``), or "" when there is nothing to say.
    With ``colour=True`` the image is RGB, shape (m, n, 3), as from ``load_colour``.

    >>> read_image(sample_path("camera"))[1]
    ''
    """
    label, data = _read_source(source, name)
    notices = []
    with warnings.catch_warnings():
        # Pillow warns about large or truncated files; this loader says so in its own errors.
        warnings.simplefilter("ignore")
        with _reading(label, data):
            image = Image.open(io.BytesIO(data))
        _check_declared_size(image, label)
        width, height = declared = image.size
        if image.format == "JPEG" and width * height > max_pixels:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: far less memory.
            scale = math.sqrt(max_pixels / (width * height))
            image.draft("RGB" if colour else "L", (math.ceil(width * scale), math.ceil(height * scale)))
        if image.size[0] * image.size[1] > MAX_DECODE_PIXELS:
            raise ImageError(
                f"{label}: declares {height} × {width} pixels "
                f"({width * height / 1e6:.0f} megapixels); this loader refuses to decode more "
                f"than {MAX_DECODE_PIXELS / 1e6:.0f} megapixels. Shrink the image first."
            )
        with _reading(label, data, image):
            frames = getattr(image, "n_frames", 1)
            image.load()
            image = ImageOps.exif_transpose(image)
            grey = (_to_colour if colour else _to_grey)(image, label, notices)

    if frames > 1:
        notices.append(f"Notice: {label} has {frames} frames; using the first one.")
    height, width = check_image(grey[..., 0] if colour else grey, label=label).shape
    if width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        new_w, new_h = max(_MIN_SIDE, int(width * scale)), max(_MIN_SIDE, int(height * scale))
        grey = cv2.resize(grey, (new_w, new_h), interpolation=cv2.INTER_AREA)
    if grey.shape[:2] != (height, width) or grey.shape[0] * grey.shape[1] < declared[0] * declared[1]:
        notices.append(
            f"Notice: {label} is {declared[1]} × {declared[0]} pixels (rows × columns, {declared[0] * declared[1] / 1e6:.1f} "
            f"megapixels), over the {max_pixels / 1e6:.1f}-megapixel cap; downscaled to "
            f"{grey.shape[0]} × {grey.shape[1]}."
        )
    # Pillow's arrays are read-only; students expect to be able to edit pixels.
    return np.array(grey, order="C", copy=True), "\n".join(notices)


@contextlib.contextmanager
def _reading(label, data, image=None):
    """Turn any exception that Pillow or OpenCV raises while reading into one ``ImageError``
    naming the file. An exception raised by this module's own code is a bug: it passes."""
    try:
        yield
    except ImageError:
        raise
    except Exception as exc:
        if not _raised_by_reader(exc):
            raise
        raise ImageError(f"{label}: {_reading_problem(exc, data, image)}") from None


def _raised_by_reader(exc):
    """True when ``exc`` was raised inside Pillow or OpenCV, not by code in this module."""
    if isinstance(exc, cv2.error):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return module.split(".")[0] == "PIL"


def _reading_problem(exc, data, image):
    """What to tell the student about ``exc``, raised while reading ``data`` (opened as ``image``)."""
    if isinstance(exc, UnidentifiedImageError):
        return _describe_unreadable(data)
    if isinstance(exc, Image.DecompressionBombError):  # in the header, or in an embedded image
        where = "declares" if image is None else \
            f"declares {image.size[1]} × {image.size[0]} pixels but holds an image with"
        return (f"{where} far more pixels than this loader will decode (at most "
                f"{MAX_DECODE_PIXELS / 1e6:.0f} megapixels; Pillow says: {exc})")
    if image is None:
        return f"damaged image header ({exc})"
    unsupported = _unsupported(image, exc)
    if unsupported:
        return f"{unsupported}; {READABLE}"
    return f"the file is truncated or damaged ({exc})"


def _check_declared_size(image, label):
    """Refuse, from the header, a file this loader cannot use whatever its pixels are."""
    if isinstance(image, ImageFile.StubImageFile):  # Pillow knows the format but cannot decode it
        raise ImageError(f"{label}: {_unsupported(image, None)}; {READABLE}")
    width, height = image.size
    if min(width, height) < _MIN_SIDE:  # before decoding: 1 × 47 million pixels would be 47 MB
        raise ImageError(f"{label}: the image is {height} × {width} pixels (rows × columns); SVD "
                         f"compression needs at least {_MIN_SIDE} pixels in each direction")


def _unsupported(image, exc):
    """Why a file Pillow recognised cannot be decoded here, or None if it seems damaged instead."""
    described = image.format_description
    kind = f"{described} ({image.format})" if described and described != image.format else image.format
    if isinstance(image, ImageFile.StubImageFile):
        return f"the file is in the {kind} format, which this loader recognises but cannot decode"
    if image.format == "EPS" and not EpsImagePlugin.has_ghostscript():
        return "this is an EPS file, which needs Ghostscript to be read, and Ghostscript is not installed"
    if exc is not None and re.search(r"decoder \S+ not available", str(exc)):
        return f"this {kind} file needs a decoder that this installation lacks ({exc})"
    compression = image.info.get("compression")
    if image.format == "TIFF" and compression in _OPTIONAL_TIFF_CODECS:
        # Whether this libtiff has the codec cannot be asked safely (a failed libtiff encode can
        # crash the process later), so say both possibilities.
        return (f"this TIFF file uses {compression} compression, an optional codec: either this "
                f"installation's libtiff lacks it, or the file is damaged")
    return None


def _read_source(source, name):

    """Return (label for messages, raw bytes) for a path or bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "the uploaded data"
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        if not path.exists():
            raise FileNotFoundError(f"{label}: no such file (looked from {Path.cwd()})")
        if path.is_dir():
            raise ImageError(f"{label}: is a folder, not an image file")
        data = path.read_bytes()
    else:
        raise TypeError(f"an image source is a path or bytes, not {type(source).__name__}")
    if not data:
        raise ImageError(f"{label}: the file is empty (0 bytes)")
    return label, data


def _describe_unreadable(data):
    head = data[:64].lstrip()
    for signature, what in _UNSUPPORTED_SIGNATURES:
        if head.startswith(signature):
            return f"this is {what}, not a supported image format; export it as PNG or JPEG"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIC/AVIF images are not supported here; export it as PNG or JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "it starts like a WebP file but cannot be read: the file is truncated or damaged"
    for signature, fmt in _READABLE_SIGNATURES:
        if data.startswith(signature):
            return f"it starts like a {fmt} file but cannot be read: {_why_unopened(fmt, data)}"
    return f"not an image ({READABLE})"


def _why_unopened(fmt, data):
    """Ask the format's own Pillow plugin why it refused ``data``."""
    plugin = {"TIFF": TiffImagePlugin.TiffImageFile, "Photoshop (PSD)": PsdImagePlugin.PsdImageFile}.get(fmt)
    reason, caught = None, []
    if plugin is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                plugin(io.BytesIO(data))
            except Exception as exc:  # the plugin's own reason, of any type: it is only reported
                reason = exc
    if any("Truncated" in str(w.message) for w in caught):
        return "the file is truncated"
    if fmt == "TIFF" and str(reason).isdigit():
        return f"it uses TIFF compression scheme {reason}, which Pillow cannot decode; {READABLE}"
    cause = getattr(reason, "__cause__", None)  # Pillow wraps a KeyError of the (mode, bits) table
    if fmt == "Photoshop (PSD)" and isinstance(cause, KeyError):
        mode, bits = cause.args[0]
        return (f"Pillow reads 8-bit PSD files only, and this one is {bits}-bit "
                f"(colour mode {mode}); {READABLE}")
    return "the file is truncated or damaged"


def _on_white(image, label, notices):
    """A Pillow image with transparency, laid on white (RGBA), with a notice if any pixel shows it."""
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] < 255:
        notices.append(_transparent_notice(label))
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba)


def _transparent_notice(label):
    return f"Notice: {label} has transparent pixels; they are shown on white."


def _to_grey(image, label, notices):
    """Convert a decoded Pillow image of any mode to a uint8 greyscale array."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise ImageError(f"{label}: 32-bit integer pixels are not supported")
        grey = np.rint(values.astype(np.float32) / 257).astype(np.uint8)  # 65535 -> 255
        key = image.info.get("transparency")  # a 16-bit PNG's tRNS: one grey value is transparent
        if isinstance(key, int) and (clear := values == key).any():
            notices.append(_transparent_notice(label))
            grey[clear] = 255
        return grey
    if mode == "F":
        raise ImageError(f"{label}: floating-point pixels are not supported; save it as 8 or 16 bits")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return np.asarray(_on_white(image, label, notices).convert("L"))
    if mode == "L":
        return np.asarray(image)
    if mode not in ("1", "P", "RGB"):
        try:
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, ...
        except ValueError:
            raise ImageError(f"{label}: colour mode {mode} is not supported") from None
    return np.asarray(image.convert("L"))


def sample_path(name: str) -> Path:
    """Path of a sample image in ``media/``, whatever the working directory.

    >>> sample_path("camera").name
    'camera.png'
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of {sorted(SAMPLES)}")
    return MEDIA_DIR / SAMPLES[name]


def sample_image(name: str) -> np.ndarray:
    """Load a sample image from ``media/`` as a uint8 greyscale matrix.

    >>> sample_image("camera").shape
    (512, 512)
    """
    return load_greyscale(sample_path(name))


# ---------------------------------------------------------------------------
# Normalize
# ---------------------------------------------------------------------------


def to_unit(img: np.ndarray) -> np.ndarray:
    """Scale a ``uint8`` image to ``float32`` values in [0, 1] (divide by 255).

    >>> to_unit(np.array([[0, 255]], dtype=np.uint8))
    array([[0., 1.]], dtype=float32)
    """
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"to_unit expects a uint8 image, got dtype {img.dtype}")
    return img.astype(np.float32) / np.float32(255)


def to_uint8(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Turn values in [0, 1] back into a ``uint8`` image: scale, round, clip.

    Reconstructions can overshoot the range a little; those values are clipped.

    >>> to_uint8(np.array([-0.2, 0.5, 1.3]))
    array([  0, 128, 255], dtype=uint8)
    """
    x = _numpy(x)
    if not np.isfinite(x).all():
        raise ValueError("to_uint8 got NaN or infinite values")
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ---------------------------------------------------------------------------
# Decompose
# ---------------------------------------------------------------------------


class Decomposition(NamedTuple):
    """The thin SVD of an m x n matrix: A = U @ diag(S) @ Vh.

    U is m x r, S holds the r singular values in decreasing order, and Vh is
    r x n, with r = min(m, n). All three are torch tensors on the CPU.
    """

    U: torch.Tensor
    S: torch.Tensor
    Vh: torch.Tensor

    @property
    def shape(self):
        """Shape (m, n) of the decomposed matrix."""
        return (int(self.U.shape[0]), int(self.Vh.shape[1]))

    @property
    def max_rank(self):
        """r = min(m, n): the number of singular values, the largest valid rank."""
        return int(self.S.shape[0])


def compute_device():
    """Where ``svd`` and ``randomized_svd`` compute: CUDA when it is available, else the CPU.

    >>> compute_device().type in ("cpu", "cuda")
    True
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _float_matrix(x, who):
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{who} expects a 2-D matrix, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"{who} expects floats, got {t.dtype}; normalize the image with to_unit first")
    return t


def svd(x: np.ndarray | torch.Tensor) -> Decomposition:
    """Thin SVD with ``torch.linalg.svd(x, full_matrices=False)``.

    Runs on CUDA when it is available; the factors always come back on the CPU
    so NumPy and matplotlib can use them. The dtype (float32 or float64) is kept.

    >>> d = svd(to_unit(sample_image("camera")))
    >>> d.U.shape, d.S.shape, d.Vh.shape
    (torch.Size([512, 512]), torch.Size([512]), torch.Size([512, 512]))
    """
    t = _float_matrix(x, "svd")
    U, S, Vh = torch.linalg.svd(t.to(compute_device()), full_matrices=False)
    return Decomposition(U.cpu(), S.cpu(), Vh.cpu())


def randomized_svd(x, k, *, oversample=10, power_iters=2, seed=0):
    """The k leading singular triplets by the randomized range finder
    (Halko, Martinsson & Tropp 2011), much faster than ``svd`` when k is small.

    Sketch Y = A @ G with a seeded Gaussian G (n x (k + oversample)), turn Y into
    an orthonormal basis Q with QR, sharpen it with ``power_iters`` rounds of
    Q <- qr(A @ qr(A^T @ Q)), then take the SVD of the small matrix Q^T A.
    Runs on CUDA when it is available; the factors come back on the CPU in a
    ``Decomposition`` with k singular values. Taught in notebook 08.

    >>> d = randomized_svd(to_unit(sample_image("camera")), 20)
    >>> d.U.shape, d.S.shape, d.Vh.shape
    (torch.Size([512, 20]), torch.Size([20]), torch.Size([20, 512]))
    """
    A = _float_matrix(x, "randomized_svd")
    m, n = A.shape
    k = check_rank(k, min(m, n))
    for name, value in (("oversample", oversample), ("power_iters", power_iters)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0; got {value!r}")
    width = min(k + int(oversample), m, n)       # columns of the sketch
    A = A.to(compute_device())
    gaussian = torch.randn(n, width, generator=torch.Generator().manual_seed(seed), dtype=A.dtype)
    Q, _ = torch.linalg.qr(A @ gaussian.to(A.device))
    for _ in range(power_iters):                 # re-orthonormalize after every product
        Z, _ = torch.linalg.qr(A.T @ Q)
        Q, _ = torch.linalg.qr(A @ Z)
    U_small, S, Vh = torch.linalg.svd(Q.T @ A, full_matrices=False)
    U = Q @ U_small
    return Decomposition(U[:, :k].cpu(), S[:k].cpu(), Vh[:k].cpu())


def cpu_seconds(work, repeats: int = 3) -> float:
    """The least CPU time of `repeats` calls of ``work()``, on one PyTorch thread, in seconds.

    It counts the work alone. A thread's CPU clock (``time.thread_time``) stops while
    other programs have the core, so other notebooks running beside this one do not
    change it; one thread means no time spent waiting for the others (with several
    threads on a busy machine an SVD can take a hundred times as long). On a quiet
    machine it equals the wall time of a one-thread run. For CPU work: on a GPU the
    work happens elsewhere.

    >>> cpu_seconds(lambda: torch.linalg.svd(torch.eye(64))) < 1
    True
    """
    if not isinstance(repeats, (int, np.integer)) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"repeats must be a whole number >= 1; got {repeats!r}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        for _ in range(repeats):
            start = time.thread_time()
            work()
            times.append(time.thread_time() - start)
    finally:
        torch.set_num_threads(threads)
    return min(times)


def show_signed_images(images: list, titles: list[str], *, width: float = 10.0):
    """Show images that have negative values (eigenfaces, differences) side by side.

    Each panel has its own symmetric scale: red is positive, blue negative and white
    zero. Returns the matplotlib figure. Taught in notebook 09.

    >>> fig = show_signed_images([np.array([[1.0, -0.5], [0.0, 0.25]])], ["signed"])
    """
    import matplotlib.pyplot as plt

    images = [_numpy(im) for im in images]
    if len(images) != len(titles):
        raise ValueError(f"show_signed_images needs one title per image; got {len(images)} images "
                         f"and {len(titles)} titles")
    fig, axes = plt.subplots(1, len(images), figsize=(width, 1.6), squeeze=False)
    for ax, im, title in zip(axes.flat, images, titles, strict=True):
        limit = float(np.abs(im).max()) or 1.0     # an all-zero image: any scale shows white
        ax.imshow(im, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return fig


# ---------------------------------------------------------------------------
# Truncate and reconstruct
# ---------------------------------------------------------------------------


def check_rank(k: int, max_rank: int) -> int:
    """Return ``k`` as an int if 1 <= k <= max_rank, else raise ``ValueError``.

    >>> check_rank(10, 512)
    10
    """
    is_int = isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))
    if not is_int or not 1 <= k <= max_rank:
        raise ValueError(
            f"rank k must be an integer from 1 to {max_rank} (= min(m, n)); got {k!r}"
        )
    return int(k)


def truncate(decomposition: Decomposition, k: int) -> Decomposition:
    """Keep the k largest singular values: the first k columns of U, the first
    k values of S and the first k rows of Vh.

    >>> truncate(svd(np.eye(3)), 2).S
    tensor([1., 1.], dtype=torch.float64)
    """
    k = check_rank(k, decomposition.max_rank)
    U, S, Vh = decomposition
    return Decomposition(U[:, :k], S[:k], Vh[:k, :])


def reconstruct(decomposition: Decomposition, k: int) -> np.ndarray:
    """Rank-k approximation A_k = U_k @ diag(S_k) @ Vh_k, as a NumPy array.

    Values are not clipped: use ``to_uint8`` to make a displayable image.

    >>> A = to_unit(sample_image("camera"))
    >>> bool(np.allclose(reconstruct(svd(A), 512), A, atol=1e-4))
    True
    """
    U, S, Vh = truncate(decomposition, k)
    return ((U * S) @ Vh).numpy()


# ---------------------------------------------------------------------------
# Measure: quality
# ---------------------------------------------------------------------------


def _unit_pair(original, approx):
    """Both images as floats on the [0, 1] scale (uint8 is divided by 255); same shape or ValueError."""
    a, b = (_numpy(x) for x in (original, approx))
    if a.shape != b.shape:
        raise ValueError(f"the two images differ in shape: {a.shape} and {b.shape}")
    return tuple(to_unit(x) if x.dtype == np.uint8 else x.astype(np.float32, copy=False) for x in (a, b))


def psnr(original: np.ndarray, approx: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (scikit-image), on the [0, 1] scale.

    uint8 images are scaled by 1/255 first, so either kind can be passed.
    Identical images give ``inf``.

    >>> img = sample_image("camera")
    >>> round(psnr(img, to_uint8(reconstruct(svd(to_unit(img)), 50))), 1) > 25
    True
    """
    from skimage.metrics import peak_signal_noise_ratio  # imported when first used: it is slow

    a, b = _unit_pair(original, approx)
    with np.errstate(divide="ignore"):
        return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def ssim(original: np.ndarray, approx: np.ndarray) -> float:
    """Structural similarity (scikit-image), 1.0 for identical images.

    >>> img = sample_image("camera")
    >>> ssim(img, img)
    1.0
    """
    from skimage.metrics import structural_similarity

    a, b = _unit_pair(original, approx)
    return float(structural_similarity(a, b, data_range=1.0))


def relative_error(original: np.ndarray, approx: np.ndarray) -> float:
    """Relative Frobenius error ||A - A_k||_F / ||A||_F.

    An all-black ``original`` gives 0.0 if ``approx`` is black too, else ``inf``.

    >>> relative_error(np.ones((2, 2)), np.zeros((2, 2)))
    1.0
    """
    a, b = (x.astype(np.float64) for x in _unit_pair(original, approx))
    norm, error = np.linalg.norm(a), np.linalg.norm(a - b)
    if norm == 0:
        return 0.0 if error == 0 else math.inf
    return float(error / norm)


def cumulative_energy(singular_values: np.ndarray | torch.Tensor) -> np.ndarray:
    """Fraction of the energy sum(sigma^2) kept by the first k values, for each k.

    All zeros (an all-black image) keep everything there is: all ones.

    >>> cumulative_energy([2.0, 1.0])
    array([0.8, 1. ])
    """
    s2 = _numpy(singular_values).astype(np.float64) ** 2
    total = s2.sum()
    return np.cumsum(s2) / total if total > 0 else np.ones_like(s2)


def rank_for_energy(singular_values: np.ndarray | torch.Tensor, fraction: float) -> int:
    """Smallest rank k whose first k singular values hold ``fraction`` of the energy.

    >>> rank_for_energy([2.0, 1.0], 0.8)
    1
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    energy = cumulative_energy(singular_values)
    # Tolerate rounding in the last place so that fraction=1 gives the full rank.
    k = int(np.searchsorted(energy, fraction - 1e-12)) + 1
    return min(k, len(energy))


# ---------------------------------------------------------------------------
# Measure: sizes
# ---------------------------------------------------------------------------

#: Bytes one stored number takes, by how the factors are kept.
BYTES_PER_VALUE = {"float64": 8, "float32": 4, "float16": 2, "uint8": 1}


def stored_values(m: int, n: int, k: int) -> int:
    """Numbers a rank-k SVD stores for an m x n image: k(m + n + 1).

    k columns of U (k*m), k singular values (k) and k rows of Vh (k*n).

    >>> stored_values(512, 512, 10)
    10250
    """
    k = check_rank(k, min(m, n))
    return k * (m + n + 1)


def stored_bytes(m: int, n: int, k: int, dtype: str = "float32") -> int:
    """Bytes for the k(m + n + 1) stored numbers in ``dtype``.

    ``dtype`` is one of ``BYTES_PER_VALUE``: float64, float32, float16, or
    uint8 (8-bit quantized; a real file also keeps a few scale factors).

    >>> stored_bytes(512, 512, 10, "float16")
    20500
    """
    if dtype not in BYTES_PER_VALUE:
        raise ValueError(f"dtype must be one of {list(BYTES_PER_VALUE)}, got {dtype!r}")
    return stored_values(m, n, k) * BYTES_PER_VALUE[dtype]


def break_even_rank(m: int, n: int, bytes_per_value: float = 1) -> float:
    """Rank at which the factors take as many bytes as the uint8 image itself.

    k* = m*n / ((m + n + 1) * bytes_per_value). Below k* the factors are
    smaller than the m*n bytes of pixels; above it they are larger.

    >>> round(break_even_rank(512, 512), 1)
    255.8
    """
    return m * n / ((m + n + 1) * bytes_per_value)


_CODEC_PARAMS = {
    "png": lambda q: [cv2.IMWRITE_PNG_COMPRESSION, 9 if q is None else int(q)],
    "jpeg": lambda q: [cv2.IMWRITE_JPEG_QUALITY, 95 if q is None else int(q)],
    "webp": lambda q: [cv2.IMWRITE_WEBP_QUALITY, 95 if q is None else int(q)],
}


def encode(img: np.ndarray, fmt: str, quality: int | None = None) -> bytes:
    """Encode a uint8 image in memory as PNG, JPEG or WebP with OpenCV.

    ``quality`` is the JPEG/WebP quality (1-100, default 95) or the PNG
    compression level (0-9, default 9).

    >>> encode(sample_image("camera"), "png")[:4]
    b'\\x89PNG'
    """
    fmt = fmt.lower().lstrip(".").replace("jpg", "jpeg")
    if fmt not in _CODEC_PARAMS:
        raise ValueError(f"format must be png, jpeg or webp, got {fmt!r}")
    img = _numpy(img)
    if img.dtype != np.uint8:
        raise ValueError(f"encode expects a uint8 image, got {img.dtype}; use to_uint8 first")
    ok, buf = cv2.imencode("." + fmt, img, _CODEC_PARAMS[fmt](quality))
    if not ok:
        raise ValueError(f"OpenCV could not encode the image as {fmt}")
    return buf.tobytes()


def encoded_size(img: np.ndarray, fmt: str, quality: int | None = None) -> int:
    """Size in bytes of ``img`` encoded as PNG, JPEG or WebP (see ``encode``).

    >>> encoded_size(sample_image("camera"), "jpeg", 50) < 512 * 512
    True
    """
    return len(encode(img, fmt, quality))


# ---------------------------------------------------------------------------
# Store: a real SVD file
# ---------------------------------------------------------------------------


def _quantize(x, axis):
    """Signed 8-bit quantization with one scale per column (axis=0) or row (axis=1)."""
    scale = np.abs(x).max(axis=axis, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    return np.rint(x / scale).astype(np.int8), scale.astype(np.float32)


def save_svd(file: str | os.PathLike | io.IOBase, decomposition: Decomposition, k: int) -> int:
    """Save the rank-k factors, quantized to 8 bits and compressed, as ``.npz``.

    Each column of U and each row of Vh is scaled to [-127, 127] and stored as
    int8 with its float32 scale; the k singular values are float32. The arrays
    are then deflate-compressed (``numpy.savez_compressed``). Returns the
    number of bytes written. ``file`` is a path or a binary file object.

    >>> buf = io.BytesIO()
    >>> save_svd(buf, svd(to_unit(sample_image("camera"))), 20) < 512 * 512
    True
    """
    U, S, Vh = truncate(decomposition, k)
    u_q, u_scale = _quantize(U.numpy(), axis=0)
    vh_q, vh_scale = _quantize(Vh.numpy(), axis=1)
    arrays = dict(U=u_q, U_scale=u_scale, S=S.numpy().astype(np.float32), Vh=vh_q, Vh_scale=vh_scale)
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as f:  # open it ourselves: savez would append ".npz"
            np.savez_compressed(f, **arrays)
        return os.path.getsize(file)
    start = file.tell()
    np.savez_compressed(file, **arrays)
    return file.tell() - start


def load_svd(file: str | os.PathLike | io.IOBase) -> Decomposition:
    """Load factors written by ``save_svd`` as a ``Decomposition`` (float32 tensors).

    >>> buf = io.BytesIO(); _ = save_svd(buf, svd(np.eye(4, dtype=np.float32)), 2)
    >>> _ = buf.seek(0); load_svd(buf).S
    tensor([1., 1.])
    """
    with np.load(file) as z:
        U = z["U"].astype(np.float32) * z["U_scale"]
        Vh = z["Vh"].astype(np.float32) * z["Vh_scale"]
        S = z["S"].astype(np.float32)
    return Decomposition(torch.from_numpy(U), torch.from_numpy(S), torch.from_numpy(Vh))


# Rate against distortion: bytes and PSNR of real files, one point per setting (notebook 05).


def svd_file_curve(picture: np.ndarray, decomposition: Decomposition, ranks) -> tuple:
    """Bytes and PSNR of the SVD file at each rank: its rate-distortion curve.

    Each rank-k file is written into memory with ``save_svd`` and read back with
    ``load_svd``; the PSNR is that of the picture rebuilt from the file.

    Parameters
    ----------
    picture : numpy.ndarray
        The uint8 image whose normalized values ``decomposition`` decomposes.
    decomposition : Decomposition
        Its SVD, from ``svd``.
    ranks : list of int
        The ranks to save.

    Returns
    -------
    tuple
        ``(sizes, psnr, ranks)``: file sizes in bytes and PSNR in dB (NumPy arrays), and the ranks.

    Examples
    --------
    >>> ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))
    >>> sizes, quality, ranks = svd_file_curve(ramp, svd(to_unit(ramp)), [1, 2])
    >>> ranks, bool(quality[0] > 40)
    ([1, 2], True)
    """
    picture = check_image(picture, label="the picture")
    sizes, quality = [], []
    for k in ranks:
        buffer = io.BytesIO()
        sizes.append(save_svd(buffer, decomposition, k))
        buffer.seek(0)
        rebuilt = to_uint8(reconstruct(load_svd(buffer), k))
        quality.append(psnr(picture, rebuilt))
    return np.array(sizes), np.array(quality), list(ranks)


def codec_curve(picture: np.ndarray, fmt: str, settings) -> tuple:
    """Bytes and PSNR of a JPEG, WebP or PNG file at each quality setting.

    Each file is encoded in memory with ``encode`` and decoded again with OpenCV, so
    every point is a real file and the picture it really gives back.

    Parameters
    ----------
    picture : numpy.ndarray
        A uint8 greyscale image.
    fmt : str
        "jpeg", "webp" or "png" (see ``encode``).
    settings : list of int
        Qualities (JPEG, WebP: 1 to 100; WebP above 100 is lossless) or PNG compression levels.

    Returns
    -------
    tuple
        ``(sizes, psnr, settings)``: file sizes in bytes and PSNR in dB (NumPy arrays), and the settings.

    Examples
    --------
    >>> sizes, quality, settings = codec_curve(sample_image("camera"), "jpeg", [10, 90])
    >>> bool(sizes[0] < sizes[1] and quality[0] < quality[1])
    True
    """
    picture = check_image(picture, label="the picture")
    sizes, quality = [], []
    for setting in settings:
        data = encode(picture, fmt, setting)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        sizes.append(len(data))
        quality.append(psnr(picture, decoded))
    return np.array(sizes), np.array(quality), list(settings)


def lossless_sizes(picture: np.ndarray) -> dict[str, int]:
    """Bytes of the picture as lossless PNG (level 9) and lossless WebP, each checked to decode exactly.

    Parameters
    ----------
    picture : numpy.ndarray
        A uint8 greyscale image.

    Returns
    -------
    dict
        ``{"PNG (lossless)": bytes, "WebP lossless": bytes}``.

    Examples
    --------
    >>> sizes = lossless_sizes(sample_image("camera"))
    >>> sizes["WebP lossless"] < sizes["PNG (lossless)"] < 512 * 512
    True
    """
    picture = check_image(picture, label="the picture")
    sizes = {}
    for fmt, label, setting in [("png", "PNG (lossless)", 9), ("webp", "WebP lossless", 101)]:
        data = encode(picture, fmt, setting)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if not np.array_equal(decoded, picture):
            raise RuntimeError(f"{label} did not give back the picture exactly")
        sizes[label] = len(data)
    return sizes


def smallest_reaching(sizes, quality, settings, target: float):
    """The smallest measured file whose PSNR is at least ``target``, and its setting.

    Parameters
    ----------
    sizes, quality, settings
        One curve, as ``svd_file_curve`` or ``codec_curve`` return it.
    target : float
        The PSNR to reach, in dB.

    Returns
    -------
    tuple or None
        ``(bytes, setting)`` of that file, or None if no file of the curve reaches ``target``.

    Examples
    --------
    >>> smallest_reaching(np.array([900, 300, 500]), np.array([40.0, 31.0, 36.0]), [90, 30, 50], 35)
    (500, 50)
    """
    sizes, quality = np.asarray(sizes), np.asarray(quality)
    if not len(sizes) == len(quality) == len(settings):
        raise ValueError(f"sizes, quality and settings must be equally long, got {len(sizes)}, "
                         f"{len(quality)} and {len(settings)}")
    reaching = np.flatnonzero(quality >= target)
    if reaching.size == 0:
        return None
    best = reaching[np.argmin(sizes[reaching])]
    return int(sizes[best]), settings[best]


# ---------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------


def show_images(images: list, titles: list[str] | None = None, *, ncols: int | None = None,
                width: float = 10.0):
    """Show greyscale images side by side at their true aspect ratio.

    uint8 images use the 0-255 scale and floats the 0-1 scale, so that every
    panel shares one grey scale (no per-image contrast stretch). Returns the
    matplotlib figure.

    >>> fig = show_images([sample_image("camera")], ["camera"])
    """
    import matplotlib.pyplot as plt

    images = [_numpy(im) for im in images]
    ncols = ncols or len(images)
    nrows = math.ceil(len(images) / ncols)
    h, w = images[0].shape
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, width * nrows * h / (ncols * w) + 0.35 * nrows), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            im = images[i]
            vmax = 255 if im.dtype == np.uint8 else 1.0
            ax.imshow(im, cmap="gray", vmin=0, vmax=vmax)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def plot_spectrum(singular_values: np.ndarray | torch.Tensor, k: int | None = None, *, ax=None):
    """Plot singular values against their index on a log axis, with a marker at k.

    >>> ax = plot_spectrum(svd(to_unit(sample_image("camera"))).S, k=50)
    """
    import matplotlib.pyplot as plt

    s = _numpy(singular_values)
    if k is not None:
        k = check_rank(k, len(s))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    ax.semilogy(np.arange(1, len(s) + 1), s, lw=1.2)
    if k is not None:
        ax.axvline(k, color="tab:red", lw=1, ls="--")
        ax.plot([k], [s[k - 1]], "o", color="tab:red", label=f"k = {k}")
        ax.legend(loc="upper right")
    ax.set_xlabel("index i")
    ax.set_ylabel("singular value $\\sigma_i$")
    ax.grid(True, which="both", alpha=0.3)
    return ax


def plot_circle_to_ellipse(M, *, axes=None):
    """Draw how a 2 x 2 matrix M = U diag(S) V^T maps the unit circle, one factor at a time.

    Four panels: the circle with v1, v2; after V^T; after diag(S) (a stretch along the
    axes); after U: the ellipse M x, with sigma1 u1 and sigma2 u2 as its half-axes.
    V^T and U are each a rotation (det +1) or a reflection (det -1), and the titles say
    which, for the factors of ``torch.linalg.svd`` in float64. Returns the four matplotlib axes.

    >>> axes = plot_circle_to_ellipse([[2.0, 1.0], [0.5, 1.5]])
    """
    import matplotlib.pyplot as plt

    M = np.asarray(M, dtype=np.float64)
    if M.shape not in ((2, 2), (4,)) or not np.all(np.isfinite(M)):
        raise ValueError(f"plot_circle_to_ellipse needs the 4 finite entries of a 2 x 2 matrix, got {M.tolist()}")
    M = M.reshape(2, 2)
    U, S, Vh = (x.numpy() for x in torch.linalg.svd(torch.from_numpy(M)))

    def turn(factor):
        return "a reflection" if np.linalg.det(factor) < 0 else "a rotation"

    t = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])
    steps = [("unit circle, $v_1$, $v_2$", np.eye(2), Vh.T),
             (f"after $V^T$: {turn(Vh)}", Vh, np.eye(2)),
             ("after $\\Sigma$: a stretch", np.diag(S) @ Vh, np.diag(S)),
             (f"after $U$ ({turn(U)}): the ellipse $Mx$", M, U * S)]
    if axes is None:
        _, axes = plt.subplots(1, 4, figsize=(10, 2.8))
    reach = max(1.0, S[0]) * 1.15
    for ax, (title, T, arrows) in zip(np.ravel(axes), steps, strict=True):
        ax.plot(*(T @ circle), color="grey", lw=1.2)
        for j, colour in enumerate(("tab:red", "tab:blue")):
            ax.annotate("", arrows[:, j], (0, 0), arrowprops={"arrowstyle": "->", "color": colour, "lw": 2})
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        ax.grid(True, alpha=0.3)
    np.ravel(axes)[0].legend(handles=[plt.Line2D([], [], color=c, lw=2) for c in ("tab:red", "tab:blue")],
                   labels=["1st", "2nd"], fontsize=8, loc="lower left")
    return axes


_RATE_STYLE = {"SVD file": ("tab:red", "o"), "JPEG": ("tab:blue", "s"), "WebP": ("tab:green", "^")}


def plot_rate_distortion(curves: dict, lossless: dict | None = None, *, shape=None, psnr_cap: float = 60.0,
                         levels=(), title: str | None = None, ax=None):
    """Plot file size (log axis) against PSNR, one line per method: a rate-distortion plot.

    A PSNR at or above ``psnr_cap`` (an exact file has an infinite PSNR) is drawn on the
    ``psnr_cap`` line, and so are the lossless files, as black markers. No legend is drawn:
    call ``ax.legend()`` on the panel that should have one.

    Parameters
    ----------
    curves : dict
        ``{method: (sizes, psnr, settings)}``, as ``svd_file_curve`` and ``codec_curve`` return them.
    lossless : dict, optional
        ``{label: bytes}`` of exact files, as ``lossless_sizes`` returns them.
    shape : tuple, optional
        The picture's (m, n): draws a dashed line at its m·n bytes of raw pixels.
    psnr_cap : float
        The highest PSNR drawn, in dB.
    levels : sequence of float
        PSNR levels to mark with thin horizontal lines.
    title : str, optional
        The panel's title.
    ax : matplotlib axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    matplotlib axes

    Examples
    --------
    >>> curve = codec_curve(sample_image("camera"), "jpeg", [10, 50, 90])
    >>> ax = plot_rate_distortion({"JPEG": curve}, {"PNG (lossless)": 145_092}, shape=(512, 512))
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.2))
    for index, (method, (sizes, quality, _)) in enumerate(curves.items()):
        color, marker = _RATE_STYLE.get(method, (f"C{index + 3}", "D"))
        ax.plot(sizes, np.minimum(quality, psnr_cap), marker=marker, ms=4, lw=1.2, color=color, label=method)
    for index, (label, size) in enumerate((lossless or {}).items()):
        ax.plot([size], [psnr_cap], marker="*P"[index % 2], ms=11, ls="none", color="black", label=label)
    ax.axhline(psnr_cap, color="grey", ls=":", lw=1)
    ax.text(0.5, psnr_cap - 2.5, f"≥ {psnr_cap:.0f} dB or lossless",
            transform=ax.get_yaxis_transform(), fontsize=8, color="grey", ha="center")
    for level in levels:
        ax.axhline(level, color="grey", lw=0.6, alpha=0.6)
    if shape is not None:
        ax.axvline(shape[0] * shape[1], color="black", lw=1, ls="--", label="raw pixels, m·n bytes")
    ax.set_xscale("log")
    ax.set_ylim(10, psnr_cap + 3)
    ax.set_xlabel("file size (bytes, log scale)")
    ax.set_ylabel("PSNR (dB)")
    if title is not None:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    return ax


def plot_quality_against_rank(ranks, psnrs, ssims, *, predicted=None, marks=()):
    """Plot PSNR and SSIM against the rank k on a log axis, side by side.

    ``predicted`` adds a dashed PSNR curve (dropped where it is infinite, as are infinite
    PSNRs); ``marks`` draws dotted vertical lines at those ranks. Returns the two axes.

    >>> ax_psnr, ax_ssim = plot_quality_against_rank([1, 10, 100], [20.0, 25.0, 33.0], [0.5, 0.6, 0.9])
    """
    import matplotlib.pyplot as plt

    curves = [ranks, psnrs, ssims] + ([] if predicted is None else [predicted])
    ranks, psnrs, ssims, *predicted = (np.asarray(x, dtype=np.float64) for x in curves)
    if any(x.shape != ranks.shape or x.ndim != 1 for x in (psnrs, ssims, *predicted)):
        raise ValueError("ranks, psnrs, ssims (and predicted) must be 1-D and of one length, got shapes "
                         f"{[np.shape(x) for x in curves]}")
    fig, (ax_psnr, ax_ssim) = plt.subplots(1, 2, figsize=(10, 3.6))
    finite = np.isfinite(psnrs)
    ax_psnr.semilogx(ranks[finite], psnrs[finite], "o-", ms=3, label="measured (uint8)")
    if predicted:
        ax_psnr.semilogx(ranks[finite], predicted[0][finite], "--", label="predicted from $\\sigma$")
    ax_psnr.set_ylabel("PSNR (dB)")
    ax_psnr.legend(loc="upper left")
    ax_ssim.semilogx(ranks, ssims, "o-", ms=3, color="tab:green")
    ax_ssim.set_ylabel("SSIM")
    for ax, name in ((ax_psnr, "PSNR"), (ax_ssim, "SSIM")):
        for rank in marks:
            ax.axvline(rank, color="grey", ls=":", lw=1)
        ax.set_xlabel("rank k (log scale)")
        ax.set_title(f"{name} against rank")
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return ax_psnr, ax_ssim


# ---------------------------------------------------------------------------
# Colour
# ---------------------------------------------------------------------------


def load_colour(source: str | os.PathLike | bytes, *, name: str | None = None,
                max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load an image file or uploaded bytes as an RGB ``uint8`` array (m, n, 3).

    The same loader as ``load_greyscale`` (``read_image``), with the same
    checks and clear errors: EXIF orientation is applied, 16-bit images are
    scaled to 8 bits, transparent pixels are laid on white (with a printed
    notice), palette and CMYK images become RGB, a file with several frames
    gives its first frame, and images over ``max_pixels`` are downscaled with a
    printed notice. A greyscale file gives three equal channels.

    >>> load_colour(sample_path("astronaut")).shape
    (512, 512, 3)
    """
    image, notice = read_image(source, name=name, max_pixels=max_pixels, colour=True)
    if notice:
        print(notice)
    return image


def _to_colour(image, label, notices):
    """Convert a decoded Pillow image of any mode to a uint8 RGB array (m, n, 3)."""
    mode = image.mode
    if mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;16"):  # one channel: grey
        return np.repeat(_to_grey(image, label, notices)[:, :, None], 3, axis=2)
    if mode in ("RGBA", "PA", "RGBa") or "transparency" in image.info:
        return np.asarray(_on_white(image, label, notices).convert("RGB"))
    try:
        return np.asarray(image.convert("RGB"))  # palette, CMYK, YCbCr, LAB, ...
    except ValueError:
        raise ImageError(f"{label}: colour mode {mode} is not supported") from None


#: The three ways to compress a colour picture with the SVD (see ``colour_approx``).
COLOUR_SPACES = ("rgb", "ycbcr", "stacked")

#: RGB -> YCbCr, ITU-R BT.601 full range (the JPEG/JFIF convention), on the 0-1
#: scale: Y is the grey of ``load_greyscale``; Cb and Cr are centred on 128/255.
RGB_TO_YCBCR = np.array([
    [0.299, 0.587, 0.114],
    [-0.168736, -0.331264, 0.5],
    [0.5, -0.418688, -0.081312],
])
_CHROMA_OFFSET = np.array([0.0, 128 / 255, 128 / 255])


def _check_rgb(rgb):
    rgb = _numpy(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 array of shape (m, n, 3), got {rgb.dtype} {rgb.shape}")
    return rgb


def rgb_to_ycbcr(rgb):
    """Split an RGB ``uint8`` picture into luma Y and chroma Cb, Cr (float32, 0-1 scale).

    >>> (rgb_to_ycbcr(np.full((1, 1, 3), 255, np.uint8)) * 255).round().tolist()  # white
    [[[255.0, 128.0, 128.0]]]
    """
    ycbcr = to_unit(_check_rgb(rgb)) @ RGB_TO_YCBCR.T.astype(np.float32)
    ycbcr += _CHROMA_OFFSET.astype(np.float32)  # in place: a 4-megapixel picture is 48 MB a copy
    return ycbcr


def ycbcr_to_rgb(ycbcr):
    """Back from Y, Cb, Cr to R, G, B (float32, 0-1 scale, not clipped).

    >>> to_uint8(ycbcr_to_rgb(rgb_to_ycbcr(np.full((1, 1, 3), 200, np.uint8)))).tolist()
    [[[200, 200, 200]]]
    """
    inverse = np.linalg.inv(RGB_TO_YCBCR).astype(np.float32)
    return (_numpy(ycbcr) - _CHROMA_OFFSET.astype(np.float32)) @ inverse.T


def luma(rgb):
    """The luma plane Y of an RGB picture as ``uint8``: the same grey as ``load_greyscale``.

    >>> luma(np.full((1, 1, 3), [255, 0, 0], np.uint8)).tolist()
    [[76]]
    """
    return to_uint8(rgb_to_ycbcr(rgb)[..., 0])


def _check_space(space):
    if space not in COLOUR_SPACES:
        raise ValueError(f"space must be one of {COLOUR_SPACES}, got {space!r}")


def colour_planes(rgb, space="rgb"):
    """The matrices that a colour scheme decomposes, as float32 on the 0-1 scale.

    ``"rgb"``: R, G, B; ``"ycbcr"``: Y, Cb, Cr; ``"stacked"``: one m x 3n
    matrix [R G B], the three channels side by side.

    >>> [p.shape for p in colour_planes(np.zeros((4, 5, 3), np.uint8), "stacked")]
    [(4, 15)]
    """
    _check_space(space)
    rgb = _check_rgb(rgb)
    if space == "ycbcr":
        planes = rgb_to_ycbcr(rgb)
    else:
        planes = to_unit(rgb)
    planes = [np.ascontiguousarray(planes[..., c]) for c in range(3)]
    return [np.hstack(planes)] if space == "stacked" else planes


def colour_svd(rgb, space="rgb"):
    """The SVDs a colour scheme needs: a list of 3 ``Decomposition`` (1 for "stacked").

    >>> [d.shape for d in colour_svd(np.zeros((4, 5, 3), np.uint8), "ycbcr")]
    [(4, 5), (4, 5), (4, 5)]
    """
    return [svd(plane) for plane in colour_planes(rgb, space)]


def _colour_ranks(ranks, space, m, n):
    """Check ``ranks`` for a scheme and return them as a tuple of ints."""
    _check_space(space)
    if space == "stacked":
        return (check_rank(ranks, min(m, 3 * n)),)
    if isinstance(ranks, (tuple, list)):
        if len(ranks) != 3:
            raise ValueError(f"ranks must be one int or 3 of them (one per plane), got {ranks!r}")
        return tuple(check_rank(k, min(m, n)) for k in ranks)
    k = check_rank(ranks, min(m, n))
    return (k, k, k)


def colour_reconstruct(decompositions, ranks, space="rgb"):
    """The RGB ``uint8`` picture rebuilt from ``colour_svd`` factors at the given ranks.

    >>> rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    >>> colour_reconstruct(colour_svd(rgb, "ycbcr"), (6, 3, 3), "ycbcr").shape
    (6, 8, 3)
    """
    m, width = decompositions[0].shape
    n = width // 3 if space == "stacked" else width
    ranks = _colour_ranks(ranks, space, m, n)
    planes = [reconstruct(d, k) for d, k in zip(decompositions, ranks, strict=True)]
    if space == "stacked":
        planes = np.split(planes[0], 3, axis=1)
    planes = np.stack(planes, axis=-1)
    return to_uint8(ycbcr_to_rgb(planes) if space == "ycbcr" else planes)


def colour_approx(rgb, ranks, space="rgb"):
    """Rank-limited colour picture, RGB ``uint8`` of the same shape as ``rgb``.

    ``space``: ``"rgb"`` (an SVD per channel), ``"ycbcr"`` (an SVD of luma
    and of each chroma plane, BT.601 full range as in JPEG) or ``"stacked"``
    (one SVD of the m x 3n matrix [R G B]). ``ranks``: one int for every plane,
    or a 3-tuple (R, G, B or Y, Cb, Cr ranks); one int for "stacked".

    >>> rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    >>> int(np.abs(colour_approx(rgb, 6, "ycbcr").astype(int) - rgb).max()) <= 2
    True
    """
    return colour_reconstruct(colour_svd(rgb, space), ranks, space)


def colour_stored_values(m, n, ranks, space="rgb"):
    """Numbers stored for an m x n colour picture: the sum of k_i(m + n + 1) over
    the three planes, or k(m + 3n + 1) for the single "stacked" SVD.

    >>> colour_stored_values(512, 512, (20, 5, 5), "ycbcr"), colour_stored_values(512, 512, 15, "stacked")
    (30750, 30735)
    """
    ranks = _colour_ranks(ranks, space, m, n)
    if space == "stacked":
        return ranks[0] * (m + 3 * n + 1)
    return sum(k * (m + n + 1) for k in ranks)


def save_colour_svd(file, decompositions, ranks, space="ycbcr"):
    """Save colour factors (from ``colour_svd``) at the given ranks, quantized to
    8 bits and compressed as in ``save_svd``. Returns the bytes written.

    >>> buf = io.BytesIO(); rgb = sample_colour_image("astronaut")
    >>> save_colour_svd(buf, colour_svd(rgb, "ycbcr"), (40, 10, 10)) < rgb.size
    True
    """
    m, width = decompositions[0].shape
    ranks = _colour_ranks(ranks, space, m, width // 3 if space == "stacked" else width)
    arrays = {"space": np.array(space)}
    for i, (d, k) in enumerate(zip(decompositions, ranks, strict=True)):
        U, S, Vh = truncate(d, k)
        arrays[f"U{i}"], arrays[f"U{i}_scale"] = _quantize(U.numpy(), axis=0)
        arrays[f"Vh{i}"], arrays[f"Vh{i}_scale"] = _quantize(Vh.numpy(), axis=1)
        arrays[f"S{i}"] = S.numpy().astype(np.float32)
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as f:
            np.savez_compressed(f, **arrays)
        return os.path.getsize(file)
    start = file.tell()
    np.savez_compressed(file, **arrays)
    return file.tell() - start


def load_colour_svd(file):
    """Read a ``save_colour_svd`` file back as the RGB ``uint8`` picture it holds.

    >>> buf = io.BytesIO(); rgb = sample_colour_image("astronaut")
    >>> _ = save_colour_svd(buf, colour_svd(rgb, "ycbcr"), (40, 10, 10)); _ = buf.seek(0)
    >>> load_colour_svd(buf).shape
    (512, 512, 3)
    """
    with np.load(file) as z:
        space = str(z["space"])
        count = 1 if space == "stacked" else 3
        decompositions = [
            Decomposition(
                torch.from_numpy(z[f"U{i}"].astype(np.float32) * z[f"U{i}_scale"]),
                torch.from_numpy(z[f"S{i}"]),
                torch.from_numpy(z[f"Vh{i}"].astype(np.float32) * z[f"Vh{i}_scale"]),
            )
            for i in range(count)
        ]
    ranks = [d.max_rank for d in decompositions]
    return colour_reconstruct(decompositions, ranks[0] if space == "stacked" else ranks, space)


def sample_colour_image(name):
    """Load a colour sample from ``media/`` as an RGB ``uint8`` array (m, n, 3).

    >>> sample_colour_image("astronaut").shape
    (512, 512, 3)
    """
    return load_colour(sample_path(name))


def show_crops_at_1to1(pictures, titles, rows, cols, *, dpi=100):
    """Show the same crop of several pictures side by side, one image pixel per screen pixel.

    ``pictures``: ``uint8`` images of one size, grey (m, n) or RGB (m, n, 3);
    ``rows`` and ``cols``: slices that pick the crop. The crops are placed
    unscaled, 10 pixels apart, with 30 pixels above them for the titles, so
    that neither the figure nor the PNG that Jupyter shows resamples a pixel;
    at 100 % zoom one image pixel is one screen pixel. Returns the figure.

    >>> fig = show_crops_at_1to1([sample_colour_image("astronaut")], ["original"], slice(0, 64), slice(0, 64))
    """
    import matplotlib.pyplot as plt
    from matplotlib.transforms import IdentityTransform

    pictures = [_numpy(p) for p in pictures]
    if not pictures or len(pictures) != len(titles):
        raise ValueError(f"expected one title per picture, got {len(pictures)} pictures and {len(titles)} titles")
    if any(p.dtype != np.uint8 or p.ndim < 2 or p.shape[2:] not in ((), (3,)) or p.shape[:2] != pictures[0].shape[:2]
           for p in pictures):
        raise ValueError("the pictures must be uint8 images of one size, (m, n) grey or (m, n, 3) RGB: got "
                         + ", ".join(f"{p.dtype} {p.shape}" for p in pictures))
    crops = [np.dstack([p[rows, cols]] * 3) if p.ndim == 2 else p[rows, cols] for p in pictures]   # grey as RGB
    h, w = crops[0].shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"the crop rows {rows}, columns {cols} is empty for pictures of shape {pictures[0].shape}")
    gap, top = 10, 30                                     # pixels between crops, and above them
    width, height = len(crops) * (w + gap), h + top       # the whole figure, in pixels
    # inches x dpi must not fall just short of a whole pixel in floating point (414 / 100 * 100 does)
    inches = [np.nextafter(px / dpi, np.inf) if px / dpi * dpi < px else px / dpi for px in (width, height)]
    fig = plt.figure(figsize=inches, dpi=dpi)
    fig.add_axes((0, 0, 1, 1)).axis("off")   # an empty axes: Jupyter shows no figure without one
    for i, (crop, title) in enumerate(zip(crops, titles, strict=True)):
        # figimage puts the pixels at whole-pixel offsets, unscaled: no resampling at all. The
        # titles are placed in the same pixels, so a cropped PNG (Jupyter's) moves neither.
        fig.figimage(crop, xo=i * (w + gap), yo=0, origin="upper")
        fig.text(i * (w + gap) + w / 2, h + 4, title, ha="center", va="bottom", fontsize=8,
                 transform=IdentityTransform())
    return fig


# ---------------------------------------------------------------------------
# The explorer lives in its own package, explorer/; helpers.RankExplorer and the
# other names below are looked up there on first use (so importing helpers does
# not import the widget code, and there is no import cycle).
# ---------------------------------------------------------------------------

_EXPLORER_NAMES = (
    "RankExplorer", "RankCache", "ERROR_GAIN", "QUICK_RANKS", "EXPLORER_THREADS",
    "CHECKPOINT_BUDGET", "SETTLE_SECONDS", "ColourExplorer",
)


def __getattr__(name):
    if name in _EXPLORER_NAMES:
        import explorer

        return getattr(explorer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPLORER_NAMES])
