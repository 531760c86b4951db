"""The rank explorer (helpers.RankExplorer), driven in the kernel process: no browser.

Only public names are used. Outside a running event loop the explorer draws each
slider move at once, so most tests set a value and look at the result. The
coalescing of slider drags (one render pending at most, latest rank wins, at most
one render a frame) is tested inside a real asyncio loop, and once against a real
ipykernel.
"""

import asyncio
import logging
import math
import re
import time
import warnings

import cv2
import numpy as np
import pytest
import torch
from explorer_support import photo, png_bytes, run_in_kernel, shown, status_text
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.formatters import DisplayFormatter

import helpers
from explorer.cache import CHECKPOINT_BUDGET, checkpoint_spacing
from explorer.widget import SAVED_FACTOR_BYTES


def decode(data):
    """Decode PNG bytes (the spectrum panel, or a display's image/png)."""
    return cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_UNCHANGED)


def upload(explorer, data, name):
    """Do what the upload control does once a file has arrived: hand the bytes to the
    explorer. Returns the control's message (a bad file's reason is raised as ValueError)."""
    try:
        return explorer.upload.on_file(name, data)
    except ValueError as err:
        return str(err)


def tree(widget):
    """A widget and all its children, with their layouts and styles (widgets too)."""
    found = [widget, *(getattr(widget, part, None) for part in ("layout", "style"))]
    for child in getattr(widget, "children", ()):
        found += tree(child)
    return [w for w in found if w is not None]


@pytest.fixture
def small():
    """An explorer on a 90 × 120 photo (rank up to 90), with the sources row."""
    explorer = helpers.RankExplorer(image=photo(90, 120), rank=20)
    yield explorer
    explorer.close()


# --- the slider and the picture ------------------------------------------------


def test_moving_the_slider_changes_the_picture_and_back_gives_the_same_bytes(small):
    first, first_spectrum = shown(small).copy(), bytes(small.spectrum.value)
    small.slider.value = 5
    assert small.readouts["k"] == small.picture.rank == 5
    assert not np.array_equal(shown(small), first)
    assert bytes(small.spectrum.value) != first_spectrum  # the marker moved
    small.slider.value = 20
    assert small.picture.rank == 20
    assert np.array_equal(shown(small), first) and bytes(small.spectrum.value) == first_spectrum


def test_picture_is_the_lossless_uint8_reconstruction(small):
    d = helpers.svd(helpers.to_unit(small.image))
    for k in (1, 7, 33, 90):
        small.set_rank(k)
        picture = shown(small)
        assert picture.shape == small.image.shape and np.array_equal(picture, small.images(k)[0])
        expected = helpers.to_uint8(helpers.reconstruct(d, k))
        # float32 sums in another order: a pixel may round the other way, by one level
        assert np.abs(picture.astype(int) - expected).max() <= 1
        assert np.mean(picture != expected) < 0.01


def test_error_and_original_views(small):
    small.set_rank(10)
    recon = shown(small).copy()
    small.view.value = "error"
    error = shown(small).copy()
    assert np.array_equal(error, np.clip(helpers.ERROR_GAIN * np.abs(small.image.astype(int) - recon), 0, 255))
    assert np.array_equal(error, small.images(10)[1])
    white = math.ceil(255 / helpers.ERROR_GAIN)  # the error that shows as white
    assert f"×{helpers.ERROR_GAIN}" in small.caption.value and f"{white}+ grey levels" in small.caption.value
    assert f"x {helpers.ERROR_GAIN}" in small.view.tooltips[1] and f"{white}+ grey levels" in small.view.tooltips[1]
    small.set_rank(30)  # the error view follows the slider
    assert not np.array_equal(shown(small), error)
    small.view.value = "original"
    assert np.array_equal(shown(small), small.image)
    small.view.value = "reconstruction"
    assert np.array_equal(shown(small), small.images(30)[0])


