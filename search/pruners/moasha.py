"""The MO-ASHA decision at one rung: rank the points by non-dominated sorting, keep the top 1/eta

(Schmucker et al., 2021); see ``search.pruners`` for the rules and why."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from search.pareto import losses_dominate

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


def _fronts(losses: dict[int, tuple[float, ...]]) -> list[list[int]]:
    """Non-dominated fronts of the points (trial number -> losses), best first (Deb et al.'s fast sort)."""
    numbers = sorted(losses)
    beaten_by = {n: 0 for n in numbers}
    beats: dict[int, list[int]] = {n: [] for n in numbers}
    for i, a in enumerate(numbers):
        for b in numbers[i + 1 :]:
            if losses_dominate(losses[a], losses[b]):
                beats[a].append(b)
                beaten_by[b] += 1
            elif losses_dominate(losses[b], losses[a]):
                beats[b].append(a)
                beaten_by[a] += 1
    fronts, current = [], [n for n in numbers if beaten_by[n] == 0]
    while current:
        fronts.append(current)
        following = []
        for a in current:
            for b in beats[a]:
                beaten_by[b] -= 1
                if beaten_by[b] == 0:
                    following.append(b)
        current = sorted(following)
    return fronts


def _crowding(front: list[int], losses: dict[int, tuple[float, ...]]) -> dict[int, float]:
    """NSGA-II's crowding distance within one front; the ends of each objective's span get infinity."""
    distance = dict.fromkeys(front, 0.0)
    for k in range(len(losses[front[0]])):
        ordered = sorted(front, key=lambda n: (losses[n][k], n))
        span = losses[ordered[-1]][k] - losses[ordered[0]][k]
        if not 0 < span < math.inf:  # all equal, or unmeasured (infinite) values: nothing to tell apart
            continue
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        for before, point, after in zip(ordered, ordered[1:], ordered[2:]):
            distance[point] += (losses[after][k] - losses[before][k]) / span
    return distance


def rank_points(points: Iterable[RungPoint], directions: Sequence[str]) -> list[RungPoint]:
    """The points best first: by non-dominated front, then crowding distance (larger first), then trial number."""
    by_number = {p.trial: p for p in points}
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    losses = {n: tuple(s * v for s, v in zip(signs, p.values)) for n, p in by_number.items()}
    ordered: list[RungPoint] = []
    for front in _fronts(losses):
        crowding = _crowding(front, losses)
        ordered += [by_number[n] for n in sorted(front, key=lambda n: (-crowding[n], n))]
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
