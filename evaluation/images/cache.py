"""Decode once: a source's images at one resolution, as a memory-mapped uint8 array on disk.

``open_cache`` returns the cache of a listing, building it when none matches.
The key hashes every entry's name, size and mtime, the label and split it
came with, the options that change pixels or split, and the decoder's
version, so a second run opens the cache at once and a changed folder is
read again. Layout, under ``cache_root()``::

    <kind>-<name>-<identity>/        one per source and options
        .lock                        held while building
        .build-<key>/chunks/         decoded chunks, each saved whole: a restart continues
        <key>/images.npy             (N, C, side, side) uint8, rows train | val | test
        <key>/labels.npy             (N,) int64
        <key>/meta.json              classes, counts, resolution, channels, mean, std, fingerprint
        <key>/rows.csv               split, label, name of every row
        <key>/skipped.csv            each file that could not be decoded, and why

A build writes everything into the build folder, then renames it to
``<key>`` in one step: a reader finds a whole cache or none. Decoding runs in
processes, a chunk of rows per task, with a progress bar and an ETA; Ctrl-C
keeps the chunks done, and the same call continues after them.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from PIL import Image

from evaluation.errors import DataError
from evaluation.images.decode import (
    Decoding,
    Header,
    ImageUnreadable,
    decode_file,
    fit_square,
    natural_channels,
    read_header,
    to_channels,
)
from evaluation.images.mapping import map_images
from evaluation.images.sources import SPLITS, Listing, SourceOptions
from evaluation.images.splits import assign_splits, fingerprint

__all__ = [
    "AUTO_RESOLUTION_LIMIT",
    "CACHE_FORMAT",
    "CHUNK_ROWS",
    "ImageCache",
    "cache_key",
    "cache_root",
    "find_cache",
    "open_cache",
]

CACHE_FORMAT = 1  # bump when the decoding or the layout changes: every cache is then rebuilt
CHUNK_ROWS = 256  # rows per decoding task: the unit of progress and of what a Ctrl-C keeps
# The automatic resolution is the median shorter side, at most this: 224 px is
# where ImageNet networks are trained, and larger costs every trial quadratically.
AUTO_RESOLUTION_LIMIT = 224


def cache_root() -> Path:
    """``$SEARCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/densenet-search/images`` (``~/.cache`` by default)."""
    if os.environ.get("SEARCH_CACHE_DIR"):
        return Path(os.environ["SEARCH_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "densenet-search" / "images"


@dataclass(frozen=True)
class ImageCache:
    """An opened cache: the memory-mapped images, the labels, and what ``meta.json`` says."""

    directory: Path
    images: np.ndarray  # (N, C, side, side) uint8, memory-mapped copy-on-write, advised for random access
    labels: np.ndarray  # (N,) int64
    meta: dict[str, Any]

    def read_images(self) -> np.ndarray:
        """Every image read into memory: one sequential read of the file, not page faults through the mapping."""
        return np.load(self.directory / "images.npy")

    @property
    def ranges(self) -> dict[str, tuple[int, int]]:
        """Each split's rows, [start, stop): train, then val, then test."""
        return {split: tuple(bounds) for split, bounds in self.meta["ranges"].items()}

    @property
    def decoding(self) -> Decoding:
        return Decoding(**self.meta["decoding"])

    @property
    def skipped_file(self) -> Path:
        return self.directory / "skipped.csv"

    @property
    def nbytes(self) -> int:
        return sum(path.stat().st_size for path in self.directory.iterdir())


def cache_key(listing: Listing, options: SourceOptions) -> str:
    """sha256 of what the cached pixels and split depend on."""
    digest = hashlib.sha256()
    head = {
        "format": CACHE_FORMAT,
        "pillow": PIL.__version__,
        "source": listing.source,
        "identity": listing.identity,
        "classes": listing.classes,
        "options": options.key_fields(),
    }
    digest.update(json.dumps(head, sort_keys=True).encode())
    for entry in listing.entries:
        digest.update(f"\n{entry.name}\t{entry.label}\t{entry.split}\t{entry.size}\t{entry.mtime_ns}".encode())
    return digest.hexdigest()


def _folder_prefix(source: str) -> str:
    """``<kind>-<last path part>-``: how every cache folder of ``source`` (``kind:/abs/path``) begins."""
    kind, _, path = source.partition(":")
    tail = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).name)[:40] or "root"
    return f"{kind}-{tail}-"


