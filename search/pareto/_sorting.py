"""Non-dominated sorting, crowding distance and hypervolume on losses: every objective minimised.

A maximised objective enters negated (``to_losses``). Equal vectors do not
dominate each other, so they share a rank, as in ``Study.best_trials``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "crowding_distances",
    "dominates",
    "hypervolume",
    "is_non_dominated",
    "non_dominated_ranks",
    "running_front_sizes",
    "to_losses",
]


def to_losses(values: Iterable[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """Objective values as an (n, objectives) array of losses: maximised ones negated."""
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    rows = [list(v) for v in values]
    losses = np.array(rows, dtype=float).reshape(len(rows), len(signs)) * signs
    if np.isnan(losses).any():
        raise ValueError("objective values must not be NaN (Optuna refuses them for a finished trial)")
    return losses


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Objective values ``a`` are no worse than ``b`` in every objective and better in one.

    ``directions`` holds "maximize" or "minimize" per objective. Equal vectors
    do not dominate each other.
    """
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    x, y = [s * v for s, v in zip(signs, a)], [s * v for s, v in zip(signs, b)]
    return all(p <= q for p, q in zip(x, y)) and any(p < q for p, q in zip(x, y))


def _front_of_unique_sorted(losses: np.ndarray) -> np.ndarray:
    """Which rows no other row dominates, for rows that are distinct and sorted lexicographically.

    A row can only be dominated by one before it in that order, so the first
    row left is always on the front, and every row it does not beat in some
    objective is dropped at once: O(rows x front) rather than all pairs. With
    two objectives a row is on the front when its second loss is below every
    earlier row's: one pass.
    """
    if losses.shape[1] == 2:
        lowest = np.minimum.accumulate(losses[:, 1])
        return np.r_[True, lowest[1:] < lowest[:-1]]
    on_front = np.zeros(len(losses), dtype=bool)
    left = np.arange(len(losses))
    while len(left):
        top = left[0]
        on_front[top] = True
        left = left[np.any(losses[left] < losses[top], axis=1)]
    return on_front


def non_dominated_ranks(losses: np.ndarray) -> np.ndarray:
    """Each row's non-dominated rank: 1 for the Pareto front, 2 for the front of the rest, and so on.

    Deb et al.'s sorting (NSGA-II, 2002) by repeated peeling of fronts; equal
    rows share their rank.
    """
    losses = np.asarray(losses, dtype=float)
    if len(losses) == 0:
        return np.zeros(0, dtype=int)
    unique, inverse = np.unique(losses, axis=0, return_inverse=True)  # lexicographically sorted
    ranks = np.zeros(len(unique), dtype=int)
    left = np.arange(len(unique))
    rank = 0
    while len(left):
        rank += 1
        on_front = _front_of_unique_sorted(unique[left])
        ranks[left[on_front]] = rank
        left = left[~on_front]
    return ranks[inverse.reshape(-1)]


def is_non_dominated(losses: np.ndarray) -> np.ndarray:
    """Which rows no other row dominates (rank 1), without sorting the rest."""
    losses = np.asarray(losses, dtype=float)
    if len(losses) == 0:
        return np.zeros(0, dtype=bool)
    unique, inverse = np.unique(losses, axis=0, return_inverse=True)
    return _front_of_unique_sorted(unique)[inverse.reshape(-1)]


def crowding_distances(losses: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row within one front.

    Per objective, the rows are ordered by their loss (ties by position) and
    the two ends get infinity; each other row adds the gap between its
    neighbours over the objective's span. An objective whose span is 0 (all
    equal) or not finite (an unmeasured, infinite value) tells no row apart
    and adds nothing. Optuna's NSGA-II (``_calc_crowding_distance``) agrees on
    finite values; it spans only the finite ones and orders ties as it meets them.
    """
    losses = np.asarray(losses, dtype=float)
    distance = np.zeros(len(losses))
    for column in losses.T:
        order = np.argsort(column, kind="stable")  # ties keep their positions' order
        span = float(column[order[-1]]) - float(column[order[0]]) if len(order) else 0.0
        if not 0 < span < math.inf:
            continue
        distance[order[[0, -1]]] = math.inf
        distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return distance


def hypervolume(losses: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """Area of the plane that the points dominate, both coordinates minimised, bounded by ``reference``.

    Two objectives only: the one caller (the search-efficiency benchmark)
    scores accuracy against MACs, and exact volumes in more dimensions need
    WFG-class algorithms this project has no use for. Points at or beyond the
    reference in either coordinate add nothing.
    """
    if len(reference) != 2:
        raise ValueError(f"hypervolume is computed for 2 objectives, got a reference point of {len(reference)}")
    points = [tuple(p) for p in losses]
    if any(len(p) != 2 for p in points):
        raise ValueError(f"hypervolume is computed for 2 objectives, got points of {sorted({len(p) for p in points})}")
    inside = sorted(p for p in points if p[0] < reference[0] and p[1] < reference[1])
    area, lowest = 0.0, reference[1]
    for i, (x, y) in enumerate(inside):  # sweep along x: each strip up to the next point, below the best y so far
        lowest = min(lowest, y)
        right = inside[i + 1][0] if i + 1 < len(inside) else reference[0]
        area += (right - x) * (reference[1] - lowest)
    return area


def running_front_sizes(values: Iterable[Sequence[float] | None], directions: Sequence[str]) -> list[int]:
    """The size of the Pareto front among the value vectors so far, after each one.

    ``None`` stands for an entry that cannot join the front (see
    ``search.pareto.candidates``); the size after it is the size before.
    Equal vectors share the front.
    """
    front: list[Sequence[float]] = []
    sizes = []
    for candidate in values:
        if candidate is not None and not any(dominates(f, candidate, directions) for f in front):
            front = [f for f in front if not dominates(candidate, f, directions)] + [candidate]
        sizes.append(len(front))
    return sizes
