"""A study's own data, opened again after the search: the same images, split the same way, or a refusal.

``search finalize`` tests on the test images the search never saw; that
holds only if it reads the data set the search read. ``run`` records the data
set, its ``SourceOptions``, the cache key and the fingerprint (the key and
which file is in which split) in the study's settings. Here the source is
read again with those options. Before anything is decoded, the files are
listed and keyed: a key other than the search's (a file added, removed or
changed since) is refused at once, with what changed, and the search's cache
is left as it was. A data set at another path (``--data``, the folder moved or
mounted elsewhere) is decoded, then accepted only when the same file names
fall in the same splits with the same labels.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import optuna

from evaluation.data import DataSplits, load_dataset
from evaluation.images import SourceOptions, cache_key, fingerprint, is_source, list_source
from search.errors import UsageError

__all__ = ["open_study_data", "recorded_options"]


def recorded_options(settings: dict[str, Any]) -> SourceOptions | None:
    """The ``SourceOptions`` a study's settings record (``data_options``), None for a built-in data set."""
    fields = settings.get("data_options")
    if fields is None:
        return None
    if fields.get("classes") is not None:
        fields = {**fields, "classes": tuple(fields["classes"])}
    return SourceOptions(**fields)


def open_study_data(
    study: optuna.Study,
    *,
    dataset: str | None = None,
    root: str | None = None,
    cache_dir: Path | None = None,
    validation_size: int = 0,
) -> DataSplits:
    """The study's data set as the search split it, every training image trained on unless
    ``validation_size`` (finalize's held-out images, to choose without the test set) holds some out.

    ``dataset``: read this source instead of the recorded one (the same data
    set at another path), with the recorded options. ``UsageError`` for a study
    that records no data set, or data that is not the search's.
    """
    settings: dict[str, Any] = study.user_attrs.get("settings", {})
    recorded = settings.get("dataset")
    if recorded is None:
        raise UsageError(f"study {study.study_name} records no dataset in its settings; it was not made by search run")
    name = dataset or recorded
    options = recorded_options(settings)
    if is_source(name) and options is None:
        raise UsageError(
            f"study {study.study_name} searched the built-in data set {recorded}; its final models test on "
            f"that data set's test images, not on {name}"
        )
    if name == recorded and options is not None and settings.get("data_cache_key"):
        _refuse_changed(study.study_name, settings, name, options)
    data = load_dataset(name, root=root, validation_size=validation_size, options=options, cache_dir=cache_dir)
    _check_same(study.study_name, settings, data, moved=name != recorded)
    return data


def _refuse_changed(study: str, settings: dict[str, Any], name: str, options: SourceOptions) -> None:
    """Before decoding: refuse a source whose files (names, sizes, times, labels, splits) are not the search's."""
    listing = list_source(name, options)
    if cache_key(listing, options) == settings["data_cache_key"]:
        return
    changed = _what_changed({entry.name for entry in listing.entries}, settings.get("data_cache"))
    raise UsageError(
        f"{name} changed since study {study} searched it ({changed}): the search recorded data fingerprint "
        f"{settings['data_fingerprint'][:12]}, these files would give another; finalize tests only on the search's "
        f"held-out images, so restore the files, or search the new data in another study"
    )


def _what_changed(names: set[str], search_cache: str | None) -> str:
    """The files added and removed since the search, from its cache's row and skip lists when they are still there."""
    if search_cache is None or not (Path(search_cache) / "rows.csv").is_file():
        return "its files differ from the search's"
    before = {row[2] for row in _rows(Path(search_cache) / "rows.csv")}
    before |= {row[0] for row in _rows(Path(search_cache) / "skipped.csv")}
    added, removed = len(names - before), len(before - names)
    if not added and not removed:
        return f"the same {len(names):,} files, but some changed on disk (size or time) or the manifest did"
    parts = [
        f"{count:,} file{'s' if count > 1 else ''} {what}"
        for count, what in ((added, "added"), (removed, "removed"))
        if count
    ]
    example = sorted(names - before)[:1] or sorted(before - names)[:1]
    return " and ".join(parts) + f", e.g. {example[0]}"


def _check_same(study: str, settings: dict[str, Any], data: DataSplits, *, moved: bool) -> None:
    """After loading: the fingerprint is the search's; at another path, the same names in the same splits."""
    recorded = settings.get("data_fingerprint")
    if recorded is None or data.fingerprint == recorded:
        return
    key = settings.get("data_cache_key")
    if (
        moved
        and key is not None
        and data.cache is not None
        and fingerprint(key, _split_rows(data.cache / "rows.csv")) == recorded
    ):
        return  # the same file names, labels and splits, read from where they are now
    raise UsageError(
        f"{data.name} is not the data set study {study} searched: data fingerprint {(data.fingerprint or 'none')[:12]} "
        f"now, {recorded[:12]} recorded by the search (other files, labels or split); finalize tests only on the "
        f"search's held-out images"
    )


def _split_rows(path: Path) -> list[tuple[str, int, str]]:
    """A cache's rows.csv as the (split, label, name) rows its fingerprint was taken of."""
    return [(split, int(label), name) for split, label, name in _rows(path)]


def _rows(path: Path) -> list[list[str]]:
    """A cache's CSV list (rows.csv, skipped.csv) without its header; empty when missing."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.reader(handle))[1:]