def _folder_name(listing: Listing, options: SourceOptions) -> str:
    """``<kind>-<last path part>-<hash of source and options>``: one folder per source and options."""
    identity = json.dumps([listing.source, options.key_fields()], sort_keys=True)
    return f"{_folder_prefix(listing.source)}{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


def find_cache(source: str, fingerprint: str, *, cache_dir: Path | None = None) -> ImageCache | None:
    """The published cache of ``source`` (``kind:/abs/path``) whose fingerprint is ``fingerprint``, or None.

    What a study recorded (``describe_data``'s ``dataset`` and ``fingerprint``)
    is enough to find its images again without listing the source or decoding
    anything (the report's data panel). None when no cache holds them: deleted,
    under another cache root, or rebuilt since the files changed.
    """
    root = cache_dir or cache_root()
    for meta_file in sorted(root.glob(f"{glob.escape(_folder_prefix(source))}*/*/meta.json")):
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("fingerprint") != fingerprint or meta.get("source") != source:
            continue
        try:
            images = map_images(meta_file.parent / "images.npy")
            labels = np.load(meta_file.parent / "labels.npy")
        except (OSError, ValueError):
            return None
        return ImageCache(meta_file.parent, images, labels, meta)
    return None


def open_cache(
    listing: Listing,
    options: SourceOptions,
    *,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImageCache:
    """The cache of ``listing`` under ``options``, built first when none matches.

    ``workers``: decoding processes (default: the CPUs this process may use);
    ``progress``: show progress bars (default: when stderr is a terminal).
    ``DataError`` for a split a class is too small for, and, with
    ``options.strict``, for any file that cannot be decoded; either is raised
    before the cache folder is created, or (a file that fails only past its
    header) before anything is published.
    """
    key = cache_key(listing, options)
    home = (cache_dir or cache_root()) / _folder_name(listing, options)
    found = _open_published(home / key[:16], key, options, listing.source)
    if found is not None:
        return found
    show = sys.stderr.isatty() if progress is None else progress
    workers = workers or _usable_cpus()
    with _Decoder(listing, workers) as decoder:
        plan = _plan(listing, options, key, decoder, show)  # every layout error is raised here: nothing written yet
        home.mkdir(parents=True, exist_ok=True)
        with _locked(home / ".lock"):
            found = _open_published(home / key[:16], key, options, listing.source)  # built meanwhile by another process
            if found is not None:
                return found
            build = home / f".build-{key[:16]}"
            _decode_chunks(plan, build / "chunks", decoder, chunk_rows, show)
            _publish(plan, build, home / key[:16], chunk_rows)
            for stale in home.iterdir():  # caches and builds of the source's earlier contents
                if stale.is_dir() and stale.name != key[:16]:
                    shutil.rmtree(stale, ignore_errors=True)
    found = _open_published(home / key[:16], key, options, listing.source)
    assert found is not None, f"{home / key[:16]}: published but not readable"
    return found


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the system says), else all of them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _open_published(directory: Path, key: str, options: SourceOptions, source: str) -> ImageCache | None:
    """The cache in ``directory`` when it is whole and of ``key``; None when there is none."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("key") != key:
            return None
        images = map_images(directory / "images.npy")
        labels = np.load(directory / "labels.npy")
    except (FileNotFoundError, ValueError):
        return None
    cache = ImageCache(directory, images, labels, meta)
    if options.strict and meta["skipped"]:
        _refuse_strict(source, meta["skipped"], _first_skipped(cache.skipped_file), cache.skipped_file)
    return cache


def _first_skipped(path: Path) -> tuple[str, str]:
    with open(path, newline="") as handle:
        row = next(iter(list(csv.reader(handle))[1:]), ["?", "?", "?"])
    return row[0], row[2]


def _refuse_strict(source: str, count: int, first: tuple[str, str], listed: Path | None) -> None:
    where = f"; all of them in {listed}" if listed else ""
    raise DataError(
        f"{source}: {count} file{'s' if count != 1 else ''} cannot be decoded and --strict refuses the data set: "
        f"first {first[0]}: {first[1]}{where}"
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (another process building the same cache waits for it)."""
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- decoding, in this process or in a pool ------------------------------------------------


def _ignore_sigint() -> None:
    """Decoding processes leave Ctrl-C to their parent, which stops them between chunks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _headers_of(paths: Sequence[str]) -> list[Header | str]:
    """Each file's header, or the reason it has none."""
    found: list[Header | str] = []
    for path in paths:
        try:
            found.append(read_header(path))
        except ImageUnreadable as error:
            found.append(str(error))
    return found


