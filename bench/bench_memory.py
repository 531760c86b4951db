"""Peak memory of one kernel (issue 20): each notebook's Run All, and the colour explorer
given a 24-megapixel colour upload. Each case runs in a fresh process; its peak is the
kernel's largest resident set (getrusage ru_maxrss), which must stay <= 1 GB. The grey
explorer given the same photograph in grey is measured beside it.

    .venv/bin/python bench/bench_memory.py            # every case
    .venv/bin/python bench/bench_memory.py explorer   # the explorer cases only (colour, grey)
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MB = 1024

#: A 6000 x 4000 colour photograph as the upload control hands it over (the file's bytes),
#: then the explorer inside a running event loop, as in a kernel: the randomized first
#: picture, then the exact SVDs on the background thread; then what a student does next: the
#: slider moved and left to rest (SSIM), in colour, then in grey (grey's partial sums are built).
EXPLORER_CASE = """
import asyncio, sys, time
from explorer import ColourExplorer
from explorer.widget import SETTLE_SECONDS

data = open(sys.argv[1], "rb").read()

async def main():
    explorer = ColourExplorer(sample="astronaut")
    assert explorer._load(data, label="upload.jpg", name="upload.jpg", upload=True), explorer.status.value
    start = time.perf_counter()
    while not (explorer.colour_cache.exact and explorer.cache.exact):
        assert time.perf_counter() - start < 600, "the exact SVDs took over 10 minutes"
        await asyncio.sleep(0.2)
    for mode in ("colour", "grey"):
        explorer.mode.value = mode
        for rank in (50, 700, explorer.slider.max):
            explorer.slider.value = rank
            await asyncio.sleep(SETTLE_SECONDS + 0.5)  # the slider rests: SSIM is computed
            assert explorer.readouts.get("ssim") is not None, (mode, rank)
    print("shape", explorer.colour_cache.shape, file=sys.stderr)

asyncio.run(main())
"""

#: The same for the grey explorer, given the photograph's grey version as a PNG upload.
GREY_EXPLORER_CASE = """
import asyncio, sys, time
import cv2
from explorer import RankExplorer
from explorer.widget import SETTLE_SECONDS

data = cv2.imencode(".png", cv2.imread(sys.argv[1], cv2.IMREAD_GRAYSCALE))[1].tobytes()

async def main():
    explorer = RankExplorer(sample="camera")
    assert explorer._load(data, label="upload.png", name="upload.png", upload=True), explorer.status.value
    start = time.perf_counter()
    while not explorer.cache.exact:
        assert time.perf_counter() - start < 600, "the exact SVD took over 10 minutes"
        await asyncio.sleep(0.2)
    for rank in (50, 700, explorer.slider.max):
        explorer.slider.value = rank
        await asyncio.sleep(SETTLE_SECONDS + 0.5)  # the slider rests: SSIM is computed
        assert explorer.readouts.get("ssim") is not None, rank
    print("shape", explorer.cache.shape, file=sys.stderr)

asyncio.run(main())
"""


def peak_of(argv, env=None) -> float:
    """Run argv to completion; the largest resident set of it or any process it waited for, MB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(argv, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert after >= before
    return after / 1024  # ru_maxrss is in KiB on Linux


def photo_24mp(path: Path) -> Path:
    """Write a 6000 x 4000 colour JPEG (smooth colour waves plus noise) to `path`."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:6000, 0:4000].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / 300 + c) * np.cos(y / 500 - c) for c in range(3)], axis=-1)
    rgb += np.random.default_rng(0).normal(0, 12, rgb.shape).astype(np.float32)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)
    return path


def explorer_peak(photo: Path, case: str = EXPLORER_CASE) -> float:
    """Peak MB of a fresh process that loads the JPEG `photo` as an upload into ColourExplorer
    (or runs another ``case`` given the photo)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return peak_of([sys.executable, "-c", case, str(photo)], env)


def notebook_peak(path: Path) -> float:
    """Peak MB of a Run All of `path` (default threads; nbconvert's kernel is the largest process)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = Path("/tmp") / f"bench_memory_{path.name}"
    return peak_of([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                    "--log-level=ERROR", "--ExecutePreprocessor.timeout=600", f"--output={out}", str(path)], env)


def case_peak(name: str, photo: str = "") -> float:
    """Peak MB of one case: "explorer" or "grey-explorer" (given the photo), or a notebook's file name."""
    if name in ("explorer", "grey-explorer"):
        return explorer_peak(Path(photo), EXPLORER_CASE if name == "explorer" else GREY_EXPLORER_CASE)
    return notebook_peak(ROOT / "notebooks" / name)


def main(which: str = "all") -> float:
    names = []
    if which in ("all", "explorer"):
        names += ["explorer", "grey-explorer"]
    if which in ("all", "notebooks"):
        names += [nb.name for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    worst = 0.0
    folder = tempfile.TemporaryDirectory()
    photo = Path(folder.name) / "upload.jpg"
    if "explorer" in names or "grey-explorer" in names:
        # written by another process: a child starts as a copy of its parent's memory, and
        # ru_maxrss keeps that size across exec, so each case's parent must stay small
        subprocess.run([sys.executable, __file__, "--photo", str(photo)], check=True)
    for name in names:
        # ru_maxrss of children is a maximum over all of them: each case gets its own parent
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--one", name, str(photo)], check=True,
                             capture_output=True, text=True)
        peak = float(out.stdout)
        worst = max(worst, peak)
        label = {"explorer": "explorer, 24 MP colour upload",
                 "grey-explorer": "grey explorer, 24 MP grey upload"}.get(name, f"notebook {name}")
        print(f"{label:44s} peak {peak:6.0f} MB  ({time.perf_counter() - start:.0f} s)", flush=True)
    folder.cleanup()
    print(f"per-kernel peak: worst {worst:.0f} MB (limit {LIMIT_MB} MB)")
    return worst


if __name__ == "__main__":
    if sys.argv[1:2] == ["--photo"]:
        photo_24mp(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["--one"]:
        print(case_peak(*sys.argv[2:]))
    else:
        main(*sys.argv[1:])
