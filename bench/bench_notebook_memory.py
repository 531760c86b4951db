"""What each notebook's kernel holds after Run All, and its peak on the way (issue 20).

Each notebook runs in a fresh ipykernel started as Binder starts one (``start``: two threads,
and the variables it sets), every code cell in order, then until the kernel is idle (the explorers build their exact
caches on a thread after their cell has run); psutil samples the kernel every 0.2 s.
Printed per notebook, in MB: the peak RSS, and RSS, USS and PSS once Run All is done (USS:
what shutting the kernel down gives back), and the five names in the notebook holding the most
array and tensor memory (an object's attributes counted; an array counted once per name).

    .venv/bin/python bench/bench_notebook_memory.py               # every notebook
    .venv/bin/python bench/bench_notebook_memory.py 04 07         # some
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20


def start_env() -> dict[str, str]:
    """The environment ``start`` gives the server (and so every kernel) on Binder."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(["bash", str(ROOT / "start"), "env", "-0"], env=env, capture_output=True, check=True)
    pairs = (item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    return dict(pairs, PYTHONPATH=str(ROOT))


#: Run after Run All: the notebook's five largest arrays, tensors and explorers held by a name, MB.
_LARGEST = """
def _held():
    import numpy, torch
    def size(v, seen, depth=0):
        if id(v) in seen or depth > 4:
            return 0
        seen.add(id(v))
        if isinstance(v, numpy.ndarray):
            return v.nbytes if v.base is None else 0
        if isinstance(v, torch.Tensor):
            return v.untyped_storage().nbytes()
        if isinstance(v, (list, tuple)):
            return sum(size(x, seen, depth + 1) for x in v[:10000])
        if isinstance(v, dict):
            return sum(size(x, seen, depth + 1) for x in list(v.values())[:10000])
        if type(v).__module__.split(".")[0] in ("explorer", "helpers"):
            return sum(size(x, seen, depth + 1) for x in vars(v).values()) if hasattr(v, "__dict__") else 0
        return 0
    ns = get_ipython().user_ns
    sizes = sorted(((size(v, set()), k) for k, v in list(ns.items()) if not k.startswith("_")), reverse=True)
    print(", ".join(f"{k} {b / 2**20:.0f}" for b, k in sizes[:5] if b > 2**20))
_held()
del _held
"""


def run_all(path: Path) -> dict[str, float]:
    """Run every code cell of `path` in a fresh kernel: its peak RSS and what it holds after, MB."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=start_env(), cwd=str(path.parent))
    client = manager.client()
    client.start_channels()
    peak, stop = [0.0], threading.Event()
    try:
        client.wait_for_ready(timeout=120)
        process = psutil.Process(manager.provisioner.pid)

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], process.memory_info().rss / MB)
                stop.wait(0.2)

        threading.Thread(target=sample, daemon=True).start()
        errors = []
        for number, cell in enumerate(json.loads(path.read_text())["cells"], 1):
            if cell["cell_type"] != "code":
                continue
            reply = client.execute_interactive("".join(cell["source"]), timeout=600, output_hook=lambda msg: None)
            if reply["content"]["status"] != "ok":  # go on: the memory of the rest is still worth a look
                errors.append(f"cell {number}: {reply['content'].get('ename')} {reply['content'].get('evalue')}")
        quiet_since, cpu = time.monotonic(), sum(process.cpu_times()[:2])
        for _ in range(600):  # the explorers build their exact caches on a thread after the cell: wait
            time.sleep(0.5)
            now = sum(process.cpu_times()[:2])
            if now - cpu > 0.1:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 3:
                break
            cpu = now
        largest = []
        client.execute_interactive(_LARGEST, timeout=60, output_hook=lambda msg: largest.append(
            msg["content"]["text"]) if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout" else None)
        time.sleep(1)
        info = process.memory_full_info()
        return {"errors": errors, "largest": "".join(largest).strip(), "peak": max(peak[0], info.rss / MB), "rss": info.rss / MB, "uss": info.uss / MB, "pss": info.pss / MB}
    finally:
        stop.set()
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main(prefixes: list[str]) -> None:
    notebooks = [nb for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                 if not prefixes or nb.name[:2] in prefixes]
    print(f"{'notebook':28s} {'peak RSS':>8s} {'RSS':>6s} {'USS':>6s} {'PSS':>6s}  after Run All (MB)", flush=True)
    for nb in notebooks:
        start = time.perf_counter()
        m = run_all(nb)
        print(f"{nb.name:28s} {m['peak']:8.0f} {m['rss']:6.0f} {m['uss']:6.0f} {m['pss']:6.0f}"
              f"  ({time.perf_counter() - start:.0f} s)", flush=True)
        print(f"    largest held by a name (MB): {m['largest'] or 'none over 1 MB'}", flush=True)
        if m["errors"]:
            print(f"    CELLS FAILED (a notebook's cell number, markdown counted): {m['errors']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