def _decode_files(paths: Sequence[str], decoding: Decoding) -> tuple[np.ndarray, dict[int, str]]:
    """The files as rows of one array (zeros where one fails), and the reason for each failure by offset."""
    rows = np.zeros((len(paths), decoding.channels, decoding.side, decoding.side), dtype=np.uint8)
    failures: dict[int, str] = {}
    for offset, path in enumerate(paths):
        try:
            rows[offset] = decode_file(path, decoding)
        except ImageUnreadable as error:
            failures[offset] = str(error)
    return rows, failures


def _write_chunk(path: Path, rows: np.ndarray, failures: dict[int, str]) -> None:
    """The reasons first, then the rows through a temporary name: the .npy's presence marks the chunk done."""
    path.with_suffix(".json").write_text(json.dumps({str(k): v for k, v in failures.items()}))
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        np.save(handle, rows)
    os.replace(temporary, path)


def _decode_chunk_to(path: str, paths: Sequence[str], decoding: Decoding) -> int:
    """A pool task: decode ``paths`` into the chunk file ``path``; the number of rows."""
    rows, failures = _decode_files(paths, decoding)
    _write_chunk(Path(path), rows, failures)
    return len(paths)


def _array_header(array: np.ndarray) -> Header:
    mode = "L" if array.ndim == 2 else {3: "RGB", 4: "RGBA"}[array.shape[2]]
    return Header(array.shape[1], array.shape[0], mode, "npz")


def _decode_array(pixels: np.ndarray, decoding: Decoding) -> np.ndarray:
    """A uint8 (H, W) or (H, W, C) array, decoded as a file's pixels would be."""
    image = fit_square(to_channels(Image.fromarray(pixels), decoding.channels, decoding.background), decoding)
    square = np.asarray(image, dtype=np.uint8)
    return square[None] if square.ndim == 2 else square.transpose(2, 0, 1)


