"""A run's data: which data set, read how, loaded once, and the space shaped by it.

A run names its data with a ``DataSpec``: a built-in data set or a user's
source (``folder:PATH``, ``csv:FILE``, ``npz:FILE``) and the ``SourceOptions``
that read it, or nothing, to take the space's. ``open_run_data`` resolves it
against the space, loads it once in the run's process (a source is decoded
into its cache there, with progress on a terminal) and shapes the space: with
``--data`` the input and class count follow the data; with the space's own
data set, a stated ``num_classes`` or channel count that disagrees with the
data is a one-line error naming both, and what the space leaves out it takes
from the data; data without validation images, which every trial is judged
on, is refused. The resolved ``DataSpec`` (picklable) goes to every worker,
which opens the finished cache again and must find the same fingerprint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.data import DATASETS, DataError, DataSplits, describe_data, load_dataset
from evaluation.images import SourceOptions, is_source
from search.errors import UsageError
from spaces import Space

__all__ = ["VALIDATION_SIZE", "DataSpec", "data_settings", "load_run_data", "open_run_data", "options_settings"]

# A tenth of a built-in training set validates every trial; the test set is never touched.
# A source's validation split is its own (SourceOptions.val_fraction).
VALIDATION_SIZE = 0.1


@dataclass(frozen=True)
class DataSpec:
    """The data a run trains on.

    ``dataset``: a built-in name or a source (``folder:PATH``, ``csv:FILE``,
    ``npz:FILE``) instead of the space's; the input size and class count then
    follow the data. None takes the space's. ``options``: how a source's
    images are read (resolution, channels, resize policy, split, strictness);
    None takes the space's (its ``dataset`` mapping, its stated input's side
    and channels); with the space's data set, the fields that differ from
    ``SourceOptions``' defaults replace the space's own. ``root``: a folder holding a built-in's files, searched
    first. ``cache_dir``: where a source's decoded images are cached (default
    ``evaluation.images.cache_root()``). ``fingerprint``: set by the plan, the
    data every worker must find when it opens the data again.
    """

    dataset: str | None = None
    root: str | Path | None = None
    options: SourceOptions | None = None
    cache_dir: Path | None = None
    fingerprint: str | None = None


def load_run_data(data: DataSpec, *, seed: int, progress: bool | None = False) -> DataSplits:
    """A run's data splits: ``data.dataset`` (resolved, not None), a built-in's validation split drawn with ``seed``.

    A source is read through its cache (built first when none matches, with
    progress bars when ``progress``); a ``data.fingerprint`` it no longer
    matches (a file changed since the run began) is a ``DataError``.
    """
    assert data.dataset is not None, "the plan resolves the data set before it loads it"
    splits = load_dataset(
        data.dataset,
        root=data.root,
        validation_size=VALIDATION_SIZE,
        seed=seed,
        options=data.options,
        cache_dir=data.cache_dir,
        progress=progress,
    )
    if data.fingerprint is not None and splits.fingerprint != data.fingerprint:
        raise DataError(
            f"{data.dataset} changed since the run began (fingerprint {data.fingerprint[:12]}, now "
            f"{(splits.fingerprint or 'none')[:12]}); every worker of a run must train on the same images"
        )
    return splits


def open_run_data(space: Space, data: DataSpec, *, seed: int) -> tuple[Space, DataSpec, DataSplits]:
    """The space shaped by the data, the resolved ``DataSpec`` (with the data's fingerprint), and the splits."""
    resolved = _resolve(space, data)
    splits = load_run_data(resolved, seed=seed, progress=None)
    if len(splits.val[1]) == 0:  # every trial would score 0 % and the search rank on its other objectives only
        raise UsageError(
            f"{splits.name} has no validation images, and a search chooses on them (the test images are read once, "
            f"at the end): give it a val/ split or a val_fraction above 0 (--val-fraction)"
        )
    return (
        _fit(space, splits, replaced=data.dataset is not None),
        dataclasses.replace(resolved, dataset=splits.name, fingerprint=splits.fingerprint),
        splits,
    )


def _resolve(space: Space, data: DataSpec) -> DataSpec:
    """Which data set, read with which options: ``data``'s, else the space's (its input fills a source's resolution)."""
    if data.dataset is not None:  # a source's options are recorded whole, the defaults included
        options = data.options or (SourceOptions() if is_source(data.dataset) else None)
        return dataclasses.replace(data, options=options)
    if space.dataset is None:
        raise UsageError(
            f"space {space.name} names no data set: pass --data folder:PATH (one sub-folder per class), "
            f"csv:FILE, npz:FILE or a built-in name ({', '.join(DATASETS)})"
        )
    options = _merged(space.data_options, data.options)
    if is_source(space.dataset):
        options = options or SourceOptions()
        if space.input_size is not None:  # decode at the size the space asks for, unless the options say
            channels, side, _ = space.input_size
            options = dataclasses.replace(
                options, resolution=options.resolution or side, channels=options.channels or channels
            )
    return dataclasses.replace(data, dataset=space.dataset, options=options)


def _merged(own: SourceOptions | None, given: SourceOptions | None) -> SourceOptions | None:
    """The space's options with those ``given`` that differ from the defaults in their place."""
    if own is None or given is None:
        return given or own
    default = SourceOptions()
    changed = {f.name: getattr(given, f.name) for f in dataclasses.fields(given)}
    return dataclasses.replace(own, **{k: v for k, v in changed.items() if v != getattr(default, k)})


def _fit(space: Space, splits: DataSplits, *, replaced: bool) -> Space:
    """``space`` for ``splits``: with another data set, its input and classes; else checked against them."""
    if replaced:
        return space.with_input(dataset=splits.name, input_size=splits.input_size, num_classes=splits.num_classes)
    if space.num_classes is not None and space.num_classes != splits.num_classes:
        shown = ", ".join(splits.class_names[:4]) + (", ..." if len(splits.class_names) > 4 else "")
        raise space.error(
            "num_classes",
            f"the space states {space.num_classes} classes, its data set {splits.name} has {splits.num_classes}"
            + (f" ({shown})" if shown else "")
            + "; leave num_classes out to take the data's",
        )
    if space.input_size is not None and space.input_size[0] != splits.input_size[0]:
        channels, side, _ = splits.input_size
        raise space.error(
            "input",
            f"the space states {space.input_size[0]} channels ({list(space.input_size)}), its data set "
            f"{splits.name} has {channels} ({channels}x{side}x{side} images); leave input out to take the data's",
        )
    # A stated side other than the data's is a resize in training (search.run's _train_config).
    return space.with_input(input_size=space.input_size or splits.input_size, num_classes=splits.num_classes)


def options_settings(options: SourceOptions | None) -> dict[str, Any] | None:
    """``options`` as plain JSON and YAML (lists, not tuples), for a study's settings; ``SourceOptions(**it)`` reads it back."""
    if options is None:
        return None
    fields = dataclasses.asdict(options)
    if fields["classes"] is not None:
        fields["classes"] = list(fields["classes"])
    return fields


def data_settings(data: DataSpec, splits: DataSplits) -> dict[str, Any]:
    """What a study records of its data: the data set, its options, its fingerprint, its description,
    and a source's cache key (what ``finalize`` compares before it decodes anything)."""
    key = None
    if splits.cache is not None:
        key = json.loads((splits.cache / "meta.json").read_text()).get("key")
    return {
        "dataset": splits.name,
        "data_options": options_settings(data.options if is_source(splits.name) else None),
        "data_fingerprint": splits.fingerprint,
        "data_cache_key": key,
        "data_cache": None if splits.cache is None else str(splits.cache),
        "data": describe_data(splits),
    }
