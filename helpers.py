"""Shared code for the SVD image-compression notebooks.

The sections follow the order of the series: load, normalize, decompose,
truncate and reconstruct, measure (quality and sizes), store, plot, widgets.
Every function takes and returns plain arrays (or the small ``Decomposition`` container),
so each step can be checked on its own.

>>> import helpers
>>> img = helpers.sample_image("camera")      # uint8, 512 x 512
>>> A = helpers.to_unit(img)                  # float32 in [0, 1]
>>> A10 = helpers.reconstruct(helpers.svd(A), 10)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import html
import io
import math
import operator
import os
import struct
import time
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = [
    "ImageError", "MAX_PIXELS", "MAX_DECODE_PIXELS", "SAMPLES",
    "load_greyscale", "sample_path", "sample_image",
    "to_unit", "to_uint8",
    "Decomposition", "svd", "check_rank", "truncate", "reconstruct",
    "psnr", "ssim", "relative_error", "cumulative_energy", "rank_for_energy",
    "BYTES_PER_VALUE", "stored_values", "stored_bytes", "break_even_rank",
    "encode", "encoded_size", "save_svd", "load_svd",
    "show_images", "plot_spectrum",
    "QUICK_RANKS", "ERROR_GAIN", "COMPRESS_PIXELS", "EXPLORER_THREADS", "RankCache", "RankExplorer",
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

# Formats people try that Pillow cannot read, recognised by their first bytes.
_UNSUPPORTED_SIGNATURES = [
    (b"%PDF", "a PDF document"),
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an XML/SVG file"),
    (b"8BPS", "a Photoshop (PSD) file"),
]
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif")


class ImageError(ValueError):
    """A file or upload that cannot be used as a greyscale image.

    The message names the file and says what is wrong with it.

    >>> try:
    ...     load_greyscale(b"hello")
    ... except ImageError as err:
    ...     print(err)
    the uploaded data: not an image (PNG, JPEG, GIF, BMP, TIFF and WebP can be read)
    """


def load_greyscale(source, *, name=None, max_pixels=MAX_PIXELS):
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
    label, data = _read_source(source, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError(f"{label}: {_describe_unreadable(data)}") from None
        except Image.DecompressionBombError as exc:
            raise ImageError(
                f"{label}: declares far more pixels than this loader will decode "
                f"(at most {MAX_DECODE_PIXELS / 1e6:.0f} megapixels; Pillow says: {exc})"
            ) from None
        except Exception as exc:  # Pillow raises many types for damaged headers
            raise ImageError(f"{label}: damaged image header ({exc})") from None

        width, height = declared = image.size
        if image.format == "JPEG" and width * height > max_pixels:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: far less memory.
            scale = math.sqrt(max_pixels / (width * height))
            image.draft("L", (math.ceil(width * scale), math.ceil(height * scale)))
        if image.size[0] * image.size[1] > MAX_DECODE_PIXELS:
            raise ImageError(
                f"{label}: declares {width} x {height} pixels "
                f"({width * height / 1e6:.0f} megapixels); this loader refuses to decode more "
                f"than {MAX_DECODE_PIXELS / 1e6:.0f} megapixels. Shrink the image first."
            )
        frames = getattr(image, "n_frames", 1)
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
            grey = _to_grey(image, label)
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
            raise ImageError(f"{label}: the file is truncated or damaged ({exc})") from None

    if frames > 1:
        print(f"Notice: {label} has {frames} frames; using the first one.")
    height, width = grey.shape
    if min(height, width) < _MIN_SIDE:
        raise ImageError(
            f"{label}: the image is {width} x {height} pixels; SVD compression needs "
            f"at least {_MIN_SIDE} pixels in each direction"
        )
    if width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        new_w, new_h = max(_MIN_SIDE, int(width * scale)), max(_MIN_SIDE, int(height * scale))
        grey = cv2.resize(grey, (new_w, new_h), interpolation=cv2.INTER_AREA)
    if grey.shape != (height, width) or grey.size < declared[0] * declared[1]:
        print(
            f"Notice: {label} is {declared[0]} x {declared[1]} ({declared[0] * declared[1] / 1e6:.1f} "
            f"megapixels), over the {max_pixels / 1e6:.1f}-megapixel cap; downscaled to "
            f"{grey.shape[1]} x {grey.shape[0]}."
        )
    # Pillow's arrays are read-only; students expect to be able to edit pixels.
    return np.array(grey, order="C", copy=True)


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
        raise TypeError(f"load_greyscale takes a path or bytes, not {type(source).__name__}")
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
    return "not an image (PNG, JPEG, GIF, BMP, TIFF and WebP can be read)"


def _to_grey(image, label):
    """Convert a decoded Pillow image of any mode to a uint8 greyscale array."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise ImageError(f"{label}: 32-bit integer pixels are not supported")
        return np.rint(values.astype(np.float32) / 257).astype(np.uint8)  # 65535 -> 255
    if mode == "F":
        raise ImageError(f"{label}: floating-point pixels are not supported; save it as 8 or 16 bits")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            print(f"Notice: {label} has transparent pixels; they are shown on white.")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("L"))
    if mode == "L":
        return np.asarray(image)
    if mode not in ("1", "P", "RGB"):
        try:
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, ...
        except ValueError:
            raise ImageError(f"{label}: colour mode {mode} is not supported") from None
    return np.asarray(image.convert("L"))


