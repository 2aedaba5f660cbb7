"""The MO-ASHA decision at one rung: rank the points by non-dominated sorting, keep the top 1/eta

(Schmucker et al., 2021); see ``search.pruners`` for the rules and why."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from search.pareto import crowding_distances, non_dominated_ranks, to_losses

__all__ = ["RungPoint", "Verdict", "decide", "rank_points"]


@dataclass(frozen=True)
class RungPoint:
    """One trial at one rung: its objective values, in the space's order (directions given apart)."""

    trial: int
    values: tuple[float, ...]


@dataclass(frozen=True)
class Verdict:
    """Where a point ranks among ``points`` at its rung and whether it is within the ``keep`` best."""

    continued: bool
    rank: int  # 1 is best
    points: int
    keep: int  # floor(points / eta); 0 means too few points to stop on

    def reason(self, eta: int) -> str:
        if self.keep == 0:
            return f"{self.points} point{'s' if self.points > 1 else ''} at the rung, fewer than eta {eta}: continues"
        within = "within" if self.continued else "outside"
        return f"rank {self.rank} of {self.points} by non-dominated sorting, {within} the top {self.keep} (1/{eta})"


def rank_points(points: Iterable[RungPoint], directions: Sequence[str]) -> list[RungPoint]:
    """The points best first: by non-dominated front, then crowding distance (larger first), then trial number."""
    ordered_points = sorted({p.trial: p for p in points}.values(), key=lambda p: p.trial)
    if not ordered_points:
        return []
    losses = to_losses((p.values for p in ordered_points), directions)
    ranks = non_dominated_ranks(losses)
    ordered: list[RungPoint] = []
    for rank in range(1, int(ranks.max()) + 1):
        front = np.flatnonzero(ranks == rank)  # by trial number, so crowding ties go to the earlier trial
        crowding = crowding_distances(losses[front])
        ordered += [ordered_points[front[i]] for i in sorted(range(len(front)), key=lambda i: (-crowding[i], i))]
    return ordered


def decide(point: RungPoint, recorded: Iterable[RungPoint], directions: Sequence[str], eta: int) -> Verdict:
    """Whether ``point``, arriving at a rung that holds ``recorded``, is in the top ``floor(n / eta)``.

    ``n`` counts the recorded points and ``point`` itself (a recorded point of
    the same trial is replaced by it). With fewer than ``eta`` points the
    trial continues (see the module's docstring for why).
    """
    points = {p.trial: p for p in recorded if p.trial != point.trial} | {point.trial: point}
    ordered = rank_points(points.values(), directions)
    rank = next(i for i, p in enumerate(ordered, start=1) if p.trial == point.trial)
    keep = len(ordered) // eta
    return Verdict(continued=keep == 0 or rank <= keep, rank=rank, points=len(ordered), keep=keep)
