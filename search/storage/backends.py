"""Opening a study's storage so that a damaged one is refused in one line, and a journal
stays readable through crashes and full disks.

Optuna's journal file is a line of JSON per operation, appended under a lock.
A crash or a full disk mid-append leaves a torn last line, which Optuna's
reader skips but its next append glues a record to: a line in the middle no
reader can parse, and a study no one can load. ``JournalFile`` cuts such a
tail off (keeping a copy beside the journal) before it appends, and takes its
own failed append back whole. A SQLite file is checked (``PRAGMA
quick_check``) before Optuna opens it, so random bytes or a truncated file is
one line rather than a traceback from deep in SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from evaluation.atomic import naming_full_disk
from evaluation.errors import show
from search.errors import UsageError

__all__ = ["JournalFile", "check_sqlite", "open_journal", "open_rdb", "shown_url", "storage_failure"]


class JournalFile(JournalFileBackend):
    """Optuna's journal file, whose appends are whole or absent: written under Optuna's own
    lock, after a torn tail is cut off, and cut back to the byte when the write fails."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = JournalFileSymlinkLock(str(path))  # the lock Optuna's own backend takes
        super().__init__(str(path), lock_obj=self.lock)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        self.lock.acquire()
        try:
            handle = os.open(self.path, os.O_RDWR | os.O_APPEND)
            try:
                start = _drop_torn_record(self.path, handle)
                with naming_full_disk(self.path):
                    try:
                        view = memoryview(data)
                        while view:
                            view = view[os.write(handle, view) :]
                        os.fsync(handle)
                    except BaseException:
                        os.ftruncate(handle, start)  # take back what was written, to the byte
                        raise
            finally:
                os.close(handle)
        finally:
            self.lock.release()


def open_journal(path: Path) -> JournalStorage:
    """The journal storage in ``path``; a file that is not a journal is refused."""
    try:
        return JournalStorage(JournalFile(path))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:  # what replaying garbage raises
        raise UsageError(f"journal {path} is not an Optuna journal: {_first_bad_record(path)}") from error


def _drop_torn_record(path: Path, handle: int) -> int:
    """Cut off a last record that does not end its line, keeping a copy beside the journal;
    the journal's size after. Called under the journal's lock.

    Every append ends with a newline under that lock: a last line without one,
    seen under it, was cut short by a crash or a full disk.
    """
    size = os.lseek(handle, 0, os.SEEK_END)
    if size == 0 or os.pread(handle, 1, size - 1) == b"\n":
        return size
    end = _end_of_last_line(handle, size)
    torn = os.pread(handle, size - end, end)
    if not _could_be_cut_short(torn):
        raise UsageError(
            f"journal {path} ends in a line that is no Optuna record ({show(torn[:40])}); not writing to it"
        )
    aside = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    with naming_full_disk(aside):
        aside.write_bytes(torn)
    os.ftruncate(handle, end)
    os.fsync(handle)
    print(
        f"note: {path} ended in a record cut short ({len(torn)} bytes: a crash or a full disk mid-write); "
        f"dropped it before writing on, a copy is in {aside.name}",
        file=sys.stderr,
    )
    return end


def _could_be_cut_short(tail: bytes) -> bool:
    """Whether ``tail`` can be the start of a record (``{"op_code":...``), or the zeros a
    file system leaves in a block whose data never reached the disk."""
    start = b'{"op_code":'
    return tail[: len(start)] == start[: len(tail)] or not tail.strip(b"\0")


def _end_of_last_line(handle: int, size: int, chunk: int = 1 << 16) -> int:
    """The offset just past the file's last newline (0 when it has none), read backwards in chunks."""
    position = size
    while position > 0:
        step = min(chunk, position)
        position -= step
        newline = os.pread(handle, step, position).rfind(b"\n")
        if newline >= 0:
            return position + newline + 1
    return 0


def _first_bad_record(path: Path) -> str:
    """Where and why ``path`` stops being a journal: its first line that is not a JSON operation."""
    with open(path, "rb") as journal:
        for number, line in enumerate(journal, 1):
            try:
                record = json.loads(line)
            except ValueError:
                return f"line {number} is not JSON ({show(line[:40])})"
            if not isinstance(record, dict) or "op_code" not in record:
                return f"line {number} is not one of its operations ({show(line[:40])})"
    return "its operations do not replay (a record refers to a study or trial it never created)"


def check_sqlite(path: Path) -> None:
    """Refuse a SQLite file that is not one, or is damaged (``PRAGMA quick_check``, milliseconds)."""
    if not path.is_file() or path.stat().st_size == 0:
        return  # Optuna creates its tables in a new or empty file
    try:
        connection = sqlite3.connect(path)
        try:
            problems = [row[0] for row in connection.execute("PRAGMA quick_check") if row[0] != "ok"]
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return  # a run is writing to it: busy, not damaged, and Optuna waits its turn
        problems = [str(error)]
    except sqlite3.DatabaseError as error:
        problems = [str(error)]
    if problems:
        raise UsageError(f"{path} cannot be read as a study's SQLite database: {problems[0]}")


def open_rdb(url: str, **options: Any) -> RDBStorage:
    """Optuna's RDB storage for ``url``; a database it cannot open or use is a ``UsageError``."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return RDBStorage(url, **options)
    except (SQLAlchemyError, RuntimeError) as error:  # RuntimeError: tables of another Optuna version
        raise UsageError(f"cannot open storage {shown_url(url)}: {storage_failure(error)}") from error


def storage_failure(error: BaseException) -> str:
    """One line on why a storage failed: the database driver's own words, under SQLAlchemy's and Optuna's."""
    while (inner := getattr(error, "orig", None) or error.__cause__) is not None:
        error = inner
    return " ".join(str(error).split()) or type(error).__name__


def shown_url(url: str) -> str:
    """``url`` to print: a database password replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a database URL (journal:PATH): nothing to hide
        return url
