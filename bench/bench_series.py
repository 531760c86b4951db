"""Time and peak memory of the whole series: each notebook executed top to bottom
in a fresh kernel, as `make notebooks` does, but into a scratch copy.

Peak memory is the kernel process's resident set size, sampled every 50 ms.
Targets (DESIGN.md): the series in <= 60 s on 2 cores, peak memory <= 1 GB.

    make bench          # runs bench_slider.py and this
"""

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
JUPYTER = Path(sys.executable).with_name("jupyter")


def peak_rss_of_children(process, stop, peak):
    """Sample the largest resident set among ``process``'s descendants (the kernel)."""
    parent = psutil.Process(process.pid)
    while not stop.is_set():
        try:
            for child in parent.children(recursive=True):
                try:
                    peak[0] = max(peak[0], child.memory_info().rss)
                except psutil.Error:
                    pass
        except psutil.Error:
            break
        time.sleep(0.05)


def run(notebook, folder):
    copy = Path(folder) / notebook.name
    shutil.copy(notebook, copy)
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(JUPYTER), "nbconvert", "--to", "notebook", "--execute", "--inplace",
         "--log-level=ERROR", "--ExecutePreprocessor.timeout=300", str(copy)],
        cwd=notebook.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=peak_rss_of_children, args=(process, stop, peak))
    sampler.start()
    _, errors = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"{notebook.name} failed:\n{errors}")
    return time.perf_counter() - start, peak[0]


def main():
    notebooks = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    total, peak_all = 0.0, 0
    with tempfile.TemporaryDirectory() as folder:
        for notebook in notebooks:
            seconds, peak = run(notebook, folder)
            total += seconds
            peak_all = max(peak_all, peak)
            print(f"{notebook.name:32s} {seconds:5.1f} s   kernel peak {peak / 2**20:6.0f} MiB")
    print(f"series: {total:.1f} s on {psutil.cpu_count()} cores (target 60 s), "
          f"peak memory {peak_all / 2**20:.0f} MiB (target 1024 MiB)")


if __name__ == "__main__":
    main()