# --- readouts --------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 17, 45, 89, 90])
def test_readouts_equal_the_helpers_metrics(small, k):
    small.set_rank(k)
    r = small.readouts
    img = small.image
    m, n = img.shape
    A = helpers.to_unit(img)
    d = helpers.svd(A)
    picture = shown(small)  # the picture on screen, whose quality is reported
    assert r["k"] == k and r["max_rank"] == 90 and (r["height"], r["width"]) == (m, n)
    assert r["stored_values"] == helpers.stored_values(m, n, k) == k * (m + n + 1)
    assert r["bytes_uint8"] == helpers.stored_bytes(m, n, k, "uint8")
    assert r["bytes_float32"] == helpers.stored_bytes(m, n, k, "float32")
    assert r["original_bytes"] == m * n
    assert r["ratio_uint8"] == pytest.approx(m * n / helpers.stored_bytes(m, n, k, "uint8"))
    assert r["break_even_uint8"] == helpers.break_even_rank(m, n, 1)
    assert r["break_even_float32"] == helpers.break_even_rank(m, n, 4)
    assert r["energy"] == pytest.approx(helpers.cumulative_energy(d.S)[k - 1], abs=1e-12)
    # from the tail energy, against the float32 reconstruction: float32 round-off of a sum of k terms
    assert r["relative_error"] == pytest.approx(helpers.relative_error(A, helpers.reconstruct(d, k)), abs=2e-5)
    # PSNR and SSIM are of the shown uint8 picture against the uint8 original
    psnr_shown = helpers.psnr(img, picture)
    # (the explorer sums squared uint8 differences exactly; psnr() goes through float32)
    assert r["psnr"] == pytest.approx(psnr_shown, rel=1e-6) or (math.isinf(r["psnr"]) and math.isinf(psnr_shown))
    assert r["ssim"] == pytest.approx(helpers.ssim(img, picture), abs=1e-12)
    # the table is rendered from the dict
    table = small.table.value
    assert f"{k} of 90" in table and f"{r['stored_values']:,}" in table
    assert f"{100 * r['energy']:.3f} %" in table and f"{r['relative_error']:.4f}" in table
    assert f"{r['ssim']:.4f}" in table
    assert ("∞" in table) if math.isinf(r["psnr"]) else (f"{r['psnr']:.2f} dB" in table)


def test_using_the_cache_from_code_does_not_disturb_the_display(small):
    small.set_rank(12)
    picture = shown(small).copy()
    small.cache.picture(70), small.images(33), small.readouts_for(80), small.cache.reconstruction(5)
    small.view.value = "error"  # redrawn from the picture on screen, rank 12
    expected = np.clip(helpers.ERROR_GAIN * np.abs(small.image.astype(int) - picture), 0, 255)
    assert np.array_equal(shown(small), expected)
    assert small.readouts["k"] == 12 and small.readouts["ssim"] == pytest.approx(helpers.ssim(small.image, picture))


def test_readouts_for_does_not_move_the_slider(small):
    before = shown(small).copy()
    r = small.readouts_for(60)
    assert r["k"] == 60 and r["ssim"] == pytest.approx(helpers.ssim(small.image, small.images(60)[0]))
    assert small.rank == 20 and np.array_equal(shown(small), before)


def test_full_rank_is_exact_or_within_one_level(small):
    small.set_rank(90)
    assert np.abs(shown(small).astype(int) - small.image).max() <= 1
    assert small.readouts["relative_error"] == pytest.approx(0, abs=1e-12)
    assert small.readouts["energy"] == pytest.approx(1.0)


# --- bounds, typed ranks and quick buttons ---------------------------------------


