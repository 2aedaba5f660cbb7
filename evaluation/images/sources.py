"""Data sources: what a user points the toolkit at, listed as labelled entries.

A source is ``KIND:PATH``, one of ``SOURCE_KINDS`` (a dict filled by the
``source_kind`` decorator, as the block registry is):

- ``folder:PATH``: one sub-folder per class (torchvision's ``ImageFolder``
  layout), images found at any depth below it; or ``train/``, ``val/`` and
  ``test/`` folders each holding class folders, where the user fixed the split;
- ``csv:FILE``: a manifest with a path column (relative to the file's folder),
  a label column and an optional split column (train, val, test);
- ``npz:FILE``: arrays ``x_train``, ``y_train`` and optionally ``x_test``,
  ``y_test`` (and ``x_val``, ``y_val``, ``classes``).

Listing reads names, labels and file sizes only; no pixel is decoded here.
Every mistake in the layout (an empty class, a single class, a missing column,
a label outside the class list, a path escaping the manifest's folder) is a
one-line ``DataError`` raised before anything is written. Hidden files and
folders (a leading dot) and files Pillow has no extension for are passed over.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation.errors import DataError, show
from evaluation.images.decode import CHANNELS, RESIZE_POLICIES, image_extensions

__all__ = [
    "SOURCE_KINDS",
    "SPLITS",
    "Entry",
    "Listing",
    "SourceKind",
    "SourceOptions",
    "is_source",
    "list_source",
    "parse_source",
    "source_kind",
]

SPLITS = ("train", "val", "test")
# Folder and manifest spellings of the three splits.
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
_CSV_COLUMNS = {
    "path": ("path", "file", "filename", "image"),
    "label": ("label", "class", "target"),
    "split": ("split", "subset"),
}


@dataclass(frozen=True)
class SourceOptions:
    """How a source becomes a data set: resolution, channels, resize policy, split, strictness.

    ``resolution`` None: the median shorter side of the images, at most
    ``AUTO_RESOLUTION_LIMIT``; ``channels`` None: the majority of the files'
    modes (grey 1, anything else 3). The split is the data set's own, so every
    run and every finalize of a study sees the same images: the user's where
    the source gives one, else stratified, ``val_fraction`` and
    ``test_fraction`` of each class drawn by ``split_seed``. ``strict``
    refuses a data set with any undecodable file instead of skipping it.
    ``classes``: the class list in order (a manifest's labels must be among it).
    ``flip``: whether a mirror image keeps its label (photos yes, text no).
    """

    resolution: int | None = None
    channels: int | None = None
    resize: str = "crop"
    background: int = 255
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0
    classes: tuple[str, ...] | None = None
    flip: bool = True
    strict: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.resolution is None or self.resolution >= 1, f"resolution must be >= 1, got {self.resolution}"),
            (self.channels is None or self.channels in CHANNELS, f"channels must be 1 or 3, got {self.channels}"),
            (
                self.resize in RESIZE_POLICIES,
                f"resize must be one of {', '.join(RESIZE_POLICIES)}, got {show(self.resize)}",
            ),
            (0 <= self.background <= 255, f"background must be a grey level 0-255, got {self.background}"),
            (0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), got {self.val_fraction}"),
            (0 < self.test_fraction < 1, f"test_fraction must be in (0, 1), got {self.test_fraction}"),
            (
                self.val_fraction + self.test_fraction < 1,
                f"val_fraction + test_fraction must leave training images (< 1), "
                f"got {self.val_fraction} + {self.test_fraction}",
            ),
            (
                self.classes is None or len(set(self.classes)) == len(self.classes) >= 2,
                f"classes must be 2 or more distinct names, got {show(self.classes)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise DataError(message)

    def key_fields(self) -> dict[str, object]:
        """The options that change the cached pixels or the split (``strict`` and ``flip`` do not)."""
        return {
            "resolution": self.resolution or "auto",
            "channels": self.channels or "auto",
            "resize": self.resize,
            "background": self.background,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "split_seed": self.split_seed,
            "classes": list(self.classes) if self.classes else None,
        }


@dataclass(frozen=True)
class Entry:
    """One image of a listing: its name (a path relative to the listing's root, or ``x_train[12]``),
    its class index, the user's split (None when the source gives none), and its file's size and mtime."""

    name: str
    label: int
    split: str | None = None
    size: int = -1  # -1: the file cannot be stat'ed (a broken link); decoding says why
    mtime_ns: int = 0


@dataclass
class Listing:
    """What a source holds, before decoding: classes, entries, and what identifies its content."""

    source: str  # "folder:/abs/path", as DataSplits.name and the study record it
    kind: str
    root: Path  # a file entry is root / entry.name
    classes: tuple[str, ...]
    entries: list[Entry]
    user_split: bool  # the entries carry the user's split
    ignored: int = 0  # files passed over: hidden, or no image extension
    arrays: Mapping[str, np.ndarray] | None = None  # npz: the arrays, rows as images (read when first used)
    identity: str = ""  # what else identifies the content (a manifest's or an array file's size and mtime)
    notes: list[str] = field(default_factory=list)

    def path(self, entry: Entry) -> Path:
        return self.root / entry.name


@dataclass(frozen=True)
class SourceKind:
    """A registered kind of source: its name, a one-line description, and its lister."""

    name: str
    description: str
    list: Callable[[Path, str, SourceOptions], Listing]


SOURCE_KINDS: dict[str, SourceKind] = {}


def source_kind(name: str, description: str) -> Callable[[Callable], Callable]:
    """Register a lister ``(path, source, options) -> Listing`` as the source kind ``name``."""

    def register(lister: Callable[[Path, str, SourceOptions], Listing]) -> Callable:
        SOURCE_KINDS[name] = SourceKind(name, description, lister)
        return lister

    return register


def is_source(text: str) -> bool:
    """Whether ``text`` names a source kind (``folder:...``) rather than a built-in data set."""
    kind, sep, _ = text.partition(":")
    return bool(sep) and kind in SOURCE_KINDS


def parse_source(text: str) -> tuple[SourceKind, Path]:
    """``KIND:PATH`` as its kind and absolute path (``~`` expanded); an unknown kind lists the known ones."""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in SOURCE_KINDS:
        kinds = ", ".join(f"{k}:PATH" for k in SOURCE_KINDS)
        raise DataError(f"unknown data source {show(text)}; sources are {kinds}, or a built-in data set name")
    if not rest:
        raise DataError(f"{text}: the source needs a path after '{kind}:'")
    return SOURCE_KINDS[kind], Path(os.path.abspath(Path(rest).expanduser()))


def list_source(text: str, options: SourceOptions) -> Listing:
    """The listing of source ``text`` (``folder:PATH``, ``csv:FILE``, ``npz:FILE``)."""
    kind, path = parse_source(text)
    return kind.list(path, f"{kind.name}:{path}", options)


# --- shared checks ------------------------------------------------------------------


def _stat(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of ``path``; (-1, 0) when it cannot be stat'ed (decoding then gives the reason)."""
    try:
        status = path.stat()
    except OSError:
        return -1, 0
    return status.st_size, status.st_mtime_ns


def _class_order(labels: set[str], options: SourceOptions, where: str) -> tuple[str, ...]:
    """The classes: ``options.classes`` when given, else sorted (numerically when all are integers)."""
    if options.classes is not None:
        return options.classes
    if len(labels) < 2:
        found = ", ".join(sorted(labels)) or "none"
        raise DataError(f"{where}: {len(labels)} class ({found}); a classifier needs at least 2")
    if all(label.lstrip("-").isdigit() for label in labels):
        return tuple(sorted(labels, key=int))
    return tuple(sorted(labels))


def _check_classes_in(used: set[str], classes: tuple[str, ...], where: str) -> None:
    """Every class of ``classes`` has at least one image in ``used``'s training entries."""
    empty = [name for name in classes if name not in used]
    if empty:
        raise DataError(f"{where}: class {empty[0]!r} has no training images; every class needs some")


def _identity(path: Path) -> str:
    size, mtime = _stat(path)
    return f"{path}\t{size}\t{mtime}"


# --- folder -------------------------------------------------------------------------


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _images_below(folder: Path, extensions: frozenset[str]) -> tuple[list[Path], int]:
    """Image files at any depth below ``folder``, in sorted order, and the count of files passed over."""
    found, ignored = [], 0
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                found.append(Path(directory) / name)
            else:
                ignored += 1
    return found, ignored


def _split_folders(root: Path) -> dict[str, Path] | None:
    """The user's train/, val/, test/ folders by split when every folder of ``root`` is one of them,
    train/ included; else None, and the folders are classes. Two folders of one split (train/ and
    training/) are refused: taking one would drop the other's images unseen."""
    by_split: dict[str, list[Path]] = {}
    for child in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p)):
        split = _SPLIT_NAMES.get(child.name.lower())
        if split is None:
            return None
        by_split.setdefault(split, []).append(child)
    if "train" not in by_split:
        return None
    for split, folders in by_split.items():
        if len(folders) > 1:
            named = " and ".join(f"{folder.name}/" for folder in folders)
            raise DataError(f"{root}: {named} name the same split ({split}); put its images in one folder")
    return {split: folder for split, (folder,) in by_split.items()}


