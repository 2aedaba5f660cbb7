"""Hostile space files end in a valid Space or a one-line SpaceError, never a traceback or code execution."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_documents import CANARY, classify, space_documents
from hypothesis import HealthCheck, given, settings

from search.cli import main
from spaces import SpaceError, load_space


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=space_documents())
def test_load_space_fuzzed_ends_in_space_or_space_error(text: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    outcome = classify(load_space, path)
    assert outcome in ("valid", "SpaceError"), f"load_space ended in {outcome} for {text[:200]!r}"


def test_load_space_refuses_python_tags_without_running_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.yaml"
    path.write_text(f"!!python/object/apply:os.system ['touch {CANARY}']\n")
    with pytest.raises(SpaceError, match="could not determine a constructor for the tag"):
        load_space(path)
    assert not (tmp_path / CANARY).exists(), "yaml.safe_load must never run a tag's code"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: &a [*a]\n", "a: unknown key"),
        ("[" * 2000 + "]" * 2000, "nested too deeply"),
        ("input: [1, " + "9" * 5000 + ", 28]\n", "Exceeds the limit"),
        ("when: 2001-13-45\n", "month must be in 1..12"),
    ],
)
def test_run_command_refuses_a_hostile_space_in_one_line(
    text: str, fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    studies_dir = tmp_path / "studies"
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(studies_dir))
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    code = main(["run", "--space", str(path), "--trials", "1", "--no-report"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and "\n" not in err, (
        f"exit {code}, expected one line with {fragment!r}: {err!r}"
    )
    assert not studies_dir.exists(), "a refused space creates no study"
