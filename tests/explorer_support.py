"""Small test images and ways to read what the explorer shows, shared by the explorer tests."""

import html
import re

import cv2
import numpy as np

import helpers


def photo(height, width, seed=0):
    """A photo-like test image: the camera sample resized, plus a little noise."""
    img = cv2.resize(helpers.sample_image("camera"), (width, height), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(seed).integers(-3, 4, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def png_bytes(img):
    """The image as PNG file bytes, as an upload would bring them."""
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def shown(explorer):
    """The whole picture of the rank the kernel drew, as a uint8 array: the one the PNG copy
    and the 1:1 view use (the page rebuilds what it shows from the factors), or the pixels
    sent to the browser for the other views (no view size is known in these tests, so they
    are the whole picture, pixel for pixel)."""
    p = explorer.picture
    if p.live and not p.one_to_one:
        return p.image
    return np.frombuffer(p.pixels, np.uint8).reshape(p.height, p.width)


def status_text(explorer):
    """The explorer's status line as plain text."""
    return html.unescape(re.sub(r"<[^>]+>", " ", explorer.status.value)).replace("  ", " ").strip()


def run_in_kernel(kc, code, wait=True):
    """Execute code in a real kernel (a jupyter_client KernelClient) and return what it printed;
    raise AssertionError with the traceback if it failed. wait=False only sends it."""
    msg_id = kc.execute(code)
    if not wait:
        return None
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)
