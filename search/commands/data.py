"""``search data``: what the toolkit sees in a data source, and the options that shape it.

``add_source_arguments`` and ``source_options`` are the flags every command
that reads a source takes (--resolution, --channels, --resize, --strict, the split).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from evaluation.data import DATASETS, load_dataset
from evaluation.images import RESIZE_POLICIES, ImageCache, SourceOptions, is_source, list_source, open_cache
from evaluation.images.decode import CHANNELS
from search.commands._common import checked_number, positive_int, random_seed

__all__ = ["DataCommand", "add_source_arguments", "source_options", "summary_lines"]

_fraction = checked_number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
_open_fraction = checked_number(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")
_grey = checked_number(int, lambda v: 0 <= v <= 255, "a grey level 0-255")
_RESIZE_HELP = {
    "crop": "the shorter side to the resolution, then the centre square (torchvision's Resize + CenterCrop)",
    "pad": "the longer side to the resolution, centred on the background",
    "stretch": "both sides to the resolution, the aspect ratio changed",
}


def add_source_arguments(parser: argparse.ArgumentParser, *, resize_is_policy: bool = True) -> None:
    """How a source is read: resolution, channels, resize policy, split, strictness, cache.

    The policy's flag is ``--fit``, also ``--resize`` unless ``resize_is_policy``
    is False (``train`` and ``ablate``, where ``--resize PX`` is the network's input side).
    """
    defaults = SourceOptions()
    group = parser.add_argument_group("image sources (folder:, csv:, npz:)")
    group.add_argument(
        "--resolution",
        type=positive_int,
        default=None,
        metavar="PX",
        help="Side of the square images in pixels (default: the median shorter side of the files, at most 224).",
    )
    group.add_argument(
        "--channels",
        type=positive_int,
        choices=CHANNELS,
        default=None,
        help="1 (grey) or 3 (RGB); every image is converted (default: the majority of the files' modes).",
    )
    group.add_argument(
        *(("--resize", "--fit") if resize_is_policy else ("--fit",)),
        dest="fit",
        choices=RESIZE_POLICIES,
        default=defaults.resize,
        help="How an image becomes square: "
        + "; ".join(f"{name}: {text}" for name, text in _RESIZE_HELP.items())
        + f" (default: {defaults.resize}).",
    )
    group.add_argument(
        "--background",
        type=_grey,
        default=defaults.background,
        metavar="GREY",
        help=f"Grey level behind transparent pixels and pad bands (default: {defaults.background}, white).",
    )
    group.add_argument(
        "--strict",
        action="store_true",
        help="Refuse the data set when a file cannot be decoded (default: skip it, list it beside the cache).",
    )
    group.add_argument(
        "--val-fraction",
        type=_fraction,
        default=defaults.val_fraction,
        metavar="F",
        help=f"Validation share of each class, when the source gives no val split (default: {defaults.val_fraction}).",
    )
    group.add_argument(
        "--test-fraction",
        type=_open_fraction,
        default=defaults.test_fraction,
        metavar="F",
        help=f"Test share of each class, when the source gives no test split (default: {defaults.test_fraction}).",
    )
    group.add_argument(
        "--split-seed",
        type=random_seed,
        default=defaults.split_seed,
        metavar="N",
        help=f"Seed of the split the source does not give (default: {defaults.split_seed}).",
    )
    group.add_argument(
        "--no-flip",
        dest="flip",
        action="store_false",
        help="Mirror images are not the same class (text, digits): train without horizontal flips.",
    )
    group.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="Where decoded images are cached (default: $SEARCH_CACHE_DIR, else ~/.cache/densenet-search/images).",
    )


def source_options(args: argparse.Namespace) -> SourceOptions:
    """The ``SourceOptions`` of ``add_source_arguments``' flags."""
    return SourceOptions(
        resolution=args.resolution,
        channels=args.channels,
        resize=args.fit,
        background=args.background,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        split_seed=args.split_seed,
        flip=args.flip,
        strict=args.strict,
    )


class DataCommand:
    help = "Show what the toolkit sees in a data source: classes, counts, sizes, skipped files, the cache."
    description = (
        "Read a data source as a search would and describe it. SOURCE is a built-in\n"
        f"data set ({', '.join(DATASETS)}) or one of:\n"
        "  folder:PATH  one sub-folder per class (or train/, val/, test/ folders of class folders)\n"
        "  csv:FILE     a manifest: path (relative to the file), label, optional split columns\n"
        "  npz:FILE     arrays x_train, y_train, optional x_test, y_test\n\n"
        "A source's images are decoded once (in parallel, with progress; Ctrl-C keeps\n"
        "what is done and the same command continues) into a cache that later runs open\n"
        "at once; a changed file is noticed and the cache rebuilt. Files that cannot be\n"
        "decoded are skipped with their reason (--strict refuses the data set instead)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("source", metavar="SOURCE", help="folder:PATH, csv:FILE, npz:FILE or a built-in name.")
        parser.add_argument("--data-root", default=None, metavar="DIR", help="For built-ins: look here first.")
        parser.add_argument(
            "--workers", type=positive_int, default=None, help="Decoding processes (default: the CPUs available)."
        )
        parser.add_argument("--skipped", type=positive_int, default=10, help="Skipped files to list (default: 10).")
        add_source_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        if not is_source(args.source):
            data = load_dataset(args.source, root=args.data_root, validation_size=0)
            counts = {
                split: _class_counts(labels.tolist(), data.num_classes)
                for split, (_, labels) in (("train", data.train), ("test", data.test))
            }
            names = data.class_names or tuple(str(i) for i in range(data.num_classes))
            print(f"{args.source}: built-in, {sum(map(sum, counts.values())):,} images in {data.num_classes} classes")
            for line in _class_table(names, counts):
                print(line)
            channels, side, _ = data.input_size
            print(f"  images: {side}x{side}, {channels} channel{'s' if channels > 1 else ''}")
            return 0
        options = source_options(args)
        listing = list_source(args.source, options)
        cache = open_cache(
            listing, options, cache_dir=args.cache_dir, workers=args.workers, progress=sys.stderr.isatty()
        )
        for line in summary_lines(cache, shown_skipped=args.skipped):
            print(line)
        return 0


def _class_counts(labels: list[int], num_classes: int) -> list[int]:
    counts = [0] * num_classes
    for label in labels:
        counts[label] += 1
    return counts


def _class_table(names: tuple[str, ...] | list[str], counts: dict[str, list[int]]) -> list[str]:
    width = max(len("total"), *(len(name) for name in names))
    splits = [split for split in counts if sum(counts[split])]
    header = f"  {'class':<{width}}" + "".join(f"{split:>9}" for split in splits)
    rows = [f"  {name:<{width}}" + "".join(f"{counts[s][i]:>9,}" for s in splits) for i, name in enumerate(names)]
    total = f"  {'total':<{width}}" + "".join(f"{sum(counts[s]):>9,}" for s in splits)
    return [header, *rows, total]


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


def summary_lines(cache: ImageCache, *, shown_skipped: int = 10) -> list[str]:
    """What ``search data`` prints of a cache: computed from its meta.json and skipped.csv alone."""
    meta: dict[str, Any] = cache.meta
    decoding = cache.decoding
    kept = sum(map(sum, meta["counts"].values()))
    passed = f"; {meta['ignored']:,} other files passed over (hidden, or not images)" if meta["ignored"] else ""
    lines = [f"{meta['source']}: {kept:,} images in {len(meta['classes'])} classes{passed}"]
    if meta["user_split"]:
        given = ", ".join(meta["user_split"])
        lines.append(f"  split: the source's own ({given}); the rest carved per class")
    else:
        lines.append("  split: carved from each class (stratified; --val-fraction, --test-fraction, --split-seed)")
    lines += _class_table(meta["classes"], meta["counts"])
    sizes = ", ".join(f"{w}x{h} ({n:,})" for w, h, n in meta["sizes"])
    more = (
        f", and {meta['distinct_sizes'] - len(meta['sizes'])} other sizes"
        if meta["distinct_sizes"] > len(meta["sizes"])
        else ""
    )
    low, median, high = meta["shorter_side"]
    lines.append(f"  sizes: {sizes}{more}; shorter side {low}-{high} px, median {median}")
    lines.append("  modes: " + ", ".join(f"{mode} ({n:,})" for mode, n in meta["modes"].items()))
    lines.append("  formats: " + ", ".join(f"{name or '?'} ({n:,})" for name, n in meta["formats"].items()))
    lines.append(
        f"  resolution: {decoding.side} px ({meta['resolution_reason']}); resize: {decoding.resize} "
        f"({_RESIZE_HELP[decoding.resize]})"
    )
    lines.append(f"  channels: {decoding.channels} ({meta['channels_reason']})")
    mean = ", ".join(f"{m:.4f}" for m in meta["mean"])
    std = ", ".join(f"{s:.4f}" for s in meta["std"])
    lines.append(f"  mean {mean}; std {std} (training split, pixels / 255)")
    if meta["skipped"]:
        lines.append(
            f"  skipped: {meta['skipped']:,} files that cannot be decoded, all listed in {cache.skipped_file}:"
        )
        lines += [f"    {name}: {reason}" for name, _, reason in _skipped_rows(cache.skipped_file)[:shown_skipped]]
        if meta["skipped"] > shown_skipped:
            lines.append(f"    ... and {meta['skipped'] - shown_skipped:,} more")
    else:
        lines.append("  skipped: none, every file decoded")
    lines.append(f"  cache: {cache.directory} ({_megabytes(cache.nbytes)})")
    lines.append(f"  fingerprint: {meta['fingerprint']}")
    return lines


def _skipped_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))[1:]
