"""The rungs, the MO-ASHA decision and its replay; see ``search.pruners``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from evaluation.metrics import get_metric
from evaluation.training import Checkpoint
from search.errors import UsageError
from search.pareto import losses_dominate
from spaces import Objective

__all__ = [
    "PRUNERS",
    "RUNG_ACCURACIES",
    "RUNG_DECISIONS",
    "BudgetSpent",
    "Pruner",
    "Pruning",
    "Replayed",
    "RungDecision",
    "RungPoint",
    "RungWatch",
    "Verdict",
    "budget_spent",
    "decide",
    "images_saved_fraction",
    "rank_points",
    "recorded_decisions",
    "recorded_rungs",
    "replay_decisions",
    "rung_point",
    "study_objectives",
]

PRUNERS = ("asha", "hyperband", "median", "none")
SINGLE_OBJECTIVE_PRUNERS = ("hyperband", "median")
RUNG_ACCURACIES = "rung_accuracies"  # trial user attribute: {str(images): validation accuracy}
RUNG_DECISIONS = "rung_decisions"  # trial user attribute: [RungDecision.to_attr(), ...]
STUDY_PRUNER = "pruner"  # study user attribute: the pruner in effect (Pruning.settings()), read by every worker


# --- the pruner of a run ---------------------------------------------------------


@dataclass(frozen=True)
class Pruning:
    """Which pruner a run uses and its rungs: ``min_fraction`` of the budget, then ``eta`` times more."""

    kind: str = "none"
    min_fraction: Fraction = Fraction(1, 9)
    eta: int = 3

    def __post_init__(self) -> None:
        if self.kind not in PRUNERS:
            raise UsageError(f"unknown pruner {self.kind!r}; expected one of {', '.join(PRUNERS)}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise UsageError(f"eta must be an integer >= 2, got {self.eta!r}")
        fraction = Fraction(self.min_fraction).limit_denominator(10_000)
        if not 0 < fraction < 1:
            raise UsageError(f"the first rung must be a fraction of the budget in (0, 1), got {self.min_fraction}")
        object.__setattr__(self, "min_fraction", fraction)

    def fractions(self) -> tuple[Fraction, ...]:
        """The rungs below the whole budget, as fractions of it; none without a pruner."""
        if self.kind == "none":
            return ()
        found, fraction = [], self.min_fraction
        while fraction < 1:
            found.append(fraction)
            fraction *= self.eta
        return tuple(found)

    def rungs(self, budget: int) -> tuple[int, ...]:
        """Training images seen at each rung of a ``budget``-image run (the whole run excluded)."""
        counts = {math.ceil(budget * fraction) for fraction in self.fractions()}
        return tuple(sorted(c for c in counts if 0 < c < budget))

    def check(self, objectives: Sequence[Objective]) -> None:
        """Optuna's pruners rank one value: refuse them for a multi-objective space."""
        if self.kind in SINGLE_OBJECTIVE_PRUNERS and len(objectives) > 1:
            names = ", ".join(o.metric for o in objectives)
            raise UsageError(
                f"--pruner {self.kind} is for single-objective spaces, this one has {len(objectives)} "
                f"objectives ({names}); use --pruner asha or none"
            )

    def optuna_pruner(self, budget: int) -> BasePruner:
        """The Optuna pruner the study is created with: NopPruner unless Optuna's own pruner decides."""
        rungs = self.rungs(budget)
        if self.kind == "median" and rungs:
            return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
        if self.kind == "hyperband" and rungs:
            return optuna.pruners.HyperbandPruner(min_resource=rungs[0], max_resource=budget, reduction_factor=self.eta)
        return optuna.pruners.NopPruner()

    def settings(self) -> dict[str, Any]:
        """As stored with the study (JSON and YAML)."""
        return {"kind": self.kind, "min_fraction": str(self.min_fraction), "eta": self.eta}

    @classmethod
    def from_settings(cls, stored: Mapping[str, Any] | None) -> Pruning:
        """The pruning a study stored; none for a study that stored none (made elsewhere, or before pruners)."""
        if not stored:
            return cls()
        return cls(kind=stored["kind"], min_fraction=Fraction(stored["min_fraction"]), eta=int(stored["eta"]))

    @classmethod
    def of_study(cls, study: optuna.Study) -> Pruning:
        """The pruning in effect for ``study``: what its latest run stored (``store_in``)."""
        return cls.from_settings(study.user_attrs.get(STUDY_PRUNER))

    def store_in(self, study: optuna.Study) -> None:
        """Make this the study's pruning, which worker processes read (``TrialObjective``)."""
        study.set_user_attr(STUDY_PRUNER, self.settings())

    def describe(self) -> str:
        """One line for the start of a run: the pruner and where it looks."""
        fractions = self.fractions()
        if not fractions:
            return "pruner none (every trial trains its whole budget)"
        at = ", ".join(str(f) for f in fractions)
        return f"pruner {self.kind} (rungs at {at} of the budget, eta {self.eta})"


