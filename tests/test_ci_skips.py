"""tests/conftest.py's rule, run on small suites: under CI=true no test may skip, save ``cuda`` ones without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()

SKIPPING = """
import pytest

def test_skips_in_its_body():
    pytest.skip("no server here")

@pytest.mark.skipif(True, reason="no browser here")
def test_skipped_by_a_mark():
    pass

@pytest.fixture
def server():
    pytest.skip("the server would not start")

def test_skipped_by_its_fixture(server):
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False

def test_passes():
    pass
"""

CUDA_ONLY = """
import pytest
import torch

@pytest.mark.cuda
def test_on_the_gpu():
    assert torch.cuda.is_available()
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None, **files: str) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    cuda: needs a CUDA device\n")
    pytester.makepyfile(**files)
    return pytester.runpytest("-rA", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:xdist")


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_ci_turns_every_skip_into_a_failure_naming_the_test_and_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    result = _run(pytester, monkeypatch, ci, test_suite=SKIPPING)
    outcomes = result.parseoutcomes()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    # A skip at set-up (a mark, a fixture) fails as an error at set-up, as a broken fixture does.
    assert (outcomes.get("failed"), outcomes.get("errors"), outcomes.get("skipped")) == (1, 2, None), outcomes
    assert (outcomes.get("passed"), outcomes.get("xfailed")) == (1, 1), f"an xfail is not a skip: {outcomes}"
    for test, reason in [
        ("test_skips_in_its_body", "no server here"),
        ("test_skipped_by_a_mark", "no browser here"),
        ("test_skipped_by_its_fixture", "the server would not start"),
    ]:
        result.stdout.fnmatch_lines(
            [f"*test_suite.py::{test} skipped under CI=true, where no test may skip: {reason}*"]
        )


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_outside_ci_a_skip_stays_a_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    result = _run(pytester, monkeypatch, ci, test_suite=SKIPPING)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)


def test_ci_fails_a_module_skipped_at_import(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    module = 'import pytest\n\npytest.importorskip("no_such_module_here")\n\ndef test_never_collected():\n    pass\n'
    result = _run(pytester, monkeypatch, "true", test_import=module)
    assert result.ret == pytest.ExitCode.INTERRUPTED, f"a collection error stops the run: {result.stdout.str()}"
    result.stdout.fnmatch_lines(["*test_import.py skipped under CI=true, where no test may skip:*no_such_module_here*"])


def test_a_cuda_test_is_deselected_without_cuda_and_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, "true", test_gpu=CUDA_ONLY)
    if torch.cuda.is_available():
        result.assert_outcomes(passed=1)
    else:
        assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
        result.assert_outcomes(deselected=1)
        result.stdout.fnmatch_lines(["tests marked cuda are deselected: needs a CUDA device*gpu_check.sh runs them)"])
