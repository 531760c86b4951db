"""One BLAS thread for the notebook kernels that nbval starts, for every pytest run here.

nbval compares the printed outputs of the committed notebooks. With several BLAS threads
the last digits of float results depend on the machine's core count, so the kernels it
starts (with --nbval-current-env, see pyproject.toml) get one thread. This file sits at
the root so that any pytest run in the repository gets the pin before a kernel starts:
`make test`, a plain `pytest`, or `pytest notebooks/03_svd.ipynb`. tests/test_notebooks.py
removes the variables again on purpose, to run the notebooks the way a student does.
"""

import os

os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
