"""atomic_write: the old file whole or the new one whole, and no temporary left behind."""

from __future__ import annotations

import errno
import io
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from evaluation.atomic import atomic_write, write_bytes, write_text
from evaluation.errors import DiskFullError


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


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """No file this process writes may grow past ``limit`` bytes (RLIMIT_FSIZE): a write past it
    fails with EFBIG, as one fails with ENOSPC on a full disk (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_write_that_finds_no_room_names_the_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "weights.pt"
    target.write_bytes(b"old weights")
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(10_000)}, buffer)
    with file_size_limit(4096), pytest.raises(DiskFullError) as caught:
        write_bytes(target, buffer.getvalue())
    assert str(caught.value) == f"cannot write {target}: File too large; it is left as it was (make room and run again)"
    assert caught.value.errno == errno.EFBIG and caught.value.filename == str(target), "still an OSError, with its path"
    assert target.read_bytes() == b"old weights", "the old file is whole"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pt"], "no temporary file is left"
    write_bytes(target, buffer.getvalue())
    assert torch.load(target, weights_only=True)["w"].shape == (10_000,), "with room, the new file is whole"


def test_an_error_that_is_not_about_room_passes_through_unchanged(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_text(tmp_path / "missing" / "settings.yaml", "trials: 3\n")
