"""Every notebook runs clean the way a student runs it, and so does every folded solution.

nbval (see the Makefile) compares printed outputs at one BLAS thread, so that the digits are
stable. A student's kernel (`make lab`, Binder) runs at the machine's default thread count,
where sums are added in another order and the last digits change. This test executes each
notebook in a fresh kernel with the thread variables removed from its environment, then runs
the code of every folded <details> solution in the same kernel, after the notebook's cells,
and fails on any error output, naming the notebook, the cell and the error.

Set NOTEBOOK_THREADS=4 (say) to run the kernels at that many BLAS threads instead.
"""

import os
import re
from pathlib import Path

import ipykernel.kernelspec
import nbformat
import pytest
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

DETAILS = re.compile(r"<details>.*?</details>", re.DOTALL)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def folded_solutions(notebook):
    """(label, code) for each ```python block inside a <details> block, in reading order.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
    ...     "<details><summary>Solution</summary>\\n\\n```python\\nx = 1\\n```\\n</details>")])
    >>> folded_solutions(nb)
    [('solution 1 in cell 0', 'x = 1\\n')]
    """
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        for details in DETAILS.findall(cell.source):
            for code in PYTHON_BLOCK.findall(details):
                found.append((f"solution {len(found) + 1} in cell {index}", code))
    return found


class ThisPython(KernelSpecManager):
    """Kernels run this test's own Python (as nbval's --nbval-current-env does), not whatever
    "python3" kernel a user folder may hold."""

    def get_kernel_spec(self, kernel_name):
        return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                      **ipykernel.kernelspec.get_kernel_dict())


def kernel_environment():
    """This process's environment without the one-thread pin, or pinned to NOTEBOOK_THREADS."""
    env = {name: value for name, value in os.environ.items() if name not in THREAD_VARIABLES}
    threads = os.environ.get("NOTEBOOK_THREADS")
    if threads:
        env.update(dict.fromkeys(THREAD_VARIABLES, threads))
    return env


def first_error(cells):
    """'label: Name: message' and the source of the first (label, cell) with an error output."""
    for label, cell in cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                return f"{label}: {output.ename}: {output.evalue}\n{cell.source}"
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_and_solutions_run_clean(path):
    notebook = nbformat.read(path, as_version=4)
    cells = [(f"cell {index}", cell) for index, cell in enumerate(notebook.cells)]
    cells += [(label, nbformat.v4.new_code_cell(code)) for label, code in folded_solutions(notebook)]
    threads = os.environ.get("NOTEBOOK_THREADS")
    if threads:  # torch caps its own count at the cores it sees; ask for the threads explicitly
        setup = f"import torch\ntorch.set_num_threads({int(threads)})"
        cells.insert(0, ("thread setup", nbformat.v4.new_code_cell(setup)))
    for _, cell in cells:
        if cell.cell_type == "code":
            cell.outputs = []
    notebook.cells = [cell for _, cell in cells]

    kernel = AsyncKernelManager(kernel_spec_manager=ThisPython())
    client = NotebookClient(notebook, km=kernel, timeout=300,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute(env=kernel_environment())
    except CellExecutionError:
        pass  # the error output is in its cell; first_error reports it with the cell's label
    error = first_error(cells)
    assert error is None, f"{path.name}, {error}"