def test_bounds_and_typed_ranks_are_clamped(small):
    assert (small.slider.min, small.slider.max) == (1, 90)
    assert small.set_rank(1) == 1 and small.readouts["k"] == 1
    assert small.set_rank(90) == 90 and small.readouts["k"] == 90
    assert small.set_rank(0) == 1 and small.set_rank(10**9) == 90
    small.rank_box.value = 5000  # typing a rank that is too large
    assert small.rank_box.value == 90 and small.slider.value == 90 and small.readouts["k"] == 90
    small.rank_box.value = -3
    assert small.slider.value == 1 and small.readouts["k"] == 1
    small.rank_box.value = 42  # typing a valid rank moves the slider
    assert small.slider.value == 42 and small.readouts["k"] == 42


def test_a_rank_that_is_not_a_number_is_refused_cleanly(small):
    picture = shown(small).copy()
    for bad in ("abc", 2.5, None, True):
        assert small.set_rank(bad) == 20
        assert "whole number" in small.status.value and "⚠" in small.status.value
    assert np.array_equal(shown(small), picture)
    assert small.set_rank(np.int64(12)) == 12 and small.set_rank(30.0) == 30 and small.readouts["k"] == 30


def test_render_refuses_an_invalid_rank_with_the_range():
    explorer = helpers.RankExplorer(image=photo(40, 50), sources=False)
    with pytest.raises(ValueError, match="from 1 to 40"):
        explorer.render(41)
    explorer.close()


@pytest.mark.parametrize("shape", [(90, 120), (512, 512)])
def test_quick_buttons_are_the_quick_ranks_that_fit(shape):
    explorer = helpers.RankExplorer(image=photo(*shape), rank=3, sources=False)
    ranks = [int(b.description) for b in explorer.quick.children]
    assert ranks == [k for k in helpers.QUICK_RANKS if k <= min(shape)] and ranks
    for button in explorer.quick.children:
        button.click()
        assert explorer.rank == int(button.description) == explorer.readouts["k"] == explorer.picture.rank
    explorer.close()


# --- sources: samples and uploads --------------------------------------------------


def test_changing_the_sample_resets_the_range():
    explorer = helpers.RankExplorer(sample="camera", rank=500)
    assert explorer.slider.max == 512 and explorer.label == "camera"
    explorer.sample_picker.value = "document"
    m, n = helpers.sample_image("document").shape
    assert explorer.image.shape == (m, n)
    assert explorer.slider.max == explorer.rank_box.max == explorer.readouts["max_rank"] == min(m, n)
    assert explorer.rank == 500 and explorer.readouts["k"] == 500 and shown(explorer).shape == (m, n)
    explorer.sample_picker.value = "plaid"
    assert explorer.slider.max == min(helpers.sample_image("plaid").shape)
    assert "plaid" in explorer.status.value and "plaid" in repr(explorer)
    explorer.close()


def test_uploading_a_valid_png_switches_the_image(small):
    new = photo(64, 40, seed=3)  # 40 wide, 64 high: rank up to 40
    assert "64 × 40" in upload(small, png_bytes(new), "my photo.png")
    assert np.array_equal(small.image, new)
    assert small.slider.max == small.rank_box.max == small.readouts["max_rank"] == 40
    assert small.rank == 20 and shown(small).shape == (64, 40)
    assert "my photo.png" in small.status.value and "⚠" not in small.status.value
    assert small.sample_picker.value is None  # no sample is selected now
    assert [int(b.description) for b in small.quick.children] == [k for k in helpers.QUICK_RANKS if k <= 40]
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
        (png_bytes(np.zeros((1, 60), np.uint8)), "line.png"),
    ],
)
def test_a_bad_upload_shows_the_loaders_message_and_keeps_the_image(small, data, name):
    before_img, before_picture = small.image.copy(), shown(small).copy()
    with pytest.raises(helpers.ImageError) as caught:
        helpers.load_greyscale(data, name=name)
    with pytest.raises(ValueError, match=re.escape(str(caught.value))):  # the control shows this
        small.upload.on_file(name, data)
    assert np.array_equal(small.image, before_img) and np.array_equal(shown(small), before_picture)
    # the upload control says why; the status line still describes the picture on screen
    assert "⚠" not in small.status.value and "your image : 90 × 120 pixels, ranks 1 to 90" in status_text(small)
    assert small.slider.max == 90
    small.set_rank(3)  # still working
    assert small.readouts["k"] == 3 and not np.array_equal(shown(small), before_picture)