@source_kind("folder", "one sub-folder per class (or train/, val/, test/ folders of class folders)")
def _list_folder(root: Path, source: str, options: SourceOptions) -> Listing:
    if not root.is_dir():
        raise DataError(f"{source}: no such folder")
    split_dirs = _split_folders(root)
    groups = [(split_dirs[s], s) for s in SPLITS if s in split_dirs] if split_dirs is not None else [(root, None)]
    extensions = image_extensions()
    per_split: list[tuple[str | None, Path, list[Path]]] = []  # (split, class folder, its images)
    ignored = 0
    for folder, split in groups:
        class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))
        if not class_dirs:
            raise DataError(f"{folder}: no class folders; expected one sub-folder per class holding its images")
        for class_dir in class_dirs:
            files, passed = _images_below(class_dir, extensions)
            ignored += passed
            if not files:
                raise DataError(f"{class_dir}: class folder holds no images ({passed} other files)")
            per_split.append((split, class_dir, files))
        ignored += sum(1 for p in folder.iterdir() if p.is_file())
    train_labels = {class_dir.name for split, class_dir, _ in per_split if split in (None, "train")}
    classes = _class_order(train_labels, options, source)
    index = {name: i for i, name in enumerate(classes)}
    entries = []
    for split, class_dir, files in per_split:
        if class_dir.name not in index:
            raise DataError(f"{class_dir}: class {class_dir.name!r} is not in the class list ({', '.join(classes)})")
        for path in files:
            size, mtime = _stat(path)
            entries.append(Entry(path.relative_to(root).as_posix(), index[class_dir.name], split, size, mtime))
    _check_classes_in(train_labels, classes, source)
    return Listing(source, "folder", root, classes, entries, split_dirs is not None, ignored)


