"""Files replaced in one step, so that no reader ever sees half of one.

A browser reloading report.html, a finalize shard reading final.csv beside
another, or a resumed run reading its training state after a crash: each
reads either the old file whole or the new one whole. A write that finds no
room (disk or quota full, a file size limit) leaves the old file as it was and
raises ``DiskFullError`` naming the file, which the command line prints as one
line.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evaluation.errors import DiskFullError

__all__ = ["NO_ROOM", "atomic_write", "naming_full_disk", "write_bytes", "write_text"]

# The errors of a write that found no room: disk full, quota exceeded, file size limit (RLIMIT_FSIZE).
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@contextmanager
def naming_full_disk(path: Path) -> Iterator[None]:
    """A block whose write, finding no room, raises ``DiskFullError`` naming ``path``
    (an ``OSError`` from a write to an open file names none)."""
    try:
        yield
    except OSError as error:
        if error.errno not in NO_ROOM or isinstance(error, DiskFullError):
            raise
        raise DiskFullError(error.errno, error.strerror, str(path)) from error


@contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` when the block ends,
    and is removed instead when the block raises (Ctrl-C included).

    The temporary file reaches the disk (fsync) before it replaces ``path``, so
    a crash right after cannot leave an empty or partial file under the name.
    """
    with naming_full_disk(path):
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(handle)
        temporary = Path(name)
        try:
            yield temporary
            temporary.chmod(0o644)  # mkstemp's 0600 would keep the file from other readers
            _sync(temporary)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def write_text(path: Path, text: str) -> None:
    """``path.write_text(text)`` (UTF-8), whole or not at all (``atomic_write``)."""
    with atomic_write(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    """``path.write_bytes(data)``, whole or not at all (``atomic_write``).

    For what torch saves: ``torch.save`` straight to a file reports a full disk
    as a RuntimeError of its zip writer, so save to a ``BytesIO`` and write its bytes.
    """
    with atomic_write(path) as temporary:
        temporary.write_bytes(data)


def _sync(path: Path) -> None:
    """Flush ``path``'s content to the disk; a full disk may only say so now (delayed allocation, NFS)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
