"""The explorer's first picture after an upload or a sample switch (issue 12, item 4).

In a running event loop (as in a kernel) a large image is shown first from the leading
triplets of ``helpers.randomized_svd``; the exact SVD runs on a background thread and
replaces them when it is in. These tests drive the explorer in an asyncio loop, as
tests/test_explorer.py does. To decide when the background SVD may finish, a test can
keep the explorer's one background thread busy with a job that waits on a gate
(``background_busy``): the explorer's own job queues behind it.
"""

import asyncio
import contextlib
import threading
import time

import numpy as np
import pytest
from explorer_support import photo, png_bytes, run_in_kernel, shown, status_text

import explorer.cache as cache_module
import helpers
from explorer.cache import RankCache, exact_cache_soon

FIRST_RANK = 20  # the tests' APPROXIMATE_RANK: small images give the fast path quickly


@contextlib.contextmanager
def background_busy():
    """Keep the explorer's background thread busy until the gate is set (or the block ends)."""
    gate = threading.Event()
    blocker = exact_cache_soon(np.zeros((2, 2), np.uint8), wanted=lambda: gate.wait(60) and False)
    try:
        yield gate
    finally:
        gate.set()
        assert blocker.result(60) is None  # the blocker skips its own job


async def until(condition, timeout=120):
    """Let the loop run until ``condition()`` holds (the background SVD is in)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "the exact SVD did not arrive"
        await asyncio.sleep(0.01)


async def background_idle():
    """Wait until every job queued on the background thread so far is done, and its
    result handed to the loop."""
    await asyncio.wrap_future(exact_cache_soon(np.zeros((2, 2), np.uint8), wanted=lambda: False))
    for _ in range(3):
        await asyncio.sleep(0)


def run_in_loop(explorer, script):
    """Run ``await script(painted)``; ``painted`` collects (rank, picture shape, exact factors?)
    each time the explorer shows a new picture (the readouts are set just before)."""
    painted = []

    async def main():
        explorer.picture.observe(lambda change: painted.append(
            (explorer.readouts["k"], shown(explorer).shape, explorer.cache.exact)), "shows")
        await script(painted)

    asyncio.run(main())


@pytest.fixture
def explorer():
    """An explorer on a small photo whose uploads take the fast path (any size, first rank 20)."""
    e = helpers.RankExplorer(image=photo(90, 120), rank=60)  # clamped to FIRST_RANK by a fast upload
    e.APPROXIMATE_FROM_PIXELS = 0
    e.APPROXIMATE_RANK = FIRST_RANK
    yield e
    e.close()


def upload(explorer, img, name="new.png"):
    return explorer.upload.on_file(name, png_bytes(img))


def approx_picture(img, k):
    """to_uint8 of the rank-k reconstruction from randomized_svd's FIRST_RANK triplets."""
    d = helpers.randomized_svd(helpers.to_unit(img), FIRST_RANK)
    return helpers.to_uint8(helpers.reconstruct(d, k))


def exact_picture(img, k):
    return helpers.to_uint8(helpers.reconstruct(helpers.svd(helpers.to_unit(img)), k))


def close_pictures(a, b):
    """Equal up to float32 sums taken in another order: a pixel may round the other way, by one level."""
    return a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1 and np.mean(a != b) < 0.01


def test_first_picture_is_randomized_then_the_exact_factors_replace_it(explorer):
    img = photo(300, 240, seed=1)

    async def script(painted):
        with background_busy() as gate:
            assert upload(explorer, img) == "new.png: 300 × 240 pixels, shown"
            # at once: the picture from the randomized factors, ranks 1..FIRST_RANK only
            assert not explorer.cache.exact and explorer.cache.max_rank == FIRST_RANK
            assert explorer.slider.max == explorer.rank_box.max == FIRST_RANK == explorer.rank
            assert painted == [(FIRST_RANK, (300, 240), False)]
            assert close_pictures(shown(explorer), approx_picture(img, FIRST_RANK))
            assert not close_pictures(shown(explorer), exact_picture(img, FIRST_RANK))  # really another picture
            assert explorer.readouts["factors"] == "randomized"
            assert "randomized SVD" in explorer.table.value and "exact SVD is computing" in explorer.table.value
            assert "randomized SVD" in explorer.caption.value
            assert "ranks 1 to 20 for now, from a randomized SVD" in status_text(explorer)
            assert "ranks up to 240, is computing in the background" in status_text(explorer)
            # the spectrum comes right after the picture, and SSIM once the slider rests
            spectrum = bytes(explorer.spectrum.value)
            await asyncio.sleep(0)
            assert bytes(explorer.spectrum.value) != spectrum
            await until(lambda: explorer.readouts["ssim"] is not None)
            assert explorer.readouts["ssim"] == pytest.approx(helpers.ssim(img, shown(explorer)))
            assert not explorer.cache.exact  # still waiting for the gate
            gate.set()
            await until(lambda: explorer.cache.exact)
        # the exact factors: every rank, the same rank redrawn, readouts say so
        assert explorer.slider.max == explorer.rank_box.max == 240 and explorer.rank == FIRST_RANK
        assert painted[-1] == (FIRST_RANK, (300, 240), True)
        assert close_pictures(shown(explorer), exact_picture(img, FIRST_RANK))
        assert explorer.readouts["factors"] == "exact" and explorer.readouts["max_rank"] == 240
        assert "exact SVD (all 240 singular values)" in explorer.table.value
        assert "randomized" not in explorer.caption.value
        text = status_text(explorer)
        assert "ranks 1 to 240; SVD and cache ready" in text and "first picture came from a randomized SVD" in text
        assert [str(k) for k in helpers.QUICK_RANKS if k <= 240] == [b.description for b in explorer.quick.children]
        explorer.set_rank(200)  # ranks above the first ones work now
        assert explorer.readouts["k"] == 200 and close_pictures(shown(explorer), exact_picture(img, 200))

    run_in_loop(explorer, script)