# --- csv manifest ----------------------------------------------------------------------


def _column(header: list[str], role: str) -> int | None:
    """Where ``role``'s column is in ``header``, by any of its names; None when it has none."""
    lowered = [name.strip().lower() for name in header]
    for alias in _CSV_COLUMNS[role]:
        if alias in lowered:
            return lowered.index(alias)
    return None


def _required_column(header: list[str], role: str, manifest: Path) -> int:
    column = _column(header, role)
    if column is None:
        raise DataError(
            f"{manifest}: no {role} column; expected one named {' or '.join(_CSV_COLUMNS[role])}, "
            f"found {', '.join(repr(h) for h in header)}"
        )
    return column


def _inside(value: str, manifest: Path, line: int) -> str:
    """``value`` as a normalised path relative to the manifest's folder; escaping it is an error."""
    relative = os.path.normpath(value.replace("\\", "/"))
    if os.path.isabs(value) or relative == ".." or relative.startswith("../"):
        raise DataError(
            f"{manifest}: line {line}: path {show(value)} escapes the manifest's folder {manifest.parent}; "
            f"paths must be relative and stay inside it"
        )
    return Path(relative).as_posix()


@source_kind("csv", "a manifest: path (relative to the file), label and optional split columns")
def _list_csv(manifest: Path, source: str, options: SourceOptions) -> Listing:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise DataError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{manifest}: not a readable CSV file ({type(error).__name__}: {error})") from None
    if not rows:
        raise DataError(f"{manifest}: empty; expected a header row naming path and label columns")
    header = rows[0]
    path_col = _required_column(header, "path", manifest)
    label_col = _required_column(header, "label", manifest)
    split_col = _column(header, "split")
    records: list[tuple[int, str, str, str | None]] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row] + [""] * len(header)
        value, label = cells[path_col], cells[label_col]
        if not value or not label:
            missing = "path" if not value else "label"
            raise DataError(f"{manifest}: line {line}: empty {missing}")
        name = _inside(value, manifest, line)
        if name in seen:
            raise DataError(f"{manifest}: line {line}: {name} is listed twice (first on line {seen[name]})")
        seen[name] = line
        split = None
        if split_col is not None:
            split = _SPLIT_NAMES.get(cells[split_col].lower())
            if split is None:
                raise DataError(
                    f"{manifest}: line {line}: split {show(cells[split_col])} is not one of train, val, test"
                )
        records.append((line, name, label, split))
    if not records:
        raise DataError(f"{manifest}: no rows below the header")
    user_split = split_col is not None
    train_labels = {label for _, _, label, split in records if split in (None, "train")}
    classes = _class_order(train_labels, options, str(manifest))
    index = {name: i for i, name in enumerate(classes)}
    entries = []
    for line, name, label, split in records:
        if label not in index:
            raise DataError(f"{manifest}: line {line}: label {label!r} is not in the class list ({', '.join(classes)})")
        size, mtime = _stat(manifest.parent / name)
        entries.append(Entry(name, index[label], split, size, mtime))
    _check_classes_in(train_labels, classes, str(manifest))
    return Listing(source, "csv", manifest.parent, classes, entries, user_split, identity=_identity(manifest))


