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
#: With "grey" after the photo: the grey explorer, given the photograph in grey as a PNG upload.
EXPLORER_CASE = """
import asyncio, sys, time
import cv2
from explorer import ColourExplorer, RankExplorer
from explorer.widget import SETTLE_SECONDS

photo, kind = sys.argv[1:3]
if kind == "colour":
    data, name = open(photo, "rb").read(), "upload.jpg"
else:
    data, name = cv2.imencode(".png", cv2.imread(photo, cv2.IMREAD_GRAYSCALE))[1].tobytes(), "upload.png"

async def main():
    explorer = ColourExplorer(sample="astronaut") if kind == "colour" else RankExplorer(sample="camera")
    caches = lambda: [explorer.cache] + ([explorer.colour_cache] if kind == "colour" else [])
    assert explorer._load(data, label=name, name=name, upload=True), explorer.status.value
    start = time.perf_counter()
    while not all(cache.exact for cache in caches()):
        assert time.perf_counter() - start < 600, "the exact SVDs took over 10 minutes"
        await asyncio.sleep(0.2)
    for mode in ("colour", "grey") if kind == "colour" else ("grey",):
        if kind == "colour":
            explorer.mode.value = mode
        for rank in (50, 700, explorer.slider.max):
            explorer.slider.value = rank
            await asyncio.sleep(SETTLE_SECONDS + 0.5)  # the slider rests: SSIM is computed
            assert explorer.readouts.get("ssim") is not None, (mode, rank)
    print("shape", explorer.cache.shape, file=sys.stderr)

asyncio.run(main())
"""

#: The explorer cases: name -> (label, the EXPLORER_CASE kind).
EXPLORER_CASES = {"explorer": ("explorer, 24 MP colour upload", "colour"),
                  "grey-explorer": ("grey explorer, 24 MP grey upload", "grey")}


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


def explorer_peak(photo: Path, kind: str = "colour") -> float:
    """Peak MB of a fresh process that loads the JPEG `photo` as an upload into ColourExplorer
    (``kind="grey"``: its grey version into RankExplorer)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return peak_of([sys.executable, "-c", EXPLORER_CASE, str(photo), kind], env)


def notebook_peak(path: Path) -> float:
    """Peak MB of a Run All of `path` (default threads; nbconvert's kernel is the largest process)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = Path("/tmp") / f"bench_memory_{path.name}"
    return peak_of([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                    "--log-level=ERROR", "--ExecutePreprocessor.timeout=600", f"--output={out}", str(path)], env)


def case_peak(name: str, photo: str = "") -> float:
    """Peak MB of one case: "explorer" or "grey-explorer" (given the photo), or a notebook's file name."""
    if name in EXPLORER_CASES:
        return explorer_peak(Path(photo), EXPLORER_CASES[name][1])
    return notebook_peak(ROOT / "notebooks" / name)


def main(which: str = "all") -> float:
    names = []
    if which in ("all", "explorer"):
        names += list(EXPLORER_CASES)
    if which in ("all", "notebooks"):
        names += [nb.name for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    worst = 0.0
    folder = tempfile.TemporaryDirectory()
    photo = Path(folder.name) / "upload.jpg"
    if any(name in EXPLORER_CASES for name in names):
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
        label = EXPLORER_CASES[name][0] if name in EXPLORER_CASES else f"notebook {name}"
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