def test_a_too_large_upload_is_downscaled_with_the_notice_shown(small):
    y, x = np.mgrid[0:2000, 0:3000]
    big = ((x / 3000 * 180) + 40 * np.sin(y / 50.0) + 30).astype(np.uint8)  # smooth: a quick PNG
    data = png_bytes(big)
    _, notice = helpers.read_image(data, name="huge.png")
    upload(small, data, "huge.png")
    m, n = small.image.shape
    assert m * n <= helpers.MAX_PIXELS and m < 2000 and abs(n / m - 1.5) < 0.01
    assert notice.startswith("Notice: huge.png is 2000 × 3000 pixels") and notice in status_text(small)
    assert "⚠" not in small.status.value and small.slider.max == min(m, n)
    # caches sized for Binder's 2 GB: the partial sums' budget plus the factors and buffers
    assert small.cache.nbytes < CHECKPOINT_BUDGET + 8 * 4 * m * n
    small.set_rank(small.slider.max)
    assert small.readouts["k"] == min(m, n)


def test_the_display_is_short_and_has_a_static_picture(small):
    assert repr(small) == "RankExplorer(your image: 90 × 120 pixels, rank 20 of 90)"
    data, _ = DisplayFormatter().format(small)
    assert data["text/plain"] == repr(small)
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == small.widget.model_id
    assert np.array_equal(decode(__import__("base64").b64decode(data["image/png"])), shown(small))


def test_compact_version_has_no_sources():
    explorer = helpers.RankExplorer(sample="camera", rank=50, sources=False)
    assert explorer.sample_picker is None and explorer.upload is None
    parts = tree(explorer.widget)
    assert all(w in parts for w in (explorer.slider, explorer.picture, explorer.spectrum, explorer.table))
    assert not any(type(w).__name__ in ("Dropdown", "Upload", "FileUpload") for w in parts)
    explorer.close()


def test_an_all_black_image_works_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0 / 0
        explorer = helpers.RankExplorer(image=np.zeros((20, 30), np.uint8), rank=5, sources=False)
        r = explorer.readouts
        assert r["energy"] == 1.0 and r["relative_error"] == 0.0 and math.isinf(r["psnr"]) and r["ssim"] == 1.0
    assert "∞" in explorer.table.value
    explorer.close()


def test_the_explorer_refuses_what_is_not_a_uint8_matrix():
    for bad in (np.zeros((20, 30), np.float32), np.zeros((20, 30, 3), np.uint8)):
        with pytest.raises(helpers.ImageError, match="uint8"):
            helpers.RankExplorer(image=bad)
    with pytest.raises(helpers.ImageError, match="at least 2 pixels"):
        helpers.RankExplorer(image=np.zeros((1, 30), np.uint8))


def test_close_closes_every_widget_and_drops_the_cache():
    explorer = helpers.RankExplorer(image=photo(40, 60), rank=7)
    parts = tree(explorer.widget)
    assert all(w.comm is not None for w in parts)
    explorer.close()
    assert all(w.comm is None for w in parts)  # nothing left open in the kernel or the browser
    assert explorer.cache is None


def test_a_failure_while_drawing_is_logged_with_its_traceback(small, monkeypatch, caplog):
    def broken(k, **kwargs):
        raise RuntimeError("out of paint")

    monkeypatch.setattr(small.cache, "picture", broken)
    with caplog.at_level(logging.ERROR, logger="explorer"):
        small.slider.value = 33  # a slider move from the browser: the widget stays alive
    assert "out of paint" in small.status.value and "⚠" in small.status.value
    [record] = [r for r in caplog.records if "could not draw rank 33" in r.getMessage()]
    assert record.exc_info and record.exc_info[0] is RuntimeError


