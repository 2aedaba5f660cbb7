"""Rank correlation: Spearman's rho and Kendall's tau-b, with one rule for when they say nothing.

Both equal scipy's (``spearmanr``, ``kendalltau``; ties share their mean rank)
and are computed here with numpy, because importing scipy.stats costs 1.5 s
where a report or ``search show`` needs one number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["MIN_RANK_PAIRS", "kendall", "spearman"]

# Two pairs always correlate +1 or -1 whatever they are, so a correlation
# needs three at least; below that (or with a side that does not vary) it is None.
MIN_RANK_PAIRS = 3


def _pairs(xs: Sequence[float], ys: Sequence[float]) -> tuple[np.ndarray, np.ndarray] | None:
    """The two sides as arrays, or None when no correlation is defined on them."""
    if len(xs) != len(ys):
        raise ValueError(f"a rank correlation needs pairs: got {len(xs)} and {len(ys)} values")
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if len(x) < MIN_RANK_PAIRS or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return x, y


def _mean_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of the ranks they span (scipy's "average")."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    group = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1
    ranks = np.empty(len(values))
    ranks[order] = ((starts + ends + 1) / 2)[group]
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rho (Pearson's correlation of the mean ranks); None below ``MIN_RANK_PAIRS``
    pairs, for a side that does not vary, or for values that are not finite."""
    pairs = _pairs(xs, ys)
    if pairs is None:
        return None
    rx, ry = (_mean_ranks(side) - (len(side) + 1) / 2 for side in pairs)
    rho = float(np.sum(rx * ry) / math.sqrt(np.sum(rx * rx) * np.sum(ry * ry)))
    return max(-1.0, min(1.0, rho))  # rounding can step past +-1


def kendall(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties in either side leave a pair neither concordant nor discordant, and
    shrink the denominator); None as for ``spearman``."""
    pairs = _pairs(xs, ys)
    if pairs is None:
        return None
    x, y = pairs
    upper = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[:, None] - x[None, :])[upper], np.sign(y[:, None] - y[None, :])[upper]
    tau = float(np.sum(dx * dy) / math.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy)))
    return max(-1.0, min(1.0, tau))