def sample_path(name):
    """Path of a sample image in ``media/``, whatever the working directory.

    >>> sample_path("camera").name
    'camera.png'
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of {sorted(SAMPLES)}")
    return MEDIA_DIR / SAMPLES[name]


def sample_image(name):
    """Load a sample image from ``media/`` as a uint8 greyscale matrix.

    >>> sample_image("camera").shape
    (512, 512)
    """
    return load_greyscale(sample_path(name))


# ---------------------------------------------------------------------------
# Normalize
# ---------------------------------------------------------------------------


def to_unit(img):
    """Scale a ``uint8`` image to ``float32`` values in [0, 1] (divide by 255).

    >>> to_unit(np.array([[0, 255]], dtype=np.uint8))
    array([[0., 1.]], dtype=float32)
    """
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"to_unit expects a uint8 image, got dtype {img.dtype}")
    return img.astype(np.float32) / np.float32(255)


def to_uint8(x):
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


def svd(x):
    """Thin SVD with ``torch.linalg.svd(x, full_matrices=False)``.

    Runs on CUDA when it is available; the factors always come back on the CPU
    so NumPy and matplotlib can use them. The dtype (float32 or float64) is kept.

    >>> d = svd(to_unit(sample_image("camera")))
    >>> d.U.shape, d.S.shape, d.Vh.shape
    (torch.Size([512, 512]), torch.Size([512]), torch.Size([512, 512]))
    """
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"svd expects a 2-D matrix, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"svd expects floats, got {t.dtype}; normalize the image with to_unit first")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    U, S, Vh = torch.linalg.svd(t.to(device), full_matrices=False)
    return Decomposition(U.cpu(), S.cpu(), Vh.cpu())


# ---------------------------------------------------------------------------
# Truncate and reconstruct
# ---------------------------------------------------------------------------


def check_rank(k, max_rank):
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


def truncate(decomposition, k):
    """Keep the k largest singular values: the first k columns of U, the first
    k values of S and the first k rows of Vh.

    >>> truncate(svd(np.eye(3)), 2).S
    tensor([1., 1.], dtype=torch.float64)
    """
    k = check_rank(k, decomposition.max_rank)
    U, S, Vh = decomposition
    return Decomposition(U[:, :k], S[:k], Vh[:k, :])


def reconstruct(decomposition, k):
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


def _unit_float(img):
    img = _numpy(img)
    return to_unit(img) if img.dtype == np.uint8 else img.astype(np.float32, copy=False)


def psnr(original, approx):
    """Peak signal-to-noise ratio in dB (scikit-image), on the [0, 1] scale.

    uint8 images are scaled by 1/255 first, so either kind can be passed.
    Identical images give ``inf``.

    >>> img = sample_image("camera")
    >>> round(psnr(img, to_uint8(reconstruct(svd(to_unit(img)), 50))), 1) > 25
    True
    """
    a, b = _unit_float(original), _unit_float(approx)
    with np.errstate(divide="ignore"):
        return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def ssim(original, approx):
    """Structural similarity (scikit-image), 1.0 for identical images.

    >>> img = sample_image("camera")
    >>> ssim(img, img)
    1.0
    """
    a, b = _unit_float(original), _unit_float(approx)
    return float(structural_similarity(a, b, data_range=1.0))


def relative_error(original, approx):
    """Relative Frobenius error ||A - A_k||_F / ||A||_F.

    >>> relative_error(np.ones((2, 2)), np.zeros((2, 2)))
    1.0
    """
    a = _unit_float(original).astype(np.float64)
    b = _unit_float(approx).astype(np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def cumulative_energy(singular_values):
    """Fraction of the energy sum(sigma^2) kept by the first k values, for each k.

    >>> cumulative_energy([2.0, 1.0])
    array([0.8, 1. ])
    """
    s2 = _numpy(singular_values).astype(np.float64) ** 2
    return np.cumsum(s2) / s2.sum()


def rank_for_energy(singular_values, fraction):
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


def stored_values(m, n, k):
    """Numbers a rank-k SVD stores for an m x n image: k(m + n + 1).

    k columns of U (k*m), k singular values (k) and k rows of Vh (k*n).

    >>> stored_values(512, 512, 10)
    10250
    """
    k = check_rank(k, min(m, n))
    return k * (m + n + 1)


def stored_bytes(m, n, k, dtype="float32"):
    """Bytes for the k(m + n + 1) stored numbers in ``dtype``.

    ``dtype`` is one of ``BYTES_PER_VALUE``: float64, float32, float16, or
    uint8 (8-bit quantized; a real file also keeps a few scale factors).

    >>> stored_bytes(512, 512, 10, "float16")
    20500
    """
    if dtype not in BYTES_PER_VALUE:
        raise ValueError(f"dtype must be one of {list(BYTES_PER_VALUE)}, got {dtype!r}")
    return stored_values(m, n, k) * BYTES_PER_VALUE[dtype]


def break_even_rank(m, n, bytes_per_value=1):
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


def encode(img, fmt, quality=None):
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


def encoded_size(img, fmt, quality=None):
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


def save_svd(file, decomposition, k):
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


def load_svd(file):
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


# ---------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------


def show_images(images, titles=None, ncols=None, width=10.0):
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


def plot_spectrum(singular_values, k=None, ax=None):
    """Plot singular values against their index on a log axis, with a marker at k.

    >>> ax = plot_spectrum(svd(to_unit(sample_image("camera"))).S, k=50)
    """
    import matplotlib.pyplot as plt

    s = _numpy(singular_values)
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


# ---------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------

#: Ranks of the explorer's quick buttons: the ranks the original project showed.
QUICK_RANKS = (500, 250, 100, 50, 25, 10)

#: The explorer's error view shows |A - A_k| on the 0-255 scale multiplied by
#: this gain and clipped: black is no error, white is off by 255 / 4 = 64 grey
#: levels (a quarter of the range) or more. The scale is fixed, so the error
#: image fades as k grows.
ERROR_GAIN = 4

#: Memory the explorer may spend on cached partial sums A_c (see ``RankCache``).
CHECKPOINT_BUDGET = 256 * 2**20

#: Seconds the slider must rest before the explorer computes SSIM (slow on big images).
SETTLE_SECONDS = 0.3

#: PyTorch threads the explorer uses for its SVD and products. One thread is about
#: as fast for the slider's small products, and far more robust when other
#: processes compete for the cores (Binder, a busy laptop): measured here with the
#: machine busy, 2 threads took 3 to 25 s for SVDs that 1 thread did in 0.2 to 2 s,
#: and 20 ms instead of 4 ms per slider move at 1 megapixel.
EXPLORER_THREADS = 1

#: The explorer sends its pictures as lossless PNG. Up to this many pixels they
#: are compressed (zlib level 1, "up" filter, Huffman only: about 7 ms per
#: megapixel for files about half the raw size); larger pictures are sent
#: uncompressed ("stored" PNG, 1 byte per pixel, 0.5 ms at 1 megapixel), so that
#: a move stays within one 60 Hz frame. bench/bench_slider.py compares the options.
COMPRESS_PIXELS = 600_000

_PNG_COMPRESSED = [
    cv2.IMWRITE_PNG_COMPRESSION, 1,
    cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
    cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
]
_PNG_STORED = [cv2.IMWRITE_PNG_COMPRESSION, 0, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
# For the spectrum plot (mostly flat colour): level 1 without filtering, ~1 ms, ~25 kB.
_PNG_PLOT = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def _preview_png(img, params=None):
    """Encode a uint8 image (grey or BGR) as a lossless PNG, fast (see ``COMPRESS_PIXELS``)."""
    if params is None:
        params = _PNG_COMPRESSED if img.shape[0] * img.shape[1] <= COMPRESS_PIXELS else _PNG_STORED
    ok, buf = cv2.imencode(".png", img, params)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 array as PNG
        raise ValueError("OpenCV could not encode the picture as PNG")
    return buf.tobytes()


class _torch_threads:
    """Run a block with ``n`` PyTorch threads, then restore the previous number."""

    def __init__(self, n=EXPLORER_THREADS):
        self.n = n

    def __enter__(self):
        self.before = torch.get_num_threads()
        if self.n != self.before:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.before:
            torch.set_num_threads(self.before)


def _checkpoint_spacing(m, n, r, budget=CHECKPOINT_BUDGET):
    """Ranks between cached partial sums: at least 32, more when memory is short.

    1000 x 1000 gives 32 (32 sums, 128 MB); 2048 x 2048 gives 128 (16 sums, 256 MB).
    """
    most = max(1, budget // (4 * m * n))  # float32 partial sums that fit the budget
    return max(32, math.ceil(r / most))


class RankCache:
    """The SVD of one image, arranged so that any rank-k approximation is quick.

    A plain ``(U[:, :k] * S[:k]) @ Vh[:k]`` costs 2·m·n·k operations: about 2
    GFLOP for a 1-megapixel image at k = 1000, far too slow for a slider. The
    cache keeps partial sums A_c = sigma_1 u_1 v_1^T + ... + sigma_c u_c v_c^T
    (float32) every ``spacing`` ranks and builds A_k from the nearest one by
    adding or subtracting at most spacing/2 rank-one layers in one small matmul.
    It also keeps the running sums of sigma^2 for the energy and error readouts.
    ``spacing`` overrides the spacing chosen from ``budget`` (bytes).

    >>> cache = RankCache(sample_image("camera"))
    >>> bool(np.allclose(cache.reconstruction(50), reconstruct(cache.decomposition, 50), atol=1e-5))
    True
    """

    def __init__(self, img, budget=CHECKPOINT_BUDGET, spacing=None):
        img = _numpy(img)
        if img.dtype != np.uint8 or img.ndim != 2:
            raise ValueError(f"RankCache expects a 2-D uint8 image, got {img.dtype} with shape {img.shape}")
        if min(img.shape) < _MIN_SIDE:
            raise ValueError(f"the image is {img.shape[1]} x {img.shape[0]} pixels; SVD compression "
                             f"needs at least {_MIN_SIDE} pixels in each direction")
        with _torch_threads():
            self._build(img, budget, spacing)

    def _build(self, img, budget, spacing):
        start = _now()
        self.image = np.ascontiguousarray(img)
        self.shape = (m, n) = img.shape
        U, S, Vh = svd(to_unit(self.image))
        self.decomposition = Decomposition(U, S, Vh)
        self.max_rank = r = int(S.shape[0])
        self.svd_seconds = _now() - start
        self._US = (U * S).contiguous()  # column i is sigma_i u_i
        self._Vh = Vh.contiguous()
        self.spacing = int(spacing) if spacing else _checkpoint_spacing(m, n, r, budget)
        ranks = [*range(self.spacing, r, self.spacing), r]
        self._checkpoints = {}
        total, previous = torch.zeros(m, n), 0
        for c in ranks:
            total = torch.addmm(total, self._US[:, previous:c], self._Vh[previous:c])
            self._checkpoints[c] = total
            previous = c
        self._checkpoint_ranks = np.array([0, *ranks])
        self._out = torch.empty(m, n)
        s2 = S.double().numpy() ** 2
        self._total = float(s2.sum())
        # energy[k - 1]: fraction kept by rank k (an all-black image has none to lose)
        self.energy = cumulative_energy(S) if self._total > 0 else np.ones(r)
        self._tail = np.append(np.cumsum(s2[::-1])[::-1], 0.0)  # _tail[k] = sum of sigma_i^2, i > k
        self.seconds = _now() - start

    @property
    def checkpoint_ranks(self):
        """The ranks c whose partial sums A_c are cached."""
        return [int(c) for c in self._checkpoint_ranks[1:]]

    @property
    def nbytes(self):
        """Bytes held: image, factors, partial sums, work buffer and sums of sigma^2."""
        tensors = [self._US, self._Vh, self.decomposition.U, self.decomposition.S, self._out,
                   *self._checkpoints.values()]
        return (self.image.nbytes + sum(t.numel() * t.element_size() for t in tensors)
                + self._tail.nbytes + self.energy.nbytes)

    def _approx(self, k):
        """A_k as a float32 tensor; it may be a cached sum or the work buffer, so never modify it."""
        k = check_rank(k, self.max_rank)
        c = int(self._checkpoint_ranks[np.abs(self._checkpoint_ranks - k).argmin()])
        if c == k:
            return self._checkpoints[c]
        out = self._out
        with _torch_threads():
            if c == 0:
                torch.mm(self._US[:, :k], self._Vh[:k], out=out)
            elif k > c:  # A_k = A_c + layers c+1 .. k
                torch.addmm(self._checkpoints[c], self._US[:, c:k], self._Vh[c:k], out=out)
            else:  # A_k = A_c - layers k+1 .. c
                torch.addmm(self._checkpoints[c], self._US[:, k:c], self._Vh[k:c], alpha=-1, out=out)
        return out

    def reconstruction(self, k):
        """Rank-k approximation as a new float32 NumPy array (like ``reconstruct``)."""
        return self._approx(k).numpy().copy()

    def picture(self, k):
        """The displayable rank-k picture, ``to_uint8(A_k)``, as a new uint8 array."""
        return self._to_picture(self._approx(k), np.empty(self.shape, np.uint8))

    def _to_picture(self, approx, out):
        """to_uint8(approx) written into ``out``, with no large temporaries (they cost
        page faults: 16 MB each at 4 megapixels). Uses the work buffer as scratch."""
        scaled = self._out.numpy()  # may be approx itself: the steps work in place
        np.multiply(approx.numpy(), np.float32(255), out=scaled)  # the same steps as to_uint8
        np.rint(scaled, out=scaled)
        np.clip(scaled, 0, 255, out=scaled)
        np.copyto(out, scaled, casting="unsafe")
        return out

    def relative_error(self, k):
        """||A - A_k||_F / ||A||_F from the tail energy: sqrt(sum of sigma_i^2 for i > k / total)."""
        k = check_rank(k, self.max_rank)
        return math.sqrt(self._tail[k] / self._total) if self._total > 0 else 0.0


_now = time.perf_counter


class _SpectrumPanel:
    """Two small plots (singular values on a log axis, cumulative energy) with a
    marker at k. The figure is drawn once; a move restores the cached background
    and redraws only the marker artists (blitting), then encodes a PNG."""

    def __init__(self, singular_values, energy, size=(4.6, 3.6), dpi=100):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        s = _numpy(singular_values).astype(np.float64)
        floor = s[0] * 1e-7 if s[0] > 0 else 1e-7
        self._s = np.maximum(s, floor)  # exact zeros cannot go on a log axis
        self._energy = np.asarray(energy) * 100
        ranks = np.arange(1, len(s) + 1)
        self.figure = fig = Figure(figsize=size, dpi=dpi, layout="constrained")
        self._canvas = FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.semilogy(ranks, self._s, lw=1.2, color="tab:blue")
        top.set_ylabel("singular value σᵢ", fontsize=8)
        bottom.plot(ranks, self._energy, lw=1.2, color="tab:green")
        bottom.set_ylabel("energy kept (%)", fontsize=8)
        bottom.set_xlabel("rank k (index i)", fontsize=8)
        for ax in (top, bottom):
            ax.grid(True, which="major", alpha=0.3)
            ax.tick_params(labelsize=7)
        red = dict(color="tab:red", animated=True)
        self._artists = [
            top.axvline(1, lw=1, ls="--", **red),
            top.plot([1], [self._s[0]], "o", ms=5, **red)[0],
            bottom.axvline(1, lw=1, ls="--", **red),
            bottom.plot([1], [self._energy[0]], "o", ms=5, **red)[0],
            top.text(0.97, 0.92, "", transform=top.transAxes, ha="right", va="top", fontsize=9, **red),
            bottom.text(0.97, 0.1, "", transform=bottom.transAxes, ha="right", va="bottom", fontsize=9,
                        **red),
        ]
        self._canvas.draw()
        self._background = self._canvas.copy_from_bbox(fig.bbox)

    def draw(self, k):
        """Move the marker to rank k and return the panel as PNG bytes."""
        vline_top, dot_top, vline_bottom, dot_bottom, label_top, label_bottom = self._artists
        vline_top.set_xdata([k, k])
        vline_bottom.set_xdata([k, k])
        dot_top.set_data([k], [self._s[k - 1]])
        dot_bottom.set_data([k], [self._energy[k - 1]])
        label_top.set_text(f"k = {k}")
        label_bottom.set_text(f"{self._energy[k - 1]:.2f} %")
        self._canvas.restore_region(self._background)
        for artist in self._artists:
            self.figure.draw_artist(artist)
        rgba = np.asarray(self._canvas.buffer_rgba())
        return _preview_png(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR), _PNG_PLOT)


def _capture_notices(load, *args, **kwargs):
    """Call a loader and return (result, what it printed), e.g. a downscale notice."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = load(*args, **kwargs)
    return result, printed.getvalue().strip()


