"""Generate everything in media/: the sample images and the README figures.

Run it with ``make media``. The photos are converted from scikit-image's
bundled data (public domain or CC0, see CREDITS.md); the plaid and the
document page are drawn here. Every output is deterministic.
"""

from pathlib import Path

import cv2
import numpy as np
import skimage.data

MEDIA = Path(__file__).resolve().parent


def save_png(name, img):
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok, name
    (MEDIA / name).write_bytes(buf.tobytes())


def rgb_to_grey(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def plaid(height=512, width=768):
    """A tartan of square-wave bands, low-rank by construction.

    The picture is a sum of outer products ``rows[:, None] * cols[None, :]`` of
    0/1 square waves (and constants): as real numbers it has rank 4. Rounding
    to 8 bits adds two faint layers, so the saved uint8 image has rank 6, with
    the 5th and 6th singular values about 4 000 and 7 000 times smaller than
    the 1st. (It has only 8 distinct rows and 8 distinct columns, so rounding
    keeps its rank at most 8; rounding a general low-rank matrix makes it full rank.)
    """
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]

    def wave(t, period, duty):
        return ((t % period) < duty * period).astype(np.float64)

    picture = (
        0.30 * wave(y, 96, 0.5) * np.ones_like(x)
        + 0.30 * np.ones_like(y) * wave(x, 96, 0.5)
        + 0.15 * wave(y, 24, 0.25) * wave(x, 24, 0.25)
        + 0.15 * wave(y + 48, 64, 0.2) * wave(x + 48, 64, 0.2)
        + 0.05
    )
    return np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8)


def document(height=720, width=560):
    """A page of black text on white, drawn with matplotlib's DejaVu Sans."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        "The singular value decomposition",
        "",
        "Every real m x n matrix A can be written as",
        "A = U diag(s) V^T, where U and V have orthonormal",
        "columns and s1 >= s2 >= ... >= 0.",
        "",
        "Keeping only the k largest singular values gives",
        "the best rank-k approximation of A, in both the",
        "spectral norm and the Frobenius norm",
        "(Eckart and Young, 1936).",
        "",
        "An image is a matrix of grey levels, so the same",
        "idea compresses pictures: store k columns of U,",
        "k values of s and k rows of V, that is",
        "k (m + n + 1) numbers instead of m n pixels.",
        "",
        "Text is hard for this method: sharp strokes in",
        "every line need many singular values, while a",
        "smooth gradient needs only one or two.",
    ]
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    for i, line in enumerate(lines):
        size = 17 if i == 0 else 12.5
        weight = "bold" if i == 0 else "normal"
        fig.text(0.07, 0.93 - i * 0.046, line, fontsize=size, weight=weight,
                 family="DejaVu Sans", color="black")
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return rgb_to_grey(np.ascontiguousarray(rgba[:, :, :3]))


def make_samples():
    save_png("camera.png", skimage.data.camera())
    save_png("astronaut.png", cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    save_png("hubble.png", rgb_to_grey(skimage.data.hubble_deep_field()))
    save_png("brick.png", skimage.data.brick())
    save_png("plaid.png", plaid())
    save_png("document.png", document())


def make_gallery():
    """The README figure: the camera photo and its ranks 500 ... 10, with PSNR/SSIM."""
    import matplotlib

    matplotlib.use("Agg")
    import helpers

    img = helpers.sample_image("camera")
    decomposition = helpers.svd(helpers.to_unit(img))
    images, titles = [img], [f"original, {img.shape[1]} x {img.shape[0]}"]
    for k in (500, 250, 100, 50, 25, 10):
        approx = helpers.to_uint8(helpers.reconstruct(decomposition, k))
        images.append(approx)
        if np.array_equal(approx, img):
            titles.append(f"rank {k}: identical after rounding to uint8")
        else:
            titles.append(f"rank {k}: {helpers.psnr(img, approx):.1f} dB, SSIM {helpers.ssim(img, approx):.2f}")
    images.append(np.full_like(img, 255))
    titles.append("")
    fig = helpers.show_images(images, titles, ncols=4, width=11)
    fig.axes[-1].set_visible(False)
    fig.savefig(MEDIA / "gallery.png", dpi=80)


if __name__ == "__main__":
    make_samples()
    make_gallery()
    for path in sorted(MEDIA.glob("*.png")):
        print(f"{path.name:16s} {path.stat().st_size / 1024:7.1f} KiB")