# --- drawing inside a running event loop (as in a kernel) ------------------------------


def in_loop(explorer, script):
    """Run ``await script(loop, painted)`` in an asyncio loop; ``painted`` collects
    (loop time, rank) each time the explorer sends the picture of a new rank."""
    painted = []

    async def main():
        loop = asyncio.get_running_loop()
        explorer.picture.observe(lambda change: painted.append((loop.time(), change.new)), "rank")
        await script(loop, painted)

    asyncio.run(main())


def test_set_rank_from_code_draws_at_once_in_a_running_loop(small):
    async def script(loop, painted):
        assert small.set_rank(30) == 30
        assert small.readouts["k"] == small.picture.rank == 30 and small.readouts["ssim"] is not None
        assert [rank for _, rank in painted] == [30]

    in_loop(small, script)


def test_a_burst_of_slider_moves_gives_one_render_of_the_latest_rank(small):
    reference = helpers.RankExplorer(image=small.image, rank=78, sources=False)

    async def script(loop, painted):
        renders = small.renders
        for k in range(30, 80, 3):  # 17 moves before the loop gets to run: one render, the latest
            small.slider.value = k
        assert small.renders == renders and not painted
        await asyncio.sleep(2 * small.FRAME_SECONDS)
        assert small.renders == renders + 1 and small.readouts["k"] == 78 == small.rank
        assert np.array_equal(shown(small), shown(reference))

    in_loop(small, script)
    reference.close()


def test_slider_moves_are_drawn_at_most_once_a_frame(small):
    async def script(loop, painted):
        start = loop.time()
        for k in range(21, 61):  # 40 moves arriving one at a time, as messages do
            small.slider.value = k
            await asyncio.sleep(0)
        await asyncio.sleep(3 * small.FRAME_SECONDS)
        elapsed = loop.time() - start
        assert painted[-1][1] == 60 == small.readouts["k"]  # the latest move is drawn
        # one render at once, then at most one per frame: however slow the machine is
        # renders start at least a frame apart, so there are at most 1 + elapsed / frame of them
        assert len(painted) <= 2 + elapsed / small.FRAME_SECONDS

    in_loop(small, script)


def test_ssim_waits_until_the_slider_rests(small):
    async def script(loop, painted):
        small.slider.value = 33
        await asyncio.sleep(0)
        [(drawn_at, rank)] = painted
        assert rank == 33 == small.readouts["k"]
        if loop.time() - drawn_at < helpers.SETTLE_SECONDS:  # unless the machine stalled that long
            assert small.readouts["ssim"] is None and "…" in small.table.value
        await asyncio.sleep(helpers.SETTLE_SECONDS * 1.5)
        assert small.readouts["ssim"] == pytest.approx(helpers.ssim(small.image, shown(small)))
        assert "…" not in small.table.value

    in_loop(small, script)


def test_switching_images_drops_a_queued_move(small):
    async def script(loop, painted):
        small.slider.value = 70  # queued, not drawn yet
        upload(small, png_bytes(photo(64, 40, seed=5)), "new.png")  # the new image is drawn at once
        renders = small.renders
        assert small.rank == small.picture.rank == 40 and np.array_equal(shown(small), small.images(40)[0])
        await asyncio.sleep(3 * small.FRAME_SECONDS)
        assert small.renders == renders  # the queued move for the old image did nothing
        assert np.array_equal(shown(small), small.images(40)[0])

    in_loop(small, script)


def test_a_queued_move_after_close_does_nothing():
    explorer = helpers.RankExplorer(image=photo(40, 60), rank=7)

    async def script(loop, painted):
        explorer.slider.value = 30
        renders = explorer.renders
        explorer.close()
        await asyncio.sleep(3 * explorer.FRAME_SECONDS)
        assert explorer.renders == renders and not painted

    in_loop(explorer, script)


