"""Test-wide setup: one BLAS thread for the kernels nbval starts, and the browser report.

nbval compares the printed outputs of the committed notebooks. With several BLAS
threads the last digits of float results depend on the machine's core count, so the
kernels it starts (with --nbval-current-env, see pyproject.toml) get one thread: the
variables are set here, before any kernel starts, so that a plain `pytest` pins them
just as `make test` does. tests/test_notebooks.py removes them again on purpose, to run
the notebooks the way a student does.

tests/test_browser.py appends lines (slider latency, timings) with the `browser_report`
fixture; they are printed in a "browser tests" section at the end of the pytest run,
even under -q, where print() output would be captured and lost.
"""

import os

import pytest

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
os.environ.update(ONE_THREAD)

BROWSER_REPORT = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def browser_report(request):
    """A list of lines to print in the terminal summary."""
    return request.config.stash.setdefault(BROWSER_REPORT, [])


def pytest_terminal_summary(terminalreporter, config):
    lines = config.stash.get(BROWSER_REPORT, [])
    if lines:
        terminalreporter.section("browser tests")
        for line in lines:
            terminalreporter.write_line(line)
