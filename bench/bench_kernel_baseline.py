"""What one notebook kernel's memory is made of before any picture is loaded (issue 20).

A fresh ipykernel is started (as JupyterLab starts one), then the series' imports are run in
it one at a time, in the order a notebook's first cell runs them; after each, the kernel's
memory is read with psutil. Three measures, in MB:

- RSS: pages the kernel has in memory, its share of shared libraries counted in full;
- USS: pages only this kernel has (what shutting it down would give back);
- PSS: USS plus each shared page divided by the number of processes that map it. Summed over
  a server and its kernels this counts every page once, as Binder's cgroup limit does.

    .venv/bin/python bench/bench_kernel_baseline.py
"""

from __future__ import annotations

import sys
import time

import psutil
from jupyter_client.manager import KernelManager

MB = 2**20

#: Each step's code, cumulative, in the order the notebooks import.
STEPS = [
    ("numpy", "import numpy"),
    ("PIL", "from PIL import Image"),
    ("cv2 (OpenCV)", "import cv2"),
    ("torch", "import torch"),
    ("matplotlib (inline)", "import matplotlib.pyplot as plt\n%matplotlib inline"),
    ("helpers", "import helpers"),
    ("ipywidgets", "import ipywidgets"),
    ("explorer (RankExplorer)", "from explorer import RankExplorer"),
    ("one torch matmul, 2 threads", "torch.set_num_threads(2)\n_ = torch.ones(512, 512) @ torch.ones(512, 512)"),
]


def memory(pid: int) -> tuple[float, float, float]:
    """(RSS, USS, PSS) of process `pid`, MB."""
    info = psutil.Process(pid).memory_full_info()
    return info.rss / MB, info.uss / MB, info.pss / MB


def run(client, code: str) -> None:
    """Run `code` in the kernel and fail loudly if it raised."""
    reply = client.execute_interactive(code, timeout=300, output_hook=lambda msg: None)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r} failed: {reply['content']}")


def main() -> list[tuple[str, float, float, float]]:
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        time.sleep(1)
        pid = manager.provisioner.pid
        rows = [("bare ipykernel", *memory(pid))]
        for label, code in STEPS:
            run(client, code)
            rows.append((label, *memory(pid)))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    print(f"{'kernel after':32s} {'RSS':>7s} {'USS':>7s} {'PSS':>7s}   {'+RSS':>6s} {'+USS':>6s} {'+PSS':>6s}  (MB)")
    previous = rows[0][1:]
    for label, *now in rows:
        step = [a - b for a, b in zip(now, previous, strict=True)]
        print(f"{label:32s} {now[0]:7.0f} {now[1]:7.0f} {now[2]:7.0f}   {step[0]:+6.0f} {step[1]:+6.0f} {step[2]:+6.0f}")
        previous = now
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