def test_without_an_event_loop_every_move_is_drawn_at_once(small):
    renders = small.renders
    for k in (3, 4, 5):
        small.slider.value = k
        assert small.readouts["k"] == small.picture.rank == k and small.readouts["ssim"] is not None
    assert small.renders == renders + 3


def test_coalescing_in_a_real_kernel():
    """A burst of slider updates sent to ipykernel as comm messages, as the browser would.

    The kernel is kept busy (a cell that sleeps) while the burst is sent, so the messages
    are all waiting when it gets to them, however slowly this machine runs.
    """
    jupyter_client = pytest.importorskip("jupyter_client.manager")
    km, kc = jupyter_client.start_new_kernel(kernel_name="python3")
    try:

        def run(code, wait=True):
            return run_in_kernel(kc, code, wait)

        comm_id = run(
            "import helpers\n"
            "e = helpers.RankExplorer(sample='camera', rank=50, sources=False)\n"
            "before = e.renders\n"
            "print(e.slider.comm.comm_id, end='')"
        )
        ranks = list(range(100, 400, 10))
        run("import time; time.sleep(2)", wait=False)  # busy while the burst arrives
        for k in ranks:  # 30 moves
            data = {"method": "update", "state": {"value": k}, "buffer_paths": []}
            kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))
        deadline = time.time() + 120
        while True:
            out = run("print(e.readouts['k'], e.readouts['ssim'] is not None, e.renders - before, end='')")
            shown_rank, settled, renders = out.split()
            if (shown_rank == str(ranks[-1]) and settled == "True") or time.time() > deadline:
                break
            time.sleep(0.2)
        assert shown_rank == str(ranks[-1]) and settled == "True"  # latest wins, SSIM after settling
        assert 1 <= int(renders) < len(ranks)  # stale moves were merged (without a loop all 30 are drawn)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# --- the cache of partial sums ---------------------------------------------------------


def test_checkpoints_reconstruct_every_rank():
    img = photo(150, 200)
    cache = helpers.RankCache(img, spacing=16)  # partial sums at 16, 32, ..., 144 and 150
    A = helpers.to_unit(img)
    d = helpers.svd(A)
    assert cache.checkpoint_ranks == [*range(16, 150, 16), 150]
    for k in range(1, 151):
        direct = helpers.reconstruct(d, k)
        # float32 round-off of sums of up to 150 rank-one layers of values in [0, 1]
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
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # not the explorer's 1, so that a missing restore shows
    try:
        explorer = helpers.RankExplorer(image=photo(40, 60), rank=7, sources=False)
        assert torch.get_num_threads() == 2
        explorer.set_rank(30)
        explorer.cache.reconstruction(11)
        assert torch.get_num_threads() == 2
        explorer.close()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("m, n", [(512, 512), (1000, 1000), (2048, 2048), (1448, 2896)])
def test_checkpoint_spacing_fits_the_memory_budget(m, n):
    r = min(m, n)
    spacing = checkpoint_spacing(m, n, r)
    assert spacing >= 32
    assert len(range(spacing, r, spacing)) * 4 * m * n <= CHECKPOINT_BUDGET  # float32 partial sums


# --- the picture at the size the screen shows -------------------------------------------


@pytest.mark.parametrize("shape, size", [((300, 400), (120, 160)), ((257, 131), (100, 51))])
def test_the_picture_at_view_size_is_the_approximation_averaged_then_rounded(shape, size):
    img = photo(*shape)
    cache = helpers.RankCache(img, spacing=16)
    rows, cols = size
    for k in (1, 7, 16, 40, 100, min(shape)):
        small = cache.picture(k, size=size).astype(int)
        averaged = cv2.resize(cache.reconstruction(k), (cols, rows), interpolation=cv2.INTER_AREA)
        expected = helpers.to_uint8(averaged).astype(int)
        # the same numbers, summed in another order: a rounding may flip at a half level
        assert np.abs(small - expected).max() <= 1 and (small != expected).mean() < 0.01, f"k={k}"
        # and within one grey level of the full picture scaled down, where A_k is inside [0, 1]
        scaled = cv2.resize(cache.picture(k), (cols, rows), interpolation=cv2.INTER_AREA).astype(int)
        inside = cv2.resize(((cache.reconstruction(k) >= 0) & (cache.reconstruction(k) <= 1)).astype(np.float32),
                            (cols, rows), interpolation=cv2.INTER_AREA) == 1
        assert np.abs(small - scaled)[inside].max() <= 1, f"k={k}"
    assert cache.picture(5, size=shape).shape == shape  # the full size is the full picture
    assert np.array_equal(cache.picture(5, size=shape), cache.picture(5))


