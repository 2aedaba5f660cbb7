"""Settings for every test, and the rule that CI cannot pass by skipping.

With ``CI=true`` in the environment (GitHub Actions, GitLab and ``.ci/run`` set
it) a skipped test is a failure naming the test and its skip reason: a
PostgreSQL server or Chromium that cannot start, or a data set not installed,
must stop CI rather than leave it green with the test unrun. Tests marked
``cuda`` are deselected, with a line saying so, on a machine without CUDA.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Generator

import pytest
import torch

# Tests compare numbers across code paths; keep CPU results deterministic and
# leave the second core to pytest-xdist's other worker.
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True, warn_only=True)

# A suite started as a background job of a script (`make test &`) inherits Ctrl-C ignored, and so would
# every process it starts; the tests of Ctrl-C need it delivered as it is at a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ON_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
NO_CUDA = "needs a CUDA device and torch.cuda.is_available() is False here"


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason a skip report gives (its longrepr is ``(path, line, "Skipped: reason")``)."""
    if isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    return str(report.longrepr)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without CUDA, the ``cuda`` tests are deselected rather than skipped (the summary says so):
    nothing in a green run is a skip (``benchmarks/gpu_check.sh`` runs them on a GPU)."""
    if torch.cuda.is_available():
        return
    gpu_only = [item for item in items if item.get_closest_marker("cuda") is not None]
    if gpu_only:
        config.hook.pytest_deselected(items=gpu_only)
        items[:] = [item for item in items if item.get_closest_marker("cuda") is None]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Printed by the process that reports (pytest-xdist's workers collect, and say nothing).
    if not torch.cuda.is_available():
        terminalreporter.write_line(f"tests marked cuda are deselected: {NO_CUDA} (benchmarks/gpu_check.sh runs them)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # An xfail reports as skipped too (with ``wasxfail``): it is an expected failure, not a skip.
    if ON_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} skipped under CI=true, where no test may skip: {_skip_reason(report)}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A whole module skipped at import (``pytest.importorskip``, a module-level skip) fails on CI too."""
    report = yield
    if ON_CI and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{collector.nodeid} skipped under CI=true, where no test may skip: {_skip_reason(report)}"
    return report