def _fmt_seconds(seconds):
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _fmt_bytes(n):
    return f"{n:,} B" if n < 10_000 else f"{n / 1000:,.1f} kB" if n < 10_000_000 else f"{n / 1e6:,.1f} MB"


def _readouts_html(r):
    """The explorer's readout table, rendered from its ``readouts`` dict."""
    psnr_text = "∞ (identical)" if math.isinf(r["psnr"]) else f"{r['psnr']:.2f} dB"
    ssim_text = "…" if r["ssim"] is None else f"{r['ssim']:.4f}"
    rows = [
        ("rank k", f"{r['k']} of {r['max_rank']}"),
        ("values stored k(m+n+1)", f"{r['stored_values']:,}"),
        ("bytes as uint8 / float32",
         f"{_fmt_bytes(r['bytes_uint8'])} / {_fmt_bytes(r['bytes_float32'])}"),
        ("original m·n (uint8 pixels)", _fmt_bytes(r["original_bytes"])),
        ("compression ratio uint8 / float32",
         f"{r['ratio_uint8']:.2f}× / {r['ratio_float32']:.2f}×"),
        ("break-even rank uint8 / float32",
         f"{r['break_even_uint8']:.1f} / {r['break_even_float32']:.1f}"),
        ("energy kept", f"{100 * r['energy']:.3f} %"),
        ("relative error ‖A−A<sub>k</sub>‖/‖A‖", f"{r['relative_error']:.4f}"),
        ("PSNR (shown picture)", psnr_text),
        ("SSIM (shown picture)", ssim_text),
    ]
    cells = "".join(
        f"<tr><td style='padding:1px 8px 1px 0'>{name}</td>"
        f"<td style='text-align:right;font-family:monospace'>{value}"
        f"</td></tr>"
        for name, value in rows
    )
    return f"<table style='font-size:12px;line-height:1.35'>{cells}</table>"