def test_randomized_readouts_are_those_of_the_picture_shown(explorer):
    img = photo(300, 240, seed=2)
    A = helpers.to_unit(img)
    exact = RankCache(img)

    async def script(painted):
        with background_busy():
            upload(explorer, img)
            cache = explorer.cache
            assert not cache.exact
            for k in (1, 5, FIRST_RANK):
                explorer.set_rank(k)
                r = explorer.readouts
                approx = cache.reconstruction(k)
                true_error = np.linalg.norm(A - approx) / np.linalg.norm(A)
                # float32 factors: A~_k and the sigma~_i^2 carry relative round-off ~1e-6 each;
                # their sums over <= k terms stay far inside 1e-4 of the squared relative error
                assert abs(r["relative_error"] ** 2 - true_error**2) < 1e-4
                assert r["energy"] == pytest.approx(1 - r["relative_error"] ** 2, abs=1e-9)  # both from ||A||^2
                # Eckart-Young: no rank-k picture beats the exact truncation (same float32 margin)
                assert r["relative_error"] ** 2 >= exact.relative_error(k) ** 2 - 1e-4
                assert r["psnr"] == pytest.approx(helpers.psnr(img, shown(explorer)))

    run_in_loop(explorer, script)


def test_the_slider_works_while_the_exact_svd_runs(explorer):
    img = photo(300, 240, seed=3)

    async def script(painted):
        with background_busy() as gate:
            upload(explorer, img)
            for k in (3, 11, 17, 250):  # 250 is clamped to the ranks known so far
                explorer.slider.value = k
                await asyncio.sleep(3 * explorer.FRAME_SECONDS)
                assert explorer.readouts["k"] == explorer.picture.rank == min(k, FIRST_RANK)
                assert np.array_equal(shown(explorer), explorer.images(min(k, FIRST_RANK))[0])
            assert [rank for rank, _, _ in painted] == [FIRST_RANK, 3, 11, 17, FIRST_RANK]
            assert not any(exact for _, _, exact in painted) and not explorer.cache.exact
            gate.set()
            await until(lambda: explorer.cache.exact)
        explorer.slider.value = 150
        await asyncio.sleep(3 * explorer.FRAME_SECONDS)
        assert explorer.readouts["k"] == 150 and painted[-1] == (150, (300, 240), True)

    run_in_loop(explorer, script)


def test_a_sample_switch_while_the_loop_runs_is_fast_then_exact():
    """The real thing, with the explorer's own settings: hubble (1000 x 872 pixels)."""
    explorer = helpers.RankExplorer(sample="camera", rank=60)
    assert explorer.cache.exact  # built before any loop runs: the exact SVD at once

    async def script(painted):
        explorer.sample_picker.value = "hubble"
        assert not explorer.cache.exact and explorer.cache.max_rank == explorer.APPROXIMATE_RANK
        assert painted == [(60, (872, 1000), False)]
        await until(lambda: explorer.cache.exact)
        assert explorer.cache.max_rank == explorer.slider.max == 872
        assert painted[-1] == (60, (872, 1000), True)
        assert np.array_equal(shown(explorer), explorer.images(60)[0])

    run_in_loop(explorer, script)
    explorer.close()


