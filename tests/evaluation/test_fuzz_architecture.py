"""Hostile architecture configs end in a valid Architecture or a one-line ArchitectureError."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_documents import CANARY, architecture_documents, classify
from hypothesis import HealthCheck, given, settings

from evaluation import ArchitectureError, load_architecture
from search.cli import main


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=architecture_documents())
def test_load_architecture_fuzzed_ends_in_architecture_or_error(text: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    outcome = classify(load_architecture, path)
    assert outcome in ("valid", "ArchitectureError"), f"load_architecture ended in {outcome} for {text[:200]!r}"


def test_load_architecture_refuses_python_tags_without_running_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.yaml"
    path.write_text(f"!!python/object/apply:os.system ['touch {CANARY}']\n")
    with pytest.raises(ArchitectureError, match="could not determine a constructor for the tag"):
        load_architecture(path)
    assert not (tmp_path / CANARY).exists(), "yaml.safe_load must never run a tag's code"


def test_load_architecture_error_shows_a_bounded_value(tmp_path: Path) -> None:
    """Aliases that expand to 9**10 strings are named by a short repr, not printed whole."""
    laughs = "lol:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"  {b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefghi", "bcdefghij")
    )
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs + "architecture: {stages: [{block: dense, depth: *j}]}\n")
    with pytest.raises(ArchitectureError, match="depth must be int") as error:
        load_architecture(path)
    assert len(str(error.value)) < 300, f"the message must stay short: {len(str(error.value))} characters"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("stages: [{block: {a: 1}, depth: 1}]\n", "block must be one of"),
        ("{1: 2, null: 3}\n", "is not a known key"),
        ("stages: [{block: dense, depth: 2.0}]\n", "depth must be int, got 2.0"),
        ("stages: [{block: dense, depth: 1}]\ntransitions: []\nhead: {dropout: .nan}\n", "dropout must be in [0, 1)"),
        ("\xff\u202e", "architecture must be a mapping, got str"),
    ],
)
def test_profile_command_refuses_a_hostile_config_in_one_line(
    text: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    code = main(["profile", str(path), "--input", "1,28,28", "--num-classes", "10", "--repeats", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and "\n" not in err, (
        f"exit {code}, expected one line with {fragment!r}: {err!r}"
    )


def test_profile_command_refuses_a_binary_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00stages")
    code = main(["profile", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot be read as UTF-8 text" in err and "\n" not in err, f"exit {code}: {err!r}"