# --- the decision ----------------------------------------------------------------


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


# --- points and decisions in the storage -----------------------------------------


def study_objectives(study: optuna.Study) -> tuple[Objective, ...]:
    """The study's objectives (metric names and directions), as the storage holds them."""
    names = study.metric_names or [f"objective{i}" for i in range(len(study.directions))]
    return tuple(Objective(name, d.name.lower()) for name, d in zip(names, study.directions))


def recorded_rungs(user_attrs: Mapping[str, Any]) -> dict[int, float]:
    """A trial's accuracy at each rung it reached, by images seen."""
    return {int(images): float(accuracy) for images, accuracy in (user_attrs.get(RUNG_ACCURACIES) or {}).items()}


def rung_point(
    number: int, user_attrs: Mapping[str, Any], images: int, objectives: Sequence[Objective]
) -> RungPoint | None:
    """A trial's point at the rung of ``images``, from its user attributes; None when it did not reach it.

    The metric measured in training (accuracy, per epoch) takes the rung's
    value; the others are the trial's recorded costs. A value the trial lacks
    is the metric's worst, so it never ranks best.
    """
    accuracy = recorded_rungs(user_attrs).get(images)
    if accuracy is None:
        return None
    values = []
    for objective in objectives:
        metric = get_metric(objective.metric)
        value = accuracy if metric.per_epoch else metric.value(user_attrs)
        values.append(metric.worst_for(objective.direction) if value is None else float(value))
    return RungPoint(number, tuple(values))


@dataclass(frozen=True)
class RungDecision:
    """What a trial's pruner said at one rung, as recorded on the trial."""

    rung: int  # 1-based
    rungs: int  # rungs below the whole budget
    images: int  # the rung's images (the trial validated at the first step past them)
    continued: bool
    reason: str
    pruner: str
    eta: int
    rank: int | None = None  # asha: the trial's rank among the points at the rung, 1 is best
    points: int | None = None
    peers: tuple[int, ...] = ()  # asha: the other trials whose points it was compared with

    def to_attr(self) -> dict[str, Any]:
        attr = {k: v for k, v in vars(self).items() if v is not None}
        attr["peers"] = list(self.peers)
        return attr

    @classmethod
    def from_attr(cls, attr: Mapping[str, Any]) -> RungDecision:
        return cls(**{**attr, "peers": tuple(attr.get("peers", ()))})


def recorded_decisions(user_attrs: Mapping[str, Any]) -> list[RungDecision]:
    return [RungDecision.from_attr(d) for d in user_attrs.get(RUNG_DECISIONS) or ()]


@dataclass(frozen=True)
class Replayed:
    """One recorded ASHA decision and the one recomputed from the storage."""

    trial: int
    rung: int
    recorded: bool  # continued, as recorded
    replayed: Verdict

    @property
    def agrees(self) -> bool:
        return self.recorded == self.replayed.continued


def replay_decisions(study: optuna.Study, objectives: Sequence[Objective] | None = None) -> list[Replayed]:
    """Every ASHA decision the study records, recomputed from the stored points alone.

    ``objectives``: None takes the study's metric names and directions (as
    ``search run`` stores them).
    """
    objectives = study_objectives(study) if objectives is None else tuple(objectives)
    directions = [o.direction for o in objectives]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    replays = []
    for number, trial in sorted(trials.items()):
        for decision in recorded_decisions(trial.user_attrs):
            if decision.pruner != "asha":
                continue
            own = rung_point(number, trial.user_attrs, decision.images, objectives)
            peers = [rung_point(n, trials[n].user_attrs, decision.images, objectives) for n in decision.peers]
            if own is None or None in peers:
                raise ValueError(f"trial {number}, rung {decision.rung}: a compared point is missing from the storage")
            verdict = decide(own, [p for p in peers if p is not None], directions, decision.eta)
            replays.append(Replayed(number, decision.rung, decision.continued, verdict))
    return replays


# --- one run's pruner, and one trial's watch -------------------------------------


