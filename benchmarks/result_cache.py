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
import json
from pathlib import Path
from typing import Any

from evaluation.atomic import atomic_write

__all__ = ["load_cache", "merge_into", "save_cache"]


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