def page_picture(picture, k):
    """The grey picture the page rebuilds at rank k from the factors it was sent, as
    picture.js does: float16 factors, a float32 sum, 255 x A_k rounded half to even, clipped."""
    planes, rank, rows, cols = picture.factor_shape
    values = np.frombuffer(picture.factors, "<f2").astype(np.float32).reshape(planes, -1)[0]
    us, vh = values[:rank * rows].reshape(rank, rows), values[rank * rows:].reshape(rank, cols)
    return np.clip(np.rint(255 * (us[:k].T @ vh[:k])), 0, 255).astype(int)


def test_a_scaled_down_view_gets_the_factors_at_its_size_and_no_pixels_per_move():
    img = photo(300, 400)
    explorer = helpers.RankExplorer(image=img, rank=20, sources=False)
    try:
        assert explorer.picture.live and explorer.picture.pixels == b""  # factors, no pixels
        explorer.picture.view_size = [200, 600]  # as the browser reports it: 150 x 200 on screen
        assert explorer.picture.factor_shape == [1, 300, 150, 200]  # every rank, at the size shown
        assert explorer.factor_bytes == 2 * 300 * (150 + 200)  # float16: k(m + n) values
        sent = []
        explorer.picture.observe(lambda change: sent.append(change.name), ["pixels", "factors"])
        for k in (33, 1, 300):
            explorer.set_rank(k)
            assert explorer.picture.rank == k  # the rank the readouts are for
            small = explorer.cache.picture(k, size=(150, 200)).astype(int)
            assert np.abs(page_picture(explorer.picture, k) - small).max() <= 1, k
        assert sent == []  # a move sends neither pixels nor factors
        # the full picture is what the readouts, the PNG copy and the 1:1 view use
        assert np.array_equal(decode(explorer.picture.value), explorer.images(300)[0])
        explorer.set_rank(33)
        assert explorer.readouts["psnr"] == pytest.approx(helpers.psnr(img, explorer.images(33)[0]), abs=1e-9)
        explorer.picture.one_to_one = True
        assert np.frombuffer(explorer.picture.pixels, np.uint8).size == 300 * 400
        assert np.array_equal(shown(explorer), explorer.images(33)[0])
        explorer.picture.one_to_one = False
        explorer.view.value = "error"  # not linear in A_k: the full error view, scaled down, as pixels
        assert not explorer.picture.live
        error = cv2.resize(explorer.images(33)[1], (200, 150), interpolation=cv2.INTER_AREA)
        assert np.array_equal(shown(explorer), error)
        explorer.view.value = "reconstruction"  # back to the factors the page has
        assert explorer.picture.live and sent.count("factors") == 0
    finally:
        explorer.close()


def test_before_a_view_is_known_the_saved_factors_fit_their_budget():
    explorer = helpers.RankExplorer(sample="camera", rank=50, sources=False)
    try:
        planes, rank, rows, cols = explorer.picture.factor_shape
        assert (planes, rows, cols) == (1, 512, 512) and explorer.factor_bytes <= SAVED_FACTOR_BYTES
        assert rank == SAVED_FACTOR_BYTES // (2 * (512 + 512)) and explorer.picture.full_rank == 512
        assert np.abs(page_picture(explorer.picture, 50) - explorer.images(50)[0]).max() <= 1
    finally:
        explorer.close()