class RankExplorer:
    """Interactive rank explorer: a rank slider with the live reconstruction,
    the error image, the spectrum with a marker at k and a table of readouts.

    Display the object (last line of a cell) to show it; ``explorer.widget`` is
    the ipywidgets box. With ``sources=True`` a dropdown picks a sample and an
    upload button loads your own image (through ``load_greyscale``, so large
    images are downscaled and bad files give a clear message in the status line).
    ``sources=False`` gives the compact version: rank controls, pictures,
    spectrum and readouts.

    How it stays fast: the SVD is computed once per image (``RankCache``); a
    slider move rebuilds A_k from a cached partial sum with one small matmul,
    converts it with ``to_uint8``, encodes a lossless PNG with OpenCV and swaps
    the bytes of an ``ipywidgets.Image`` in place. The spectrum marker is
    blitted onto a cached figure. While you drag, moves that arrive during a
    render are merged: only the latest rank is drawn. SSIM, the one slow
    readout, is computed once the slider has rested for ``SETTLE_SECONDS``.

    Parameters
    ----------
    image : uint8 2-D array, optional
        The picture to explore; if omitted, the sample named ``sample``.
    sample : str
        Sample to start with (a key of ``SAMPLES``) when ``image`` is None.
    rank : int
        Starting rank, clamped to 1..min(m, n).
    sources : bool
        Show the sample dropdown and the upload button.

    >>> explorer = RankExplorer(sample="camera", rank=20)
    >>> explorer.set_rank(30)
    30
    >>> explorer.readouts["k"], explorer.readouts["stored_values"]
    (30, 30750)
    """

    #: Renders start at least this far apart while you drag (60 per second at most).
    FRAME_SECONDS = 1 / 60

    VIEWS = (("reconstruction", "reconstruction"), (f"error ×{ERROR_GAIN}", "error"), ("original", "original"))

    def __init__(self, image=None, sample="camera", rank=50, sources=True):
        import ipywidgets as widgets

        self.sources = sources
        self.renders = 0  # how many pictures were drawn (coalescing merges requests)
        self.timings = {}  # milliseconds per stage of the last render
        self.readouts = {}
        self._quiet = 0
        self._pending = False
        self._requested = None
        self._settle_handle = None
        self._last_render = -math.inf  # loop time when the last slider render started
        self._shown = None  # rank whose picture is on screen
        self._recon = None  # its uint8 picture
        self.cache = None

        if image is not None:
            img, label, notice = self._fit(image), "your image", ""
        else:
            (img, notice), label = _capture_notices(sample_image, sample), sample
        cache = RankCache(img)
        r = cache.max_rank
        rank = min(max(int(rank), 1), r)

        full = widgets.Layout
        self.slider = widgets.IntSlider(
            value=rank, min=1, max=r, step=1, description="rank k", continuous_update=True,
            layout=full(flex="1 1 auto", min_width="260px"),
        )
        self.rank_box = widgets.BoundedIntText(
            value=rank, min=1, max=r, description="type k", layout=full(width="150px"),
            style={"description_width": "48px"},
        )
        widgets.link((self.slider, "value"), (self.rank_box, "value"))
        self.quick = widgets.HBox(layout=full(flex_flow="row wrap"))
        self.view = widgets.ToggleButtons(
            options=self.VIEWS, value="reconstruction", style={"button_width": "128px"},
            tooltips=["the rank-k approximation A_k",
                      f"|A - A_k| x {ERROR_GAIN}: black = exact, white = off by 64+ grey levels",
                      "the image you started from"],
        )
        # width 100% and height auto keep the aspect ratio; object-fit contain keeps it
        # too when max-height caps a tall picture.
        self.picture = widgets.Image(
            format="png", layout=full(width="100%", height="auto", max_height="80vh", object_fit="contain"))
        self.caption = widgets.HTML()
        self.spectrum = widgets.Image(
            format="png", layout=full(width="100%", height="auto", object_fit="contain"))
        self.table = widgets.HTML()
        self.status = widgets.HTML()

        rows = []
        if sources:
            self.sample_picker = widgets.Dropdown(
                options=list(SAMPLES), value=sample if image is None else None, description="sample",
                layout=full(width="220px"),
            )
            self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload image")
            self.sample_picker.observe(self._on_sample, "value")
            self.upload.observe(self._on_upload, "value")
            rows.append(widgets.HBox([self.sample_picker, self.upload],
                                     layout=full(flex_flow="row wrap", align_items="center")))
        else:
            self.sample_picker = self.upload = None
        rows += [
            self.status,
            widgets.HBox([self.slider, self.rank_box], layout=full(width="100%", align_items="center")),
            widgets.HBox([widgets.Label("quick ranks:"), self.quick, self.view],
                         layout=full(flex_flow="row wrap", align_items="center")),
            widgets.HBox(
                [widgets.VBox([self.picture, self.caption], layout=full(flex="3 1 360px", min_width="0")),
                 widgets.VBox([self.spectrum, self.table], layout=full(flex="2 1 300px", max_width="480px"))],
                layout=full(width="100%", flex_flow="row wrap", align_items="flex-start"),
            ),
        ]
        self.widget = widgets.VBox(rows, layout=full(width="100%"))
        # CSS classes, so that browser tests (and custom styles) can find the parts
        for part, name in [(self.widget, "explorer"), (self.slider, "slider"), (self.rank_box, "rank-box"),
                           (self.picture, "picture"), (self.spectrum, "spectrum"), (self.table, "readouts"),
                           (self.status, "status"), (self.view, "view")]:
            part.add_class(f"rank-explorer-{name}" if name != "explorer" else "rank-explorer")

        self.slider.observe(self._on_rank, "value")
        self.view.observe(lambda change: self._redraw_picture(), "value")
        self._install(cache, label, notice)

    # -- showing it -----------------------------------------------------------

    def __repr__(self):
        m, n = self.cache.shape
        return f"RankExplorer({self.label}: {n} x {m} pixels, rank {self.slider.value} of {self.cache.max_rank})"

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)  # short and stable (the box's repr lists every child)
        return bundle

    def close(self):
        """Close the widgets and drop the cached SVD."""
        self._cancel_settle()
        for w in (self.slider, self.rank_box, self.view, self.picture, self.caption, self.spectrum,
                  self.table, self.status, self.sample_picker, self.upload, *self.quick.children):
            if w is not None:
                w.close()
        self.quick.close()
        self.widget.close()
        self.cache = None

    # -- driving it from code --------------------------------------------------

    @property
    def rank(self):
        """The rank on the slider."""
        return self.slider.value

    def set_rank(self, k):
        """Move the slider to rank k, clamped to 1..min(m, n), as a user would.

        Outside a running event loop the picture is drawn at once; in a kernel
        the move is queued like a slider drag (see ``flush``). A value that is
        not a whole number is refused with a message in the status line.
        Returns the rank on the slider.
        """
        try:
            k = _whole_number(k)
        except TypeError:
            self._set_status(f"rank must be a whole number, got {k!r}", error=True)
            return self.slider.value
        self.slider.value = min(max(k, 1), self.cache.max_rank)
        return self.slider.value

    def flush(self):
        """Draw a pending slider move now (tests and benchmarks)."""
        if self._pending:
            self._flush()

    def render(self, k=None, *, settle=True):
        """Draw rank k now (default: the slider's rank) and update the readouts.

        ``settle=False`` skips SSIM (left as None), as during a drag.
        """
        k = self.slider.value if k is None else check_rank(k, self.cache.max_rank)
        if k != self.slider.value:
            with self._quietly():
                self.slider.value = k
        self._draw(k)
        if settle:
            self._settle()

    def readouts_for(self, k):
        """The readouts for rank k, SSIM included, without touching the display."""
        recon = self.cache.picture(k)
        readouts = self._readouts(k, recon)
        readouts["ssim"] = ssim(self.cache.image, recon)
        return readouts

    def images(self, k):
        """(reconstruction, error view) at rank k as uint8 arrays, as the explorer shows them."""
        recon = self.cache.picture(k)
        return recon, self._error_view(recon)

    @property
    def image(self):
        """The uint8 image being explored."""
        return self.cache.image

    # -- internals ----------------------------------------------------------

    @contextlib.contextmanager
    def _quietly(self):
        """Change widget values without the observers reacting."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    @staticmethod
    def _fit(image):
        img = _numpy(image)
        if img.dtype != np.uint8 or img.ndim != 2:
            raise ValueError(f"RankExplorer expects a 2-D uint8 image (see load_greyscale), "
                             f"got {img.dtype} with shape {img.shape}")
        if img.size > MAX_PIXELS:
            raise ValueError(f"the image has {img.size / 1e6:.1f} megapixels, over the "
                             f"{MAX_PIXELS / 1e6:.1f}-megapixel cap; load it with load_greyscale to downscale")
        return img

    def _install(self, cache, label, notice=""):
        """Switch to a new image: slider range, buttons, spectrum, pictures, readouts."""
        self._cancel_settle()
        self.cache, self.label = cache, label
        m, n = cache.shape
        r = cache.max_rank
        self._panel = _SpectrumPanel(cache.decomposition.S, cache.energy)
        self._recon_buffer = np.empty(cache.shape, np.uint8)  # the picture on screen, reused
        self._original_png = _preview_png(cache.image)
        with self._quietly():
            self.rank_box.max = r  # the box first: the link would clamp the slider back
            self.slider.max = r
            self.slider.value = min(self.slider.value, r)
        self.quick.children = [self._quick_button(k) for k in QUICK_RANKS if k <= r]
        self._shown = None
        self._pending, self._requested = False, None  # a move still queued for the old image is void
        self.render(self.slider.value, settle=True)
        message = (f"<b>{html.escape(label)}</b>: {n} × {m} pixels, ranks 1 to {r}; "
                   f"SVD and cache ready in {_fmt_seconds(cache.seconds)}")
        if notice:
            message += f"<br><span style='color:#8a5a00'>{html.escape(notice)}</span>"
        self._set_status(message, raw=True)

    def _quick_button(self, k):
        import ipywidgets as widgets

        button = widgets.Button(description=str(k), tooltip=f"rank {k}", layout=widgets.Layout(width="52px"))
        button.on_click(lambda _: self.set_rank(k))
        return button

    def _set_status(self, message, error=False, raw=False):
        text = message if raw else html.escape(message)
        if error:
            text = f"<span style='color:#b00020'>⚠ {text}</span>"
        self.status.value = f"<div style='font-size:12px'>{text}</div>"

    @staticmethod
    def _event_loop():
        """The running asyncio loop (the kernel's, inside a comm handler), or None."""
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _on_rank(self, change):
        if self._quiet:
            return
        self._requested = change.new
        loop = self._event_loop()
        if loop is None:  # plain Python (tests, scripts): draw now
            self._flush()
        elif not self._pending:  # in a kernel: one render pending at most, latest rank wins
            self._pending = True
            wait = self._last_render + self.FRAME_SECONDS - loop.time()
            if wait > 0:  # a frame was drawn moments ago: merge what arrives until the next one
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)

    def _flush(self):
        self._pending = False
        loop = self._event_loop()
        self._last_render = loop.time() if loop is not None else 0.0
        k = self._requested
        if k is None or self.cache is None:
            return
        k = min(max(k, 1), self.cache.max_rank)
        try:
            if k != self._shown:
                self._draw(k)
            self._schedule_settle()
        except Exception as err:  # keep the widget alive; say what happened
            self._set_status(f"could not draw rank {k}: {type(err).__name__}: {err}", error=True)

    def _draw(self, k):
        """Picture, spectrum marker and cheap readouts for rank k (no SSIM)."""
        t0 = _now()
        approx = self.cache._approx(k)
        t1 = _now()
        recon = self.cache._to_picture(approx, self._recon_buffer)  # = to_uint8(A_k)
        t2 = _now()
        self._recon, self._shown = recon, k
        self._cancel_settle()
        self.readouts = self._readouts(k, recon)
        t3 = _now()
        self.picture.value = self._picture_png()
        t4 = _now()
        self.spectrum.value = self._panel.draw(k)
        t5 = _now()
        self.table.value = _readouts_html(self.readouts)
        self.caption.value = self._caption()
        t6 = _now()
        self.renders += 1
        self.timings = {name: 1000 * dt for name, dt in [
            ("reconstruct", t1 - t0), ("to_uint8", t2 - t1), ("readouts", t3 - t2 + t6 - t5),
            ("picture", t4 - t3), ("spectrum", t5 - t4), ("total", t6 - t0)]}

    def _readouts(self, k, recon):
        m, n = self.cache.shape
        sse = cv2.norm(recon, self.cache.image, cv2.NORM_L2SQR)  # exact sum of squared uint8 differences
        mse = sse / (m * n * 255.0**2)  # on the [0, 1] scale, as psnr() uses
        bytes_uint8 = stored_bytes(m, n, k, "uint8")
        bytes_float32 = stored_bytes(m, n, k, "float32")
        return {
            "k": k, "max_rank": self.cache.max_rank, "height": m, "width": n,
            "stored_values": stored_values(m, n, k),
            "bytes_uint8": bytes_uint8, "bytes_float32": bytes_float32, "original_bytes": m * n,
            "ratio_uint8": m * n / bytes_uint8, "ratio_float32": m * n / bytes_float32,
            "break_even_uint8": break_even_rank(m, n, BYTES_PER_VALUE["uint8"]),
            "break_even_float32": break_even_rank(m, n, BYTES_PER_VALUE["float32"]),
            "energy": float(self.cache.energy[k - 1]),
            "relative_error": self.cache.relative_error(k),
            "psnr": math.inf if sse == 0 else 10 * math.log10(1 / mse),
            "ssim": None,
        }

    def _error_view(self, recon):
        return cv2.convertScaleAbs(cv2.absdiff(self.cache.image, recon), alpha=ERROR_GAIN)

    def _picture_png(self):
        view = self.view.value
        if view == "original":
            return self._original_png
        if view == "error":
            return _preview_png(self._error_view(self._recon))
        return _preview_png(self._recon)

    def _caption(self):
        k = self._shown
        return {
            "reconstruction": f"rank-{k} approximation A<sub>k</sub> (lossless PNG of to_uint8(A<sub>k</sub>))",
            "error": f"error |A − A<sub>k</sub>| at rank {k}, ×{ERROR_GAIN}: black = exact, "
                     f"white = off by {math.ceil(255 / ERROR_GAIN)}+ grey levels",
            "original": "the original image A",
        }[self.view.value]

    def _redraw_picture(self):
        if self._recon is not None:
            self.picture.value = self._picture_png()
            self.caption.value = self._caption()

    def _cancel_settle(self):
        if self._settle_handle is not None:
            self._settle_handle.cancel()
            self._settle_handle = None

    def _schedule_settle(self):
        self._cancel_settle()
        loop = self._event_loop()
        if loop is None:
            self._settle()
        else:  # meanwhile the table shows "…" for SSIM
            self._settle_handle = loop.call_later(SETTLE_SECONDS, self._settle)

    def _settle(self):
        """Compute SSIM for the rank on screen (after the slider rests)."""
        self._settle_handle = None
        if self._recon is None or self.readouts.get("ssim") is not None:
            return
        try:
            self.readouts["ssim"] = ssim(self.cache.image, self._recon)
            self.table.value = _readouts_html(self.readouts)
        except Exception as err:  # pragma: no cover - keep the widget alive
            self._set_status(f"SSIM failed: {type(err).__name__}: {err}", error=True)

    def _on_sample(self, change):
        if self._quiet or change.new is None:
            return
        self._load(sample_image, change.new, label=change.new)

    def _on_upload(self, change):
        if self._quiet or not change.new:
            return
        entry = change.new[-1]
        name = str(entry.get("name") or "the uploaded file")
        self._load(load_greyscale, bytes(entry["content"]), name=name, label=name)
        with self._quietly():
            self.upload.value = ()  # so that the same file can be uploaded again

    def _load(self, loader, *args, label, **kwargs):
        """Load a new image; on failure say why and keep the current one."""
        def failed(err):  # ImageError messages name the file already
            text = str(err) if isinstance(err, ImageError) else f"{type(err).__name__}: {err}"
            self._set_status(text, error=True)
            return False

        self._set_status(f"loading {label}…")
        try:
            img, notice = _capture_notices(loader, *args, **kwargs)
        except Exception as err:  # a bad file: say why, keep the current image
            return failed(err)
        self._set_status(f"computing the SVD of {label} ({img.shape[1]} × {img.shape[0]} pixels)…")
        # Free the old cache first (up to ~300 MB at 4 megapixels), rebuild it if the new one fails.
        previous, self.cache = self.cache.image, None
        _release_memory()
        try:
            cache = RankCache(img)
        except Exception as err:  # e.g. MemoryError
            self.cache = RankCache(previous)
            return failed(err)
        if loader is load_greyscale and self.sample_picker is not None:
            with self._quietly():
                self.sample_picker.value = None  # an upload is on screen, not a sample
        self._install(cache, label, notice)
        del cache
        _release_memory()
        return True


def _release_memory():
    """Free unreachable objects now and hand freed memory back to the system.

    Drawing text with matplotlib leaves reference cycles (parser tracebacks) that
    keep earlier frames, and so an old cache, alive until the next garbage
    collection; glibc also keeps freed blocks. Without this, switching between
    4-megapixel images a few times grew the kernel to 1.5 GB.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim
        pass


def _whole_number(value):
    """``value`` as an int if it is a whole number (int, NumPy integer, or a float like 5.0)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("a bool is not a rank")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return operator.index(value)
