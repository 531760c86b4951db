"""Install the pinned torch; on Linux x86_64, the CPU build from PyTorch's own index.

`make setup` runs this with the new environment's Python, before requirements.txt.
PyPI's Linux wheel of torch pulls in several GB of CUDA libraries that a class laptop
never uses; PyTorch's CPU index has the same release (2.13.0+cpu) without them. Some
networks reach only PyPI: if the CPU index does not answer within PROBE_TIMEOUT_S, torch
comes from PyPI at once, with no retries. Prints one line saying which build came from where.

    python tools/install_torch.py        # TORCH_CPU_INDEX=URL overrides the index
"""

import os
import platform
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

CPU_INDEX = os.environ.get("TORCH_CPU_INDEX", "https://download.pytorch.org/whl/cpu").rstrip("/")
PROBE_TIMEOUT_S = 5
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"


def torch_pin():
    """The torch version pinned in requirements.txt, e.g. "2.13.0"."""
    return re.search(r"^torch==([^\s;#]+)", REQUIREMENTS.read_text(), re.MULTILINE).group(1)


def cpu_index_problem():
    """None if the CPU index lists torch within PROBE_TIMEOUT_S, else what went wrong.

    The look-up runs in a thread so that a slow name lookup is cut off too.
    """
    outcome = []

    def probe():
        try:
            # pip's certificate bundle, where one is set, so that the probe trusts what pip trusts
            context = ssl.create_default_context(cafile=os.environ.get("PIP_CERT") or None)
            with urllib.request.urlopen(f"{CPU_INDEX}/torch/", timeout=PROBE_TIMEOUT_S, context=context) as page:
                page.read(1)
            outcome.append(None)
        except Exception as error:  # any failure means: use PyPI
            outcome.append(f"{type(error).__name__}: {getattr(error, 'reason', error)}")

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(PROBE_TIMEOUT_S)
    return outcome[0] if outcome else f"no answer within {PROBE_TIMEOUT_S} s"


def installed_torch():
    """(version, "CPU build" or "CUDA x build") of the torch this Python has, or None."""
    done = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__, torch.version.cuda or '')"],
                          capture_output=True, text=True)
    if done.returncode:
        return None
    version, *cuda = done.stdout.split()
    return version, f"CUDA {cuda[0]} build" if cuda else "CPU build"


def main():
    pin = torch_pin()
    installed = installed_torch()
    if installed and installed[0].split("+")[0] == pin:
        print(f"torch {installed[0]} ({installed[1]}) is already installed")
        return
    start = time.monotonic()
    where = "PyPI (or your pip configuration)"
    index_options = []
    if sys.platform == "linux" and platform.machine() == "x86_64":
        problem = cpu_index_problem()
        if problem is None:
            where, index_options = f"the PyTorch CPU index ({CPU_INDEX})", ["--extra-index-url", CPU_INDEX]
        else:
            where += f", because the PyTorch CPU index {CPU_INDEX} did not answer ({problem})"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *index_options, f"torch=={pin}"], check=True)
    version, build = installed_torch()
    print(f"torch {version} ({build}) from {where}, in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
