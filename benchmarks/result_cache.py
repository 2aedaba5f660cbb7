"""The long benchmarks' caches: one JSON file that processes side by side add to.

A unit of work (a panel member's run, a search, a retraining) is saved the
moment it ends, so a killed benchmark resumes where it stopped. Each save
takes a lock on ``<file>.lock``, merges what the file holds into the caller's
cache (``merge_into``: a key either side lacks is kept, a key both hold is
the caller's) and writes through a temporary file, so a kill mid-write never
leaves a broken cache and one process never drops another's results.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evaluation.atomic import atomic_write

__all__ = ["journal_to_read", "load_cache", "merge_into", "pack_journal", "packed", "save_cache", "unpacked_journal"]


def load_cache(path: Path, empty: dict[str, Any]) -> dict[str, Any]:
    """The cache in ``path``, or ``empty`` when there is none yet."""
    return json.loads(path.read_text()) if path.is_file() else empty


def merge_into(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Add to ``mine`` every key of ``theirs`` it lacks, recursively through nested dicts; ``mine`` wins ties."""
    for key, value in theirs.items():
        if key not in mine:
            mine[key] = value
        elif isinstance(mine[key], dict) and isinstance(value, dict):
            merge_into(mine[key], value)


def save_cache(path: Path, cache: dict[str, Any]) -> None:
    """Merge the file's cache into ``cache`` under the lock, then write ``cache`` back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".json.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merge_into(cache, load_cache(path, {}))
        with atomic_write(path) as temporary:
            temporary.write_text(json.dumps(cache, indent=1) + "\n")


# --- journals, committed gzipped ---------------------------------------------------


def packed(journal: Path) -> Path:
    """``X.log.gz``, the committed form of the journal ``X.log``."""
    return journal.with_name(journal.name + ".gz")


def _is_current(journal: Path) -> bool:
    """``journal`` holds at least what its packed form does: it exists and is not older (a fresh
    checkout of a newer ``X.log.gz`` makes it stale; a run cut short before packing does not)."""
    archive = packed(journal)
    return journal.is_file() and (not archive.is_file() or journal.stat().st_mtime >= archive.stat().st_mtime)


def unpacked_journal(journal: Path) -> Path:
    """``journal`` (``X.log``) ready for a study to add to: unpacked from ``X.log.gz`` unless it is current."""
    if not _is_current(journal) and packed(journal).is_file():
        with (
            gzip.open(packed(journal), "rb") as source,
            atomic_write(journal) as temporary,
            open(temporary, "wb") as target,
        ):
            shutil.copyfileobj(source, target)
    return journal


def pack_journal(journal: Path) -> Path | None:
    """Write ``X.log.gz`` from ``journal`` (``X.log``), whole or not at all; the same bytes for the same journal.
    None when there is no journal to pack (a run that failed before creating its study)."""
    if not journal.is_file():
        return None
    archive = packed(journal)
    # No name and no time in the header: packing an unchanged journal changes no committed byte.
    with (
        open(journal, "rb") as source,
        atomic_write(archive) as temporary,
        open(temporary, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as target,
    ):
        shutil.copyfileobj(source, target)
    os.utime(journal, ns=(journal.stat().st_atime_ns, archive.stat().st_mtime_ns))  # current, not stale
    return archive


@contextmanager
def journal_to_read(journal: Path) -> Iterator[Path]:
    """A path to open ``journal`` (``X.log``) at, for reading: the file itself when current, else a temporary
    copy unpacked from ``X.log.gz``, deleted when the block ends. FileNotFoundError when neither exists."""
    if _is_current(journal):
        yield journal
        return
    if not packed(journal).is_file():
        raise FileNotFoundError(f"no journal {journal} nor {packed(journal)}")
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / journal.name
        with gzip.open(packed(journal), "rb") as source, open(copy, "wb") as target:
            shutil.copyfileobj(source, target)
        yield copy