def test_switching_images_while_the_exact_svd_runs_drops_its_result(explorer):
    first, second, small = photo(300, 240, seed=4), photo(260, 310, seed=5), photo(50, 70, seed=6)

    async def script(painted):
        with background_busy():
            upload(explorer, first, "first.png")
            upload(explorer, second, "second.png")  # while the first one's exact SVD waits
            assert not explorer.cache.exact and explorer.cache.shape == (260, 310)
        await until(lambda: explorer.cache.exact)
        await background_idle()
        assert explorer.label == "second.png" and explorer.cache.shape == (260, 310)
        assert [shape for _, shape, _ in painted] == [(300, 240), (260, 310), (260, 310)]
        assert np.array_equal(explorer.image, second)
        assert np.array_equal(shown(explorer), explorer.images(FIRST_RANK)[0])
        # and a small image shown exactly at once voids a background SVD in progress
        with background_busy():
            upload(explorer, first, "first.png")
            explorer.APPROXIMATE_FROM_PIXELS = 10_000  # the small one is exact at once
            upload(explorer, small, "small.png")
            assert explorer.cache.exact and explorer.cache.shape == (50, 70)
        renders = explorer.renders
        await background_idle()
        assert explorer.renders == renders and explorer.label == "small.png" and explorer.slider.max == 50
        assert painted[-1][1] == (50, 70)

    run_in_loop(explorer, script)


def test_closing_while_the_exact_svd_runs_paints_nothing(explorer):
    async def script(painted):
        with background_busy():
            upload(explorer, photo(300, 240, seed=7))
            renders, count = explorer.renders, len(painted)
            explorer.close()
        await background_idle()
        assert explorer.cache is None and explorer.renders == renders and len(painted) == count

    run_in_loop(explorer, script)


def test_without_a_running_loop_an_upload_is_exact_at_once(explorer):
    img = photo(300, 240, seed=8)
    upload(explorer, img)
    assert explorer.cache.exact and explorer.slider.max == 240
    assert explorer.readouts["factors"] == "exact" and "ranks 1 to 240; SVD and cache ready" in status_text(explorer)
    assert "randomized" not in status_text(explorer)


def test_constructing_the_explorer_in_a_running_loop_is_exact(monkeypatch):
    """A notebook cell runs in the kernel's loop: its explorer starts exact, so outputs are stable."""
    monkeypatch.setattr(helpers.RankExplorer, "APPROXIMATE_FROM_PIXELS", 0)

    async def main():
        e = helpers.RankExplorer(image=photo(300, 240), rank=30)
        assert e.cache.exact and e.readouts["factors"] == "exact" and e.slider.max == 240
        e.close()

    asyncio.run(main())


def test_randomized_cache_agrees_with_randomized_svd():
    img = photo(200, 150, seed=9)
    cache = RankCache(img, leading=FIRST_RANK)
    d = helpers.randomized_svd(helpers.to_unit(img), FIRST_RANK)
    assert not cache.exact and cache.max_rank == FIRST_RANK and cache.full_rank == 150
    for k in (1, 7, FIRST_RANK):
        # partial sums against a plain product: float32 sums of <= k terms in another order
        assert np.allclose(cache.reconstruction(k), helpers.reconstruct(d, k), atol=1e-5)
    with pytest.raises(ValueError, match="from 1 to 20"):
        cache.picture(FIRST_RANK + 1)
    assert RankCache(img, leading=150).exact  # all the ranks: the exact SVD


def test_a_failed_exact_svd_keeps_the_randomized_ranks(explorer, monkeypatch, caplog):
    def fails(img):
        raise MemoryError("no room for the exact SVD")

    monkeypatch.setattr(cache_module, "RankCache", fails)  # what the background thread builds

    async def script(painted):
        upload(explorer, photo(300, 240, seed=10))
        await background_idle()
        assert not explorer.cache.exact and explorer.slider.max == FIRST_RANK
        assert "the exact SVD failed (MemoryError: no room for the exact SVD)" in status_text(explorer)
        assert "ranks 1 to 20 from the randomized SVD remain" in status_text(explorer)
        assert "exact SVD of new.png failed" in caplog.text
        explorer.set_rank(7)  # the slider still works
        assert explorer.readouts["k"] == 7 and explorer.readouts["factors"] == "randomized"

    run_in_loop(explorer, script)


def test_a_sample_switch_in_a_real_kernel_shows_randomized_then_exact():
    """The dropdown changed by a comm message, as the browser sends it: the kernel's own loop
    runs the fast path, and the background thread's result comes back to it."""
    jupyter_client = pytest.importorskip("jupyter_client.manager")
    km, kc = jupyter_client.start_new_kernel(kernel_name="python3")
    try:

        def run(code):
            return run_in_kernel(kc, code)

        comm_id, index = run(
            "import helpers\n"
            "e = helpers.RankExplorer(sample='camera', rank=60)\n"
            "painted = []\n"
            "e.picture.observe(lambda c: painted.append((e.readouts['k'], e.cache.exact)), 'shows')\n"
            "print(e.sample_picker.comm.comm_id, list(e.sample_picker.options).index('hubble'), end='')"
        ).split()
        data = {"method": "update", "state": {"index": int(index)}, "buffer_paths": []}
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))
        deadline = time.time() + 120
        while True:
            out = run("print(e.label, e.cache.exact, e.slider.max, painted, end='')")
            if out.startswith("hubble True") or time.time() > deadline:
                break
            time.sleep(0.2)
        assert out == "hubble True 872 [(60, False), (60, True)]"  # randomized first, then exact
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