class Pruner:
    """The pruner of one run: the rungs of its budget and how a trial is judged at each."""

    def __init__(self, pruning: Pruning, objectives: Sequence[Objective], budget: int) -> None:
        pruning.check(objectives)
        self.pruning, self.objectives, self.budget = pruning, tuple(objectives), budget
        self.rungs = pruning.rungs(budget)
        # One Optuna pruner for the run: Hyperband keeps its brackets between trials.
        self.optuna = pruning.optuna_pruner(budget) if pruning.kind in SINGLE_OBJECTIVE_PRUNERS else None

    def watch(self, trial: optuna.Trial) -> RungWatch:
        """``train``'s ``on_checkpoint`` for ``trial``, with the rungs to stop at."""
        return RungWatch(self, trial)


@dataclass
class RungWatch:
    """One trial at its rungs: records its accuracy, then asks the pruner; ``stopped`` says why it ended."""

    pruner: Pruner
    trial: optuna.Trial
    accuracies: dict[str, float] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    stopped: RungDecision | None = None

    @property
    def checkpoints(self) -> tuple[int, ...]:
        return self.pruner.rungs

    def __call__(self, checkpoint: Checkpoint) -> bool:
        """Record the rung's accuracy on the trial, decide, record the decision; True stops training."""
        rungs = self.pruner.rungs
        rung = max(i for i, images in enumerate(rungs) if images <= checkpoint.images)
        images = rungs[rung]
        if checkpoint.val_accuracy is None:  # no validation set: nothing to judge by
            return False
        self.accuracies[str(images)] = checkpoint.val_accuracy
        self.trial.set_user_attr(RUNG_ACCURACIES, self.accuracies)
        if len(self.pruner.objectives) == 1:  # Optuna keeps intermediate values for one objective only
            self.trial.report(checkpoint.val_accuracy, step=images)
        decision = self._decide(rung, images)
        self.decisions.append(decision.to_attr())
        self.trial.set_user_attr(RUNG_DECISIONS, self.decisions)
        if decision.continued:
            return False
        self.stopped = decision
        return True

    def _decide(self, rung: int, images: int) -> RungDecision:
        pruning, study = self.pruner.pruning, self.trial.study
        trials = study.get_trials(deepcopy=False)
        own = next(t for t in trials if t.number == self.trial.number)
        common = {"rung": rung + 1, "rungs": len(self.pruner.rungs), "images": images}
        common |= {"pruner": pruning.kind, "eta": pruning.eta}
        where = f"rung {rung + 1} of {len(self.pruner.rungs)}, {images:,} of {self.pruner.budget:,} images"
        if self.pruner.optuna is not None:
            stop = self.pruner.optuna.prune(study, own)
            verb = "stopped by" if stop else "kept by"
            return RungDecision(
                continued=not stop, reason=f"{verb} Optuna's {pruning.kind} pruner at {where}", **common
            )
        objectives = self.pruner.objectives
        point = rung_point(own.number, {**own.user_attrs, RUNG_ACCURACIES: self.accuracies}, images, objectives)
        assert point is not None  # the accuracy was just recorded
        peers = [
            p
            for t in trials
            if t.number != own.number and (p := rung_point(t.number, t.user_attrs, images, objectives)) is not None
        ]
        verdict = decide(point, peers, [o.direction for o in objectives], pruning.eta)
        reason = f"{'continued' if verdict.continued else 'stopped'} at {where}: {verdict.reason(pruning.eta)}"
        return RungDecision(
            continued=verdict.continued,
            reason=reason,
            rank=verdict.rank,
            points=verdict.points,
            peers=tuple(sorted(p.trial for p in peers)),
            **common,
        )


# --- the budget spent ------------------------------------------------------------


@dataclass(frozen=True)
class BudgetSpent:
    """Training images the trials that trained saw, against what their full runs would have seen."""

    trials: int
    images_seen: int
    images_planned: int

    @property
    def saved(self) -> float:
        """The fraction of the planned training images not spent (0 when nothing trained)."""
        return 1 - self.images_seen / self.images_planned if self.images_planned else 0.0


def budget_spent(trials: Iterable[FrozenTrial]) -> BudgetSpent:
    """Over the trials that started training (``images_planned`` recorded), still running ones excluded."""
    spent = [
        (int(t.user_attrs.get("images_seen", 0)), int(t.user_attrs["images_planned"]))
        for t in trials
        if t.state is not TrialState.RUNNING and t.user_attrs.get("images_planned")
    ]
    return BudgetSpent(len(spent), sum(s for s, _ in spent), sum(p for _, p in spent))


def images_saved_fraction(study: optuna.Study) -> float:
    """The fraction of the planned training images the study's finished trials did not spend."""
    return budget_spent(study.get_trials(deepcopy=False)).saved
