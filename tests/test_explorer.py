"""The rank explorer (helpers.RankExplorer), driven in the kernel process: no browser.

Outside a running event loop the explorer draws each slider move at once, so
these tests can set a value and look at the result. The coalescing logic (one
render pending at most, latest rank wins) is tested with a hand-run fake loop,
and once against a real ipykernel.
"""

import datetime
import math
import re
import time

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
from explorer.cache import checkpoint_spacing


def photo(height, width, seed=0):
    """A photo-like test image: the camera sample resized, plus a little noise."""
    img = cv2.resize(helpers.sample_image("camera"), (width, height), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(seed).integers(-3, 4, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def png_bytes(img):
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def decode(data):
    """Decode the PNG bytes of an Image widget (grey, or colour for the spectrum)."""
    return cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_UNCHANGED)


def upload(explorer, data, name):
    """Do what the browser does when a file is picked: set FileUpload.value."""
    explorer.upload.value = (
        {
            "name": name,
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        },
    )


@pytest.fixture
def small():
    """An explorer on a 120 x 90 photo (rank up to 90), with the sources row."""
    explorer = helpers.RankExplorer(image=photo(90, 120), rank=20)
    yield explorer
    explorer.close()


# --- the slider and the picture ------------------------------------------------


def test_moving_the_slider_changes_the_picture_and_back_gives_the_same_bytes(small):
    first = bytes(small.picture.value)
    first_spectrum = bytes(small.spectrum.value)
    small.slider.value = 5
    assert small.readouts["k"] == 5
    assert bytes(small.picture.value) != first
    assert bytes(small.spectrum.value) != first_spectrum  # the marker moved
    small.slider.value = 20
    assert bytes(small.picture.value) == first
    assert bytes(small.spectrum.value) == first_spectrum


def test_picture_is_the_lossless_uint8_reconstruction(small):
    d = helpers.svd(helpers.to_unit(small.image))
    for k in (1, 7, 33, 90):
        small.set_rank(k)
        shown = decode(small.picture.value)
        expected = helpers.to_uint8(helpers.reconstruct(d, k))
        assert shown.shape == small.image.shape and shown.dtype == np.uint8
        # float32 sums in another order: a pixel may round the other way, by one level
        assert np.abs(shown.astype(int) - expected).max() <= 1
        assert np.mean(shown != expected) < 0.01


def test_error_and_original_views(small):
    small.set_rank(10)
    recon = decode(small.picture.value)
    small.view.value = "error"
    error = decode(small.picture.value)
    expected = np.clip(helpers.ERROR_GAIN * np.abs(small.image.astype(int) - recon), 0, 255)
    assert np.array_equal(error, expected)
    assert "×4" in small.caption.value or f"×{helpers.ERROR_GAIN}" in small.caption.value
    small.set_rank(30)  # the error view follows the slider
    assert not np.array_equal(decode(small.picture.value), error)
    small.view.value = "original"
    assert np.array_equal(decode(small.picture.value), small.image)
    small.view.value = "reconstruction"
    assert np.array_equal(decode(small.picture.value), small._recon)


def test_pictures_keep_their_aspect_ratio(small):
    layout = small.picture.layout
    assert layout.width == "100%" and layout.height == "auto" and layout.object_fit == "contain"
    assert small.spectrum.layout.height == "auto" and small.spectrum.layout.object_fit == "contain"
    for view in ("reconstruction", "error", "original"):
        small.view.value = view
        assert decode(small.picture.value).shape == small.image.shape  # 90 x 120, not stretched


def test_large_pictures_are_sent_uncompressed_but_still_lossless():
    img = photo(600, 1100)  # 0.66 megapixels, over COMPRESS_PIXELS
    explorer = helpers.RankExplorer(image=img, rank=40, sources=False)
    assert img.size > helpers.COMPRESS_PIXELS
    assert len(explorer.picture.value) > img.size  # stored PNG: about one byte per pixel
    assert np.array_equal(decode(explorer.picture.value), explorer._recon)
    explorer.close()


# --- readouts --------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 17, 45, 89, 90])
def test_readouts_equal_the_helpers_metrics(small, k):
    small.set_rank(k)
    r = small.readouts
    img = small.image
    m, n = img.shape
    A = helpers.to_unit(img)
    d = helpers.svd(A)
    shown = decode(small.picture.value)  # the picture on screen, whose quality is reported
    assert r["k"] == k and r["max_rank"] == 90 and (r["height"], r["width"]) == (m, n)
    assert r["stored_values"] == helpers.stored_values(m, n, k) == k * (m + n + 1)
    assert r["bytes_uint8"] == helpers.stored_bytes(m, n, k, "uint8")
    assert r["bytes_float32"] == helpers.stored_bytes(m, n, k, "float32")
    assert r["original_bytes"] == m * n
    assert r["ratio_uint8"] == pytest.approx(m * n / helpers.stored_bytes(m, n, k, "uint8"))
    assert r["break_even_uint8"] == helpers.break_even_rank(m, n, 1)
    assert r["break_even_float32"] == helpers.break_even_rank(m, n, 4)
    assert r["energy"] == pytest.approx(helpers.cumulative_energy(d.S)[k - 1], abs=1e-12)
    # relative error comes from the tail energy: compare with the float reconstruction
    assert r["relative_error"] == pytest.approx(
        helpers.relative_error(A, helpers.reconstruct(d, k)), abs=2e-5
    )
    # PSNR and SSIM are of the shown uint8 picture against the uint8 original ...
    psnr_shown = helpers.psnr(img, shown)
    # (the explorer sums squared uint8 differences exactly; psnr() goes through float32)
    assert r["psnr"] == pytest.approx(psnr_shown, rel=1e-6) or (
        math.isinf(r["psnr"]) and math.isinf(psnr_shown)
    )
    assert r["ssim"] == pytest.approx(helpers.ssim(img, shown), abs=1e-12)
    # ... which is within rounding of helpers.reconstruct's picture
    direct = helpers.to_uint8(helpers.reconstruct(d, k))
    if not math.isinf(r["psnr"]):
        assert r["psnr"] == pytest.approx(helpers.psnr(img, direct), abs=0.05)
    # the table is rendered from the dict
    html = small.table.value
    assert f"{k} of 90" in html
    assert f"{r['stored_values']:,}" in html
    assert f"{100 * r['energy']:.3f} %" in html
    assert f"{r['relative_error']:.4f}" in html
    assert f"{r['ssim']:.4f}" in html
    assert ("∞" in html) if math.isinf(r["psnr"]) else (f"{r['psnr']:.2f} dB" in html)


def test_using_the_cache_from_code_does_not_disturb_the_display(small):
    small.set_rank(12)
    shown = small._recon.copy()
    small.cache.picture(70), small.images(33), small.readouts_for(80), small.cache.reconstruction(5)
    small.view.value = "error"  # redrawn from the picture on screen, rank 12
    expected = np.clip(helpers.ERROR_GAIN * np.abs(small.image.astype(int) - shown), 0, 255)
    assert np.array_equal(decode(small.picture.value), expected)
    assert small.readouts["k"] == 12 and small.readouts["ssim"] == pytest.approx(helpers.ssim(small.image, shown))


def test_readouts_for_does_not_move_the_slider(small):
    before = bytes(small.picture.value)
    r = small.readouts_for(60)
    assert r["k"] == 60 and r["ssim"] is not None
    assert small.rank == 20 and bytes(small.picture.value) == before


def test_full_rank_is_exact_or_within_one_level(small):
    small.set_rank(90)
    shown = decode(small.picture.value)
    assert np.abs(shown.astype(int) - small.image).max() <= 1
    assert small.readouts["relative_error"] == pytest.approx(0, abs=1e-12)
    assert small.readouts["energy"] == pytest.approx(1.0)


# --- bounds, typed ranks and quick buttons ---------------------------------------


def test_bounds_and_typed_ranks_are_clamped(small):
    assert (small.slider.min, small.slider.max) == (1, 90)
    assert small.set_rank(1) == 1 and small.readouts["k"] == 1
    assert small.set_rank(90) == 90 and small.readouts["k"] == 90
    assert small.set_rank(0) == 1
    assert small.set_rank(10**9) == 90
    small.rank_box.value = 5000  # typing a rank that is too large
    assert small.rank_box.value == 90 and small.slider.value == 90 and small.readouts["k"] == 90
    small.rank_box.value = -3
    assert small.slider.value == 1 and small.readouts["k"] == 1
    small.rank_box.value = 42  # typing a valid rank moves the slider
    assert small.slider.value == 42 and small.readouts["k"] == 42


def test_a_rank_that_is_not_a_number_is_refused_cleanly(small):
    picture = bytes(small.picture.value)
    for bad in ("abc", 2.5, None, True):
        assert small.set_rank(bad) == 20
        assert "whole number" in small.status.value and "⚠" in small.status.value
    assert small.set_rank(np.int64(12)) == 12 and small.set_rank(30.0) == 30
    assert bytes(small.picture.value) != picture


def test_render_refuses_an_invalid_rank_with_the_range():
    explorer = helpers.RankExplorer(image=photo(40, 50), sources=False)
    with pytest.raises(ValueError, match="from 1 to 40"):
        explorer.render(41)
    explorer.close()


def test_quick_buttons_set_the_rank(small):
    labels = [b.description for b in small.quick.children]
    assert labels == ["50", "25", "10"]  # only the project's ranks <= min(m, n) = 90
    for button in small.quick.children:
        button.click()
        assert small.rank == int(button.description) == small.readouts["k"]


def test_quick_buttons_on_the_camera():
    explorer = helpers.RankExplorer(sample="camera", rank=3, sources=False)
    assert [b.description for b in explorer.quick.children] == ["500", "250", "100", "50", "25", "10"]
    explorer.quick.children[0].click()
    assert explorer.rank == 500 and explorer.readouts["k"] == 500
    explorer.close()


# --- sources: samples and uploads --------------------------------------------------


def test_changing_the_sample_resets_the_range():
    explorer = helpers.RankExplorer(sample="camera", rank=500)
    assert explorer.slider.max == 512 and explorer.label == "camera"
    explorer.sample_picker.value = "document"  # 560 x 720: rank up to 560
    assert explorer.image.shape == helpers.sample_image("document").shape
    assert explorer.slider.max == explorer.rank_box.max == min(explorer.image.shape) == 560
    assert explorer.rank == 500 and explorer.readouts["k"] == 500
    assert decode(explorer.picture.value).shape == explorer.image.shape
    explorer.sample_picker.value = "plaid"
    assert explorer.slider.max == 512
    assert explorer.readouts["max_rank"] == 512 and "plaid" in explorer.status.value
    assert "plaid" in repr(explorer)
    explorer.close()


def test_uploading_a_valid_png_switches_the_image(small):
    new = photo(64, 40, seed=3)  # 40 wide, 64 high: rank up to 40
    upload(small, png_bytes(new), "my photo.png")
    assert np.array_equal(small.image, new)
    assert small.slider.max == small.rank_box.max == 40
    assert small.rank == 20 and small.readouts["max_rank"] == 40
    assert decode(small.picture.value).shape == (64, 40)
    assert "my photo.png" in small.status.value and "⚠" not in small.status.value
    assert small.sample_picker.value is None  # no sample is selected now
    assert small.upload.value == ()  # cleared, so the same file can be picked again
    assert [b.description for b in small.quick.children] == ["25", "10"]
    small.set_rank(40)  # the new range works
    assert small.readouts["k"] == 40
    small.sample_picker.value = "camera"  # and a sample can be picked again
    assert small.slider.max == 512


def test_an_upload_clamps_the_rank(small):
    small.set_rank(90)
    upload(small, png_bytes(photo(30, 70)), "narrow.png")
    assert small.slider.max == 30 and small.rank == 30 and small.readouts["k"] == 30


@pytest.mark.parametrize(
    "data, name",
    [
        (b"this is just text, not a picture\n", "notes.txt"),
        (png_bytes(photo(50, 60))[:300], "truncated.png"),
        (b"", "empty.png"),
        (b"%PDF-1.7 fake", "paper.pdf"),
    ],
)
def test_a_bad_upload_shows_the_loaders_message_and_keeps_the_image(small, data, name):
    before_img, before_picture = small.image.copy(), bytes(small.picture.value)
    with pytest.raises(helpers.ImageError) as caught:
        helpers.load_greyscale(data, name=name)
    upload(small, data, name)  # no exception escapes
    assert np.array_equal(small.image, before_img)
    assert bytes(small.picture.value) == before_picture
    assert "⚠" in small.status.value and name in small.status.value
    assert _html_text(small.status.value).endswith(str(caught.value))
    assert small.slider.max == 90
    small.set_rank(3)  # still working
    assert small.readouts["k"] == 3 and bytes(small.picture.value) != before_picture


def test_a_too_large_upload_is_downscaled_with_the_notice_shown(small):
    y, x = np.mgrid[0:2000, 0:3000]
    big = ((x / 3000 * 180) + 40 * np.sin(y / 50.0) + 30).astype(np.uint8)  # smooth: a quick PNG
    upload(small, png_bytes(big), "huge.png")
    m, n = small.image.shape
    assert m * n <= helpers.MAX_PIXELS and m < 2000 and abs(n / m - 1.5) < 0.01
    status = _html_text(small.status.value)
    assert "Notice: huge.png is 3000 x 2000" in status and "downscaled" in status and "⚠" not in status
    assert small.slider.max == min(m, n)
    # caches sized for Binder: well under 600 MB at the 4.2-megapixel cap
    assert small.cache.nbytes < 450e6
    small.set_rank(small.slider.max)
    assert small.readouts["k"] == min(m, n)


def test_repr_is_short_and_stable(small):
    assert repr(small) == "RankExplorer(your image: 120 x 90 pixels, rank 20 of 90)"
    bundle = small._repr_mimebundle_()
    assert bundle["text/plain"] == repr(small)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == small.widget.model_id


def test_compact_version_has_no_sources():
    explorer = helpers.RankExplorer(sample="camera", rank=50, sources=False)
    assert explorer.sample_picker is None and explorer.upload is None
    widgets_in_box = _all_children(explorer.widget)
    assert explorer.slider in widgets_in_box and explorer.picture in widgets_in_box
    assert explorer.spectrum in widgets_in_box and explorer.table in widgets_in_box
    assert not any(type(w).__name__ in ("Dropdown", "FileUpload") for w in widgets_in_box)
    explorer.close()


def test_an_all_black_image_works():
    explorer = helpers.RankExplorer(image=np.zeros((20, 30), np.uint8), rank=5, sources=False)
    r = explorer.readouts
    assert r["energy"] == 1.0 and r["relative_error"] == 0.0 and math.isinf(r["psnr"])
    assert "∞" in explorer.table.value
    explorer.close()


def test_the_explorer_refuses_what_is_not_a_uint8_matrix():
    with pytest.raises(ValueError, match="uint8"):
        helpers.RankExplorer(image=np.zeros((20, 30), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        helpers.RankExplorer(image=np.zeros((20, 30, 3), np.uint8))


# --- coalescing ------------------------------------------------------------------


class FakeLoop:
    """Stands in for the kernel's asyncio loop: callbacks run only when asked."""

    def __init__(self):
        self.now = 100.0
        self.soon, self.later = [], []

    def time(self):
        return self.now

    def call_soon(self, callback, *args):
        self.soon.append((callback, args))

    def call_later(self, delay, callback, *args):
        handle = FakeHandle(self.now + delay, callback, args)
        self.later.append(handle)
        return handle

    def run_ready(self):
        ready, self.soon = self.soon, []
        for callback, args in ready:
            callback(*args)
        return len(ready)

    def advance(self, seconds):
        self.now += seconds
        due = [h for h in self.later if h.when <= self.now and not h.cancelled]
        self.later = [h for h in self.later if h not in due and not h.cancelled]
        for handle in sorted(due, key=lambda h: h.when):
            handle.callback(*handle.args)
        return len(due)


class FakeHandle:
    def __init__(self, when, callback, args):
        self.when, self.callback, self.args, self.cancelled = when, callback, args, False

    def cancel(self):
        self.cancelled = True


@pytest.fixture
def looped(small, monkeypatch):
    loop = FakeLoop()
    monkeypatch.setattr(small, "_event_loop", lambda: loop)
    return small, loop


def test_rapid_moves_lead_to_one_render_of_the_latest_rank(looped):
    explorer, loop = looped
    renders, picture = explorer.renders, bytes(explorer.picture.value)
    for k in range(30, 80, 3):  # a fast drag: 17 moves before the kernel gets to draw
        explorer.slider.value = k
    assert explorer.renders == renders and bytes(explorer.picture.value) == picture  # nothing drawn yet
    assert len(loop.soon) == 1 and not loop.later  # one render scheduled, not 17
    assert loop.run_ready() == 1
    assert explorer.renders == renders + 1
    assert explorer.readouts["k"] == 78 == explorer.rank  # the latest value won
    reference = helpers.RankExplorer(image=explorer.image, rank=78, sources=False)
    assert bytes(explorer.picture.value) == bytes(reference.picture.value)
    reference.close()


def test_moves_within_a_frame_wait_for_the_next_frame(looped):
    explorer, loop = looped
    explorer.slider.value = 10
    loop.run_ready()  # drawn at once: the first move after a pause
    renders = explorer.renders
    explorer.slider.value = 11  # 0 ms later: within the same 60 Hz frame
    explorer.slider.value = 12
    assert not loop.soon and len(loop.later) == 2  # the frame wait, and SSIM's settle timer
    frame = [h for h in loop.later if h.when < loop.now + helpers.SETTLE_SECONDS][0]
    assert frame.when - loop.now == pytest.approx(explorer.FRAME_SECONDS)
    loop.advance(explorer.FRAME_SECONDS)
    assert explorer.renders == renders + 1 and explorer.readouts["k"] == 12


def test_ssim_waits_until_the_slider_rests(looped):
    explorer, loop = looped
    explorer.slider.value = 33
    loop.run_ready()
    assert explorer.readouts["k"] == 33 and explorer.readouts["ssim"] is None
    assert "…" in explorer.table.value
    loop.advance(helpers.SETTLE_SECONDS / 2)
    explorer.slider.value = 34  # moving again restarts the wait
    loop.run_ready()
    assert explorer.readouts["k"] == 34 and explorer.readouts["ssim"] is None
    loop.advance(helpers.SETTLE_SECONDS)
    assert explorer.readouts["ssim"] == pytest.approx(helpers.ssim(explorer.image, explorer._recon))
    assert "…" not in explorer.table.value
    assert not [h for h in loop.later if not h.cancelled]


def test_without_an_event_loop_every_move_is_drawn_at_once(small):
    renders = small.renders
    for k in (3, 4, 5):
        small.slider.value = k
        assert small.readouts["k"] == k and small.readouts["ssim"] is not None
    assert small.renders == renders + 3


def test_coalescing_in_a_real_kernel():
    """A burst of slider updates sent to ipykernel as comm messages, as the browser would."""
    jupyter_client = pytest.importorskip("jupyter_client.manager")
    km, kc = jupyter_client.start_new_kernel(kernel_name="python3")
    try:

        def run(code):
            msg_id = kc.execute(code)
            out = []
            while True:
                msg = kc.get_iopub_msg(timeout=60)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                if msg["msg_type"] == "error":
                    raise AssertionError("\n".join(msg["content"]["traceback"]))
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(out)

        comm_id = run(
            "import asyncio, helpers\n"
            "e = helpers.RankExplorer(sample='camera', rank=50, sources=False)\n"
            "loops = []\n"
            "def probe(find=e._event_loop):\n"
            "    loops.append(find()); return loops[-1]\n"
            "e._event_loop = probe\n"
            "before = e.renders\n"
            "print(e.slider.comm.comm_id, end='')"
        )
        ranks = list(range(100, 400, 10))
        for k in ranks:  # 30 moves, sent as fast as possible
            kc.shell_channel.send(
                kc.session.msg(
                    "comm_msg",
                    {
                        "comm_id": comm_id,
                        "data": {"method": "update", "state": {"value": k}, "buffer_paths": []},
                    },
                )
            )
        deadline = time.time() + 30
        while True:
            out = run("print(e.readouts['k'], e.readouts['ssim'] is not None, e.renders - before, end='')")
            shown, settled, renders = out.split()
            if (shown == str(ranks[-1]) and settled == "True") or time.time() > deadline:
                break
            time.sleep(0.2)
        assert shown == str(ranks[-1]) and settled == "True"  # latest wins, SSIM after settling
        assert 1 <= int(renders) < len(ranks)  # stale renders were merged
        # inside the comm handler the explorer found the kernel's running loop
        assert (
            run("print(bool(loops) and all(l is asyncio.get_event_loop() for l in loops), end='')") == "True"
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# --- the checkpoint scheme -----------------------------------------------------------


def test_checkpoints_reconstruct_every_rank():
    img = photo(150, 200)
    cache = helpers.RankCache(img, spacing=16)  # partial sums at 16, 32, ..., 144 and 150
    A = helpers.to_unit(img)
    d = helpers.svd(A)
    assert list(cache._checkpoint_ranks) == [0, *range(16, 150, 16), 150]
    for k in range(1, 151):
        direct = helpers.reconstruct(d, k)
        assert np.abs(cache.reconstruction(k) - direct).max() < 2e-5, f"k={k}"
        assert cache.relative_error(k) == pytest.approx(helpers.relative_error(A, direct), abs=2e-5)
        assert np.array_equal(cache.picture(k), helpers.to_uint8(cache.reconstruction(k)))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 40), st.integers(2, 40), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_checkpoints_match_reconstruct_property(m, n, spacing, seed):
    img = np.random.default_rng(seed).integers(0, 256, (m, n), dtype=np.uint8)
    cache = helpers.RankCache(img, spacing=spacing)
    d = cache.decomposition
    for k in range(1, min(m, n) + 1):
        np.testing.assert_allclose(cache.reconstruction(k), helpers.reconstruct(d, k), atol=2e-5)


def test_the_explorer_restores_torchs_thread_count():
    import torch

    before = torch.get_num_threads()
    explorer = helpers.RankExplorer(image=photo(40, 60), rank=7, sources=False)
    explorer.set_rank(30)
    assert torch.get_num_threads() == before
    explorer.close()


def test_checkpoint_spacing_fits_the_memory_budget():
    assert checkpoint_spacing(1000, 1000, 1000) == 32
    assert checkpoint_spacing(2048, 2048, 2048) == 128
    for m, n in [(512, 512), (1000, 1000), (2048, 2048), (1448, 2896)]:
        r = min(m, n)
        spacing = checkpoint_spacing(m, n, r)
        assert len(range(spacing, r, spacing)) * 4 * m * n <= helpers.CHECKPOINT_BUDGET


# --- helpers for the tests --------------------------------------------------------------


def _html_text(html):
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", " ", html)).replace("  ", " ").strip()


def _all_children(widget):
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += _all_children(child)
    return found
