"""atomic_write: the old file whole or the new one whole, and no temporary left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.atomic import atomic_write


def test_the_new_file_replaces_the_old_one_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "final.csv"
    target.write_text("old\n")
    with atomic_write(target) as temporary:
        temporary.write_text("new\n")
        assert target.read_text() == "old\n", "until the block ends, readers see the old file"
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["final.csv"], "no temporary file is left"


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text("{}\n")
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as temporary:
        temporary.write_text('{"half": ')
        raise KeyboardInterrupt
    assert target.read_text() == "{}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