# --- npz arrays ----------------------------------------------------------------------


@dataclass(frozen=True)
class _ArrayHeader:
    """An array of an .npz archive known by its header (shape and dtype), its data not read."""

    archive: Path
    key: str

    @functools.cached_property
    def _header(self) -> tuple[tuple[int, ...], np.dtype]:
        with zipfile.ZipFile(self.archive) as stored, stored.open(f"{self.key}.npy") as member:
            version = np.lib.format.read_magic(member)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(member)
        return shape, dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self._header[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        return self._header[1]

    def __len__(self) -> int:
        return self.shape[0]


class _NpzImages(Mapping[str, np.ndarray]):
    """An archive's image arrays, each read (and put channels last) when decoding first asks for it.

    Listing a source happens on every run, also when its cache exists; reading
    every image of a large archive into memory then would cost what the cache saves.
    """

    def __init__(self, archive: Path, headers: dict[str, _ArrayHeader]) -> None:
        self.archive = archive
        self.headers = headers
        self.loaded: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.loaded:
            if key not in self.headers:
                raise KeyError(key)
            with np.load(self.archive, allow_pickle=False) as stored:
                self.loaded[key] = _as_images(stored[key], key, self.archive)
        return self.loaded[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)

    def __len__(self) -> int:
        return len(self.headers)


def _image_layout(shape: tuple[int, ...], key: str, archive: Path) -> str:
    """Where an array of ``shape`` keeps its channels: "none" (N, H, W), "last" (N, H, W, C) with C 1, 3
    or 4, "first" (N, C, H, W) with C 1 or 3; any other shape is a ``DataError``."""
    if len(shape) == 3:
        return "none"
    if len(shape) == 4 and shape[3] in (1, 3, 4):
        return "last"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "first"
    raise DataError(
        f"{archive}: {key} has shape {shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1, 3 or 4"
    )


def _as_images(array: np.ndarray, key: str, archive: Path) -> np.ndarray:
    """``array`` as (N, H, W) or (N, H, W, C): channels last when C is last (1, 3, 4), first when second (1, 3)."""
    layout = _image_layout(array.shape, key, archive)
    if layout == "last":
        return array[..., 0] if array.shape[3] == 1 else array
    if layout == "first":
        return array[:, 0] if array.shape[1] == 1 else array.transpose(0, 2, 3, 1)
    return array


@source_kind("npz", "NumPy arrays x_train, y_train (optional x_test, y_test, x_val, y_val, classes)")
def _list_npz(archive: Path, source: str, options: SourceOptions) -> Listing:
    try:
        with np.load(archive, allow_pickle=False) as stored:
            # Labels and class names are read; images only their headers, until decoding needs them.
            headers = {key: _ArrayHeader(archive, key) for key in stored.files if key.startswith("x_")}
            arrays = {key: stored[key] for key in stored.files if not key.startswith("x_")}
    except FileNotFoundError:
        raise DataError(f"{source}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{archive}: not a readable .npz file ({type(error).__name__}: {error})") from None
    for needed in ("x_train", "y_train"):
        if needed not in headers and needed not in arrays:
            found = ", ".join(sorted([*headers, *arrays])) or "none"
            raise DataError(f"{archive}: no {needed} array (found: {found})")
    images: dict[str, _ArrayHeader] = {}
    labels: dict[str, np.ndarray] = {}
    for split, suffix in (("train", "train"), ("val", "val"), ("test", "test")):
        x, y = headers.get(f"x_{suffix}"), arrays.get(f"y_{suffix}")
        if x is None and y is None:
            continue
        if x is None or y is None:
            raise DataError(f"{archive}: x_{suffix} and y_{suffix} come together; found only one of them")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(
                f"{archive}: y_{suffix} must hold one label per image of x_{suffix}: {y.shape} for {x.shape}"
            )
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{archive}: x_{suffix} holds {x.dtype}; expected integers or floats")
        _image_layout(x.shape, f"x_{suffix}", archive)
        images[split], labels[split] = x, y
    names = {split: [str(v) for v in y.tolist()] for split, y in labels.items()}
    if "classes" in arrays:
        classes = tuple(str(c) for c in arrays["classes"].tolist())
        if np.issubdtype(labels["train"].dtype, np.integer):
            known = {str(i): name for i, name in enumerate(classes)}
            for split, values in names.items():
                bad = [v for v in values if v not in known]
                if bad:
                    raise DataError(f"{archive}: y_{split} holds {bad[0]}, no index of classes (0-{len(classes) - 1})")
                names[split] = [known[v] for v in values]
        options = dataclasses.replace(options, classes=options.classes or classes)
    classes = _class_order(set(names["train"]), options, str(archive))
    index = {name: i for i, name in enumerate(classes)}
    entries = []
    for split, values in names.items():
        for i, value in enumerate(values):
            if value not in index:
                raise DataError(f"{archive}: y_{split}[{i}] is {value!r}, not in the class list ({', '.join(classes)})")
            entries.append(Entry(f"x_{split}[{i}]", index[value], split))
    _check_classes_in(set(names["train"]), classes, str(archive))
    return Listing(
        source,
        "npz",
        archive.parent,
        classes,
        entries,
        user_split=True,
        arrays=_NpzImages(archive, {f"x_{split}": header for split, header in images.items()}),
        identity=_identity(archive),
    )
