"""The data set's own train / validation / test split, and its fingerprint.

The user's split is kept where the source gives one (train/, val/, test/
folders, a manifest's split column, an archive's x_test). A split the source
does not give is carved from the training entries of each class (stratified):
``max(1, round(n * fraction))`` of its ``n`` images, the ones whose hash of
(``split_seed``, name) ranks first. A hash rank, not a shuffle: adding images
to a class leaves the others where they were, except at the boundary.

The fingerprint hashes the cache key and which entry is in which split: a
study records it, and a later finalize that finds another refuses to mix the two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from evaluation.errors import DataError
from evaluation.images.sources import SPLITS, Listing, SourceOptions

__all__ = ["assign_splits", "fingerprint"]


def _rank(seed: int, name: str) -> tuple[str, str]:
    return hashlib.sha256(f"{seed}\0{name}".encode()).hexdigest(), name


def assign_splits(listing: Listing, usable: Sequence[int], options: SourceOptions) -> dict[str, list[int]]:
    """Indices of ``listing.entries`` (those in ``usable``) per split, each ordered by class then name.

    ``DataError`` when a class has too few images for the split (at least one
    for training and one for each carved split).
    """
    entries = listing.entries
    given = {entry_split for i in usable if (entry_split := entries[i].split) is not None}
    carve = [("test", options.test_fraction)] if "test" not in given else []
    if "val" not in given and options.val_fraction > 0:
        carve.append(("val", options.val_fraction))
    splits: dict[str, list[int]] = {split: [] for split in SPLITS}
    for label, name in enumerate(listing.classes):
        members = [i for i in usable if entries[i].label == label]
        pool = sorted(
            (i for i in members if entries[i].split in (None, "train")),
            key=lambda i: _rank(options.split_seed, entries[i].name),
        )
        for i in members:
            if (given_split := entries[i].split) in ("val", "test"):
                splits[given_split].append(i)
        counts = [(split, max(1, round(len(pool) * fraction))) for split, fraction in carve]
        needed = 1 + sum(count for _, count in counts)
        if len(pool) < needed:
            parts = ", ".join(
                ["1 for training", *(f"{count} for {'validation' if s == 'val' else s}" for s, count in counts)]
            )
            raise DataError(
                f"{listing.source}: class {name!r} has {len(pool)} usable training images; the split needs at least "
                f"{needed} ({parts}); add images, or give the split yourself"
            )
        start = 0
        for split, count in counts:
            splits[split] += pool[start : start + count]
            start += count
        splits["train"] += pool[start:]
    for split in SPLITS:
        splits[split].sort(key=lambda i: (entries[i].label, entries[i].name))
    return splits


def fingerprint(key: str, rows: Sequence[tuple[str, int, str]]) -> str:
    """sha256 of the cache key and every (split, label, name) row: what a study records of its data."""
    digest = hashlib.sha256(key.encode())
    for split, label, name in rows:
        digest.update(f"\n{split}\t{label}\t{name}".encode())
    return digest.hexdigest()