def _array_row(arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """The image an npz listing's entry names (``x_train[12]``)."""
    key, _, index = name.partition("[")
    return arrays[key][int(index.rstrip("]"))]


class _Decoder:
    """Headers and chunks of a listing, in ``workers`` processes (in this one for arrays, or one worker)."""

    def __init__(self, listing: Listing, workers: int) -> None:
        self.listing = listing
        # Arrays are decoded already; a daemonic process (a pool's worker) may not start processes.
        in_process = listing.arrays is not None or multiprocessing.current_process().daemon
        self.workers = 1 if in_process else max(1, workers)
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Decoder:
        return self

    def __exit__(self, *_: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        if self.pool is None:
            # fork: the workers need no import (the toolkit's takes seconds) and do no torch work.
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_ignore_sigint)
        return self.pool

    def headers(self, indices: Sequence[int], show: bool) -> list[Header | str]:
        entries = [self.listing.entries[i] for i in indices]
        arrays = self.listing.arrays
        if arrays is not None:
            return [_array_header(_array_row(arrays, e.name)) for e in entries]
        paths = [str(self.listing.path(e)) for e in entries]
        if self.workers == 1 or len(paths) <= CHUNK_ROWS:
            return _headers_of(paths)
        pieces = [paths[i : i + CHUNK_ROWS * 4] for i in range(0, len(paths), CHUNK_ROWS * 4)]
        found: list[Header | str] = []
        with _bar(len(paths), "reading headers", show) as bar:
            for part in self._executor().map(_headers_of, pieces):
                found += part
                bar.update(len(part))
        return found

    def chunks(self, tasks: list[tuple[Path, list[str]]], decoding: Decoding, bar: Any) -> None:
        """Decode each (chunk file, entry names) task into its file; Ctrl-C stops after the running ones."""
        if self.listing.arrays is not None or self.workers == 1 or len(tasks) == 1:
            for path, names in tasks:
                rows, failures = self._decode_here(names, decoding)
                _write_chunk(path, rows, failures)
                bar.update(len(names))
            return
        pool = self._executor()
        futures = [
            pool.submit(_decode_chunk_to, str(path), [str(self.listing.root / n) for n in names], decoding)
            for path, names in tasks
        ]
        try:
            for future in as_completed(futures):
                bar.update(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    def _decode_here(self, names: list[str], decoding: Decoding) -> tuple[np.ndarray, dict[int, str]]:
        arrays = self.listing.arrays
        if arrays is None:
            return _decode_files([str(self.listing.root / n) for n in names], decoding)
        rows = np.stack([_decode_array(_array_row(arrays, n), decoding) for n in names])
        return rows, {}


def _bar(total: int, what: str, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="img", disable=not show, file=sys.stderr, dynamic_ncols=True)


# --- the plan: resolution, channels, split -------------------------------------------------------


@dataclass
class _Plan:
    """What a build decodes: rows in their final order, how, and what the headers said."""

    listing: Listing
    key: str
    decoding: Decoding
    rows: list[int]  # entry indices, train then val then test
    splits: dict[str, list[int]]
    skipped: list[tuple[str, str, str]]  # (name, stage, reason) of files without a readable header
    summary: dict[str, Any]
    strict: bool


def _choose_resolution(headers: list[Header], options: SourceOptions) -> tuple[int, str]:
    if options.resolution is not None:
        return options.resolution, "asked"
    shorter = int(np.median([min(h.width, h.height) for h in headers]))
    if shorter > AUTO_RESOLUTION_LIMIT:
        return AUTO_RESOLUTION_LIMIT, f"median shorter side {shorter} px, capped at {AUTO_RESOLUTION_LIMIT}"
    return shorter, f"median shorter side {shorter} px"


def _choose_channels(headers: list[Header], options: SourceOptions) -> tuple[int, str]:
    if options.channels is not None:
        return options.channels, "asked"
    grey = sum(natural_channels(h.mode) == 1 for h in headers)
    if grey > len(headers) - grey:
        return 1, f"{grey:,} of {len(headers):,} images are grey"
    return 3, f"{len(headers) - grey:,} of {len(headers):,} images are in colour"


def _summary(headers: list[Header]) -> dict[str, Any]:
    sizes = Counter((h.width, h.height) for h in headers)
    shorter = sorted(min(h.width, h.height) for h in headers)
    return {
        "sizes": [[w, h, n] for (w, h), n in sizes.most_common(5)],
        "distinct_sizes": len(sizes),
        "shorter_side": [shorter[0], shorter[len(shorter) // 2], shorter[-1]],
        "modes": dict(Counter(h.mode for h in headers).most_common()),
        "formats": dict(Counter(h.format for h in headers).most_common()),
    }


def _plan(listing: Listing, options: SourceOptions, key: str, decoder: _Decoder, show: bool) -> _Plan:
    headers = decoder.headers(range(len(listing.entries)), show)
    usable = [i for i, h in enumerate(headers) if isinstance(h, Header)]
    skipped = [(listing.entries[i].name, "header", h) for i, h in enumerate(headers) if isinstance(h, str)]
    if options.strict and skipped:
        _refuse_strict(listing.source, len(skipped), (skipped[0][0], skipped[0][2]), None)
    if not usable:
        raise DataError(
            f"{listing.source}: none of its {len(headers)} files can be decoded; first: {skipped[0][0]}: {skipped[0][2]}"
        )
    good = [h for h in headers if isinstance(h, Header)]  # the headers of ``usable``, in its order
    side, side_reason = _choose_resolution(good, options)
    channels, channels_reason = _choose_channels(good, options)
    splits = assign_splits(listing, usable, options)
    summary = {**_summary(good), "resolution_reason": side_reason, "channels_reason": channels_reason}
    decoding = Decoding(side=side, channels=channels, resize=options.resize, background=options.background)
    rows = [i for split in SPLITS for i in splits[split]]
    return _Plan(listing, key, decoding, rows, splits, skipped, summary, options.strict)


# --- build and publish ------------------------------------------------------------------------


def _decode_chunks(plan: _Plan, folder: Path, decoder: _Decoder, chunk_rows: int, show: bool) -> None:
    """Decode every chunk not on disk yet; a chunk on disk from an interrupted build is kept."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [plan.listing.entries[i].name for i in plan.rows]
    marker = folder / "plan.json"
    shape = {"rows": len(names), "chunk_rows": chunk_rows, "decoding": dataclasses.asdict(plan.decoding)}
    if not marker.is_file() or json.loads(marker.read_text()) != shape:
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
        marker.write_text(json.dumps(shape))
    tasks = [
        (folder / f"chunk-{n:06d}.npy", names[start : start + chunk_rows])
        for n, start in enumerate(range(0, len(names), chunk_rows))
    ]
    pending = [(path, part) for path, part in tasks if not path.is_file()]
    done = len(names) - sum(len(part) for _, part in pending)
    with _bar(len(names), f"decoding {plan.listing.source}", show) as bar:
        bar.update(done)
        try:
            decoder.chunks(pending, plan.decoding, bar)
        except KeyboardInterrupt:
            saved = sum(1 for path, _ in tasks if path.is_file())
            print(
                f"\ndecoding interrupted: {saved} of {len(tasks)} chunks saved in {folder}; "
                f"the same command continues from there",
                file=sys.stderr,
            )
            raise


def _chunk_parts(plan: _Plan, folder: Path, chunk_rows: int) -> Iterator[tuple[np.ndarray, list[int], dict[int, str]]]:
    """Each chunk's rows, the entry indices they hold, and the reasons of its failures."""
    for n, start in enumerate(range(0, len(plan.rows), chunk_rows)):
        path = folder / f"chunk-{n:06d}.npy"
        failures = {int(k): v for k, v in json.loads(path.with_suffix(".json").read_text()).items()}
        yield np.load(path, mmap_mode="r"), plan.rows[start : start + chunk_rows], failures


def _publish(plan: _Plan, build: Path, target: Path, chunk_rows: int) -> None:
    """Assemble the chunks into the cache files, then rename the whole folder into place."""
    listing, entries, decoding = plan.listing, plan.listing.entries, plan.decoding
    skipped = list(plan.skipped)
    kept: list[int] = []
    for _, indices, failures in _chunk_parts(plan, build / "chunks", chunk_rows):
        for offset, index in enumerate(indices):
            if offset in failures:
                skipped.append((entries[index].name, "decode", failures[offset]))
            else:
                kept.append(index)
    if plan.strict and skipped:
        # The chunks stay in the build folder: without --strict the same data set is published from them.
        _refuse_strict(listing.source, len(skipped), (skipped[0][0], skipped[0][2]), None)
    split_of = {i: split for split, members in plan.splits.items() for i in members}
    counts = {split: [0] * len(listing.classes) for split in SPLITS}
    for index in kept:
        counts[split_of[index]][entries[index].label] += 1
    empty = [name for label, name in enumerate(listing.classes) if counts["train"][label] == 0]
    if empty:
        raise DataError(f"{listing.source}: class {empty[0]!r} has no training image left that can be decoded")
    out = build / "publish"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    shape = (len(kept), decoding.channels, decoding.side, decoding.side)
    images = np.lib.format.open_memmap(out / "images.npy", mode="w+", dtype=np.uint8, shape=shape)
    position = 0
    for chunk, indices, failures in _chunk_parts(plan, build / "chunks", chunk_rows):
        good = [offset for offset in range(len(indices)) if offset not in failures]
        images[position : position + len(good)] = chunk[good]
        position += len(good)
    labels = np.array([entries[i].label for i in kept], dtype=np.int64)
    np.save(out / "labels.npy", labels)
    sizes = [sum(counts[split]) for split in SPLITS]
    bounds = np.cumsum([0, *sizes]).tolist()
    ranges = {split: [bounds[i], bounds[i + 1]] for i, split in enumerate(SPLITS)}
    mean, std = _mean_std(images[: ranges["train"][1]])
    images.flush()
    del images
    rows = [(split_of[i], entries[i].label, entries[i].name) for i in kept]
    _write_csv(out / "rows.csv", ["split", "label", "name"], rows)
    _write_csv(out / "skipped.csv", ["name", "stage", "reason"], sorted(skipped))
    meta = {
        "format": CACHE_FORMAT,
        "key": plan.key,
        "fingerprint": fingerprint(plan.key, rows),
        "source": listing.source,
        "classes": list(listing.classes),
        "counts": counts,
        "ranges": ranges,
        "decoding": dataclasses.asdict(decoding),
        "mean": mean,
        "std": std,
        "user_split": sorted({e.split for e in entries if e.split}),
        "listed": len(entries),
        "ignored": listing.ignored,
        "skipped": len(skipped),
        **plan.summary,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.rename(out, target)
    shutil.rmtree(build, ignore_errors=True)


def _mean_std(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of ``images`` / 255, over every pixel, in blocks of ~64 MB."""
    channels = images.shape[1]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    per_row = max(1, int(np.prod(images.shape[1:])) * 4)
    step = max(1, 64_000_000 // per_row)
    for start in range(0, len(images), step):
        block = images[start : start + step].astype(np.float32) / 255
        total += block.sum(axis=(0, 2, 3), dtype=np.float64)
        squares += np.square(block).sum(axis=(0, 2, 3), dtype=np.float64)
    count = max(1, len(images) * images.shape[2] * images.shape[3])
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return [round(float(m), 6) for m in mean], [round(max(float(s), 1e-6), 6) for s in std]


def _write_csv(path: Path, header: list[str], rows: Sequence[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue())
