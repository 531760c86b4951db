"""nbval's comparison means something, and passes on any CPU.

1. Every comment that mentions an nbval marker is one nbval honours. nbval reads a marker only
   when the comment is exactly the marker: `# NBVAL_IGNORE_OUTPUT  (why)` is silently ignored, so
   such a cell was compared all along and passed only on the CPU that wrote its outputs.
2. The committed outputs match a run on another numerical code path. The libraries pick their
   kernels from the CPU (MKL and ATen in torch, OpenBLAS in NumPy, OpenCV's dispatch); forcing them
   onto SSE4.2 kernels here gives the digits an older or another vendor's CPU would print. The test
   first checks that each setting took effect, then runs nbval under it, in a subprocess.
"""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import comment_markers

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: Another CPU's code path, on any x86-64 machine: SSE4.2 kernels everywhere.
OTHER_CPU = {
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",       # torch's MKL (BLAS, LAPACK: the SVD)
    "ATEN_CPU_CAPABILITY": "default",          # torch's own vectorized kernels
    "OPENBLAS_CORETYPE": "Prescott",           # NumPy's OpenBLAS
    "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX2,FP16,AVX",  # OpenCV's dispatched kernels
}

AVX_OPENBLAS_CORES = {"Sandybridge", "Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}

REPORT_CODE_PATHS = r"""
import json, subprocess, sys, cv2, threadpoolctl, torch
mkl = subprocess.run([sys.executable, "-c", "import torch; torch.linalg.svdvals(torch.ones(4, 4))"],
                     capture_output=True, text=True, env=dict(__import__("os").environ, MKL_VERBOSE="1"))
banner = next((line for line in mkl.stdout.splitlines() if "oneMKL" in line or "Intel(R) MKL" in line), "")
openblas = [i.get("architecture") for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
print(json.dumps({"aten": torch.backends.cpu.get_cpu_capability(), "mkl": banner,
                  "openblas": openblas, "opencv": cv2.getCPUFeaturesLine()}))
"""


def marker_problems(source):
    """Comment lines that name an nbval marker but that nbval would ignore.

    >>> marker_problems("# NBVAL_IGNORE_OUTPUT\\n# (timings vary)\\nx = 1")
    []
    >>> marker_problems("# NBVAL_IGNORE_OUTPUT  (timings vary)")
    ['# NBVAL_IGNORE_OUTPUT  (timings vary)']
    """
    problems = []
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("#") and "NBVAL_" in text and text.lstrip("#").strip() not in comment_markers:
            problems.append(text)
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_nbval_marker_is_one_nbval_reads(path):
    notebook = nbformat.read(path, as_version=4)
    found = [f"cell {i}: {line}" for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
             for line in marker_problems(cell.source)]
    assert not found, ("nbval ignores a marker with words after it; put the words on the next line:\n"
                       + "\n".join(found))


def code_paths(extra_env):
    env = dict(os.environ, **extra_env)
    result = subprocess.run([sys.executable, "-c", REPORT_CODE_PATHS], capture_output=True, text=True,
                            env=env, check=True, timeout=120)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the settings that switch code paths are for x86-64 CPUs")
def test_nbval_passes_on_another_cpus_code_path():
    native, other = code_paths({}), code_paths(OTHER_CPU)
    print(f"\nnative code paths: {native}\nforced code paths: {other}")
    assert other["aten"] == "DEFAULT", other
    assert "SSE4.2" in other["mkl"] and "AVX" not in other["mkl"], other["mkl"]
    # OpenBLAS names its kernel family; none of these AVX ones may remain (it reports an SSE core).
    assert other["openblas"] and not set(other["openblas"]) & AVX_OPENBLAS_CORES, other["openblas"]
    assert "AVX2" not in other["opencv"].replace("AVX2?", ""), other["opencv"]

    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=",
               "--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
               *[str(p.relative_to(ROOT)) for p in NOTEBOOKS]]
    run = subprocess.run(command, cwd=ROOT, env=dict(os.environ, **OTHER_CPU), capture_output=True,
                         text=True, timeout=900)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    print(f"nbval on the SSE4.2 code path: {summary}")
    assert run.returncode == 0, f"nbval under {OTHER_CPU} failed:\n{run.stdout[-8000:]}\n{run.stderr[-2000:]}"
