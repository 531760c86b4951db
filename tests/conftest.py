"""Browser-test support: a place to collect measurements and show them after the run.

tests/test_browser.py appends lines (slider latency, timings) with the `browser_report`
fixture; they are printed in a "browser tests" section at the end of the pytest run,
even under -q, where print() output would be captured and lost. (The one-BLAS-thread
pin for nbval is in the conftest.py at the repository root.)
"""

import pytest

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
