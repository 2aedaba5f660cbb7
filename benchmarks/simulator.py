"""A simulator of the default space, ``densenet_hybrid``: a search's trial answered in milliseconds.

A trial samples the space as a real one does (``spaces.sample_architecture``),
is refused as a real one is when it cannot be built or breaks the params or
MACs limit (completed as infeasible through ``Trial.set_constraint``, with the
values ``search.execution.objective`` gives it), copies the recorded values of
an architecture the study already evaluated, and otherwise returns the
surrogate's validation accuracy at the default budget plus noise resampled from
the measured seed-to-seed deviations, with the architecture's closed-form MACs.

The surrogate (``benchmarks/simulator_fit.py``) is fitted on every
architecture the committed studies trained at the space's budget and on the
runs trained here (``benchmarks/simulator_data.py``); its choice, its fit on
held-out architectures and the noise are in ``results/simulator/fit.json``.
``run_simulated`` runs a whole search on it, with or without the distinct-
trials rule (issue 23, item 1): a proposal of an evaluated architecture is told
to the sampler with its recorded values and not counted, and after
``patience`` such proposals in a row a random new architecture is evaluated.

    python benchmarks/simulator.py train     # seed replicates and random draws (cached; ~20 s each on a core)
    python benchmarks/simulator.py fit       # choose and score the surrogate: results/simulator/fit.json
    python benchmarks/simulator.py compare   # the samplers on the simulator: results/simulator/samplers.json
    python benchmarks/simulator.py table     # the comparison as a Markdown table (the README's)
    python benchmarks/simulator.py warm      # a warm start against a cold one: results/simulator/warm_start.json
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from simulator_data import Row, training_rows
from simulator_fit import CANDIDATES, FeatureEncoder, NoiseModel
from sklearn.base import RegressorMixin

from evaluation import ArchitectureError, count
from evaluation.metrics import METRICS, get_metric
from search.execution.objective import VALID_CONSTRAINT
from search.pareto import dominates, hypervolume
from search.storage.records import TrialOutcome, architecture_key
from search.storage.warm_start import WarmStart, hand_over
from spaces import Space, load_space, precheck, sample_architecture

__all__ = [
    "SimulatedObjective",
    "SimulatedRun",
    "Simulator",
    "Surrogate",
    "hypervolume_curve",
    "run_simulated",
]

RESULTS = Path(__file__).resolve().parent / "results" / "simulator"
FIT = RESULTS / "fit.json"
# User attributes a simulated trial records (a real trial records many more, under the same names).
KEY, OUTCOME, MEAN, FALLBACK = "architecture_key", "outcome", "simulated_mean_accuracy", "fallback"
LOSSES = ("minimize", "minimize")  # the directions of the (accuracy loss, log10 MACs) pairs a curve scores


class Surrogate:
    """A fitted regressor over ``simulator_fit.FeatureEncoder`` features; predictions are cached per architecture."""

    def __init__(self, model: RegressorMixin, encoder: FeatureEncoder) -> None:
        self.model, self.encoder = model, encoder
        self._cache: dict[str, float] = {}

    def predict(self, architecture: dict[str, Any]) -> float:
        key = architecture_key(architecture)
        if key not in self._cache:
            self._cache[key] = float(self.model.predict(self.encoder.encode(architecture)[None, :])[0])
        return self._cache[key]


@dataclasses.dataclass
class Simulator:
    """The space, its surrogate and its noise; ``fingerprint`` names the fit, so cached runs match it."""

    space: Space
    surrogate: Surrogate
    noise: NoiseModel
    fingerprint: str

    @classmethod
    def load(cls, fit: Path = FIT) -> Simulator:
        """The simulator ``fit.json`` describes: its regressor refitted on the same rows (deterministic)."""
        report = json.loads(fit.read_text())
        space = load_space(report["space"])
        encoder = FeatureEncoder(space)
        rows = training_rows(space)
        expected = report["simulator"]["rows"]
        if rows_digest(rows) != report["simulator"]["rows_digest"] or len(rows) != expected:
            raise RuntimeError(
                f"{fit}: the training rows changed since the fit ({len(rows)} now, {expected} then); "
                "run `python benchmarks/simulator.py fit` again"
            )
        model = CANDIDATES[report["chosen"]]().fit(
            encoder.table([r.architecture for r in rows]), np.array([r.accuracy for r in rows])
        )
        return cls(
            space=space,
            surrogate=Surrogate(model, encoder),
            noise=NoiseModel.from_dict(report["noise"]["model"]),
            fingerprint=report["simulator"]["fingerprint"],
        )


def rows_digest(rows: Sequence[Row]) -> str:
    """A short hash of the rows a surrogate was fitted on."""
    return short_hash(json.dumps([[r.key, round(r.accuracy, 6), r.runs] for r in rows]))


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- one trial ------------------------------------------------------------------------


@dataclasses.dataclass
class SimulatedObjective:
    """The callable for ``study.optimize``: (accuracy, MACs) of the trial's architecture on the simulator.

    Reproducible from ``seed``: trial ``n``'s noise is drawn from a generator
    seeded with (``seed``, ``n``), so the same proposals give the same values.
    The values and constraints are those ``search.execution.objective`` sets:
    an architecture that cannot be built is invalid, with the worst value of
    each objective; one over a limit keeps its counts and violates that limit.
    """

    simulator: Simulator
    seed: int = 0

    def __call__(self, trial: optuna.Trial) -> list[float]:
        space = self.simulator.space
        try:
            arch = sample_architecture(space, trial)
        except ArchitectureError:
            return self._finish(trial, None, None, outcome=TrialOutcome.REJECTED, valid=False)
        record = arch.to_dict()
        key = architecture_key(record)
        trial.set_user_attr(KEY, key)
        previous = _evaluated(trial, key)
        if previous is not None:
            return self._copy(trial, previous)
        try:
            counts = count(arch, space.input_size, space.num_classes)
        except ArchitectureError:
            return self._finish(trial, None, None, outcome=TrialOutcome.REJECTED, valid=False)
        measured = {"params": counts.params, "macs": counts.macs}
        if precheck(space, arch) is not None:
            return self._finish(trial, measured, None, outcome=TrialOutcome.REJECTED, valid=True)
        mean = self.simulator.surrogate.predict(record)
        rng = np.random.default_rng([self.seed, trial.number])
        accuracy = float(np.clip(mean + self.simulator.noise.draw(mean, rng), 0.0, 1.0))
        trial.set_user_attr(MEAN, mean)
        return self._finish(trial, measured, accuracy, outcome=TrialOutcome.TRAINED, valid=True)

    def _finish(
        self,
        trial: optuna.Trial,
        measured: dict[str, int] | None,
        accuracy: float | None,
        *,
        outcome: TrialOutcome,
        valid: bool,
    ) -> list[float]:
        """Values and constraints as ``TrialObjective._finish`` sets them (checked against it in the tests)."""
        space = self.simulator.space
        known = dict(measured or {}) | ({} if accuracy is None else {"accuracy": accuracy})
        trial.set_user_attr(OUTCOME, outcome.value)
        trial.set_constraint(VALID_CONSTRAINT, 0.0 if valid else 1.0)
        for metric in METRICS.values():
            limit = space.constraints.limit(metric.name)
            if limit is not None:
                value = known.get(metric.name)
                trial.set_constraint(metric.name, 0.0 if value is None else (value - limit) / limit)
        values = []
        for objective in space.objectives:
            value = known.get(objective.metric)
            values.append(get_metric(objective.metric).worst_for(objective.direction) if value is None else value)
        return [float(v) for v in values]

    @staticmethod
    def _copy(trial: optuna.Trial, previous: optuna.trial.FrozenTrial) -> list[float]:
        """The recorded values and constraints of the same architecture, as a real search copies them."""
        trial.set_user_attr(OUTCOME, TrialOutcome.DUPLICATE.value)
        if MEAN in previous.user_attrs:
            trial.set_user_attr(MEAN, previous.user_attrs[MEAN])
        for key, value in previous.constraints.items():
            trial.set_constraint(key, value)
        return list(previous.values)


def _evaluated(trial: optuna.Trial, key: str) -> optuna.trial.FrozenTrial | None:
    """The first finished trial of the study with this architecture (``TrialObjective._find_evaluated``)."""
    for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if other.number != trial.number and other.user_attrs.get(KEY) == key:
            return other
    return None


# --- a whole search -------------------------------------------------------------------


@dataclasses.dataclass
class SimulatedRun:
    """What a simulated search evaluated, in the order the budget counted it.

    ``points``: per counted trial, (observed accuracy, noise-free accuracy, MACs)
    when feasible, else None. ``proposals``: trials asked of the sampler in all;
    ``repeats``: those that proposed an evaluated architecture; ``fallbacks``:
    random architectures evaluated after ``patience`` repeats in a row.
    """

    points: list[tuple[float, float, float] | None]
    proposals: int
    repeats: int
    fallbacks: int
    distinct: int  # distinct architectures among the counted trials
    study: optuna.Study = dataclasses.field(compare=False, repr=False)  # in memory: a later run can warm-start from it


def run_simulated(
    simulator: Simulator,
    sampler: optuna.samplers.BaseSampler,
    *,
    trials: int,
    seed: int,
    distinct: bool = False,
    patience: int = 5,
    max_proposals: int | None = None,
    warm_start: optuna.Study | None = None,
) -> SimulatedRun:
    """A search of ``trials`` on the simulator with ``sampler``, ask and tell as ``study.optimize`` does.

    ``distinct`` off: every proposal counts toward ``trials``, a repeat copies
    the recorded values (today's engine). On: a repeat is told with the recorded
    values and does not count; after ``patience`` repeats in a row, the next
    trial evaluates a random architecture the study has not seen (drawn with a
    generator seeded from ``seed``, recorded on the trial as ``fallback``).
    ``max_proposals`` (default 50 x ``trials``) bounds the asks. ``warm_start``:
    a study whose finished trials are handed over first, as ``--warm-start``
    does (``search.storage.warm_start.hand_over``); they count toward nothing.
    """
    space = simulator.space
    objective = SimulatedObjective(simulator, seed=seed)
    study = optuna.create_study(
        directions=[o.direction for o in space.objectives], sampler=sampler, storage=optuna.storages.InMemoryStorage()
    )
    explorer = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed + 1_000_003))
    points: list[tuple[float, float, float] | None] = []
    proposals = repeats = fallbacks = in_a_row = 0
    seen: set[str] = set()
    if warm_start is not None:
        hand_over(WarmStart(warm_start, storage="memory"), study)
        seen |= {key for t in study.get_trials(deepcopy=False) if (key := t.user_attrs.get(KEY)) is not None}
    own = len(seen)
    limit = max_proposals if max_proposals is not None else 50 * trials
    while len(points) < trials and proposals < limit:
        fallback = distinct and in_a_row >= patience
        if fallback:
            study.enqueue_trial(_unseen_params(space, explorer, seen), user_attrs={FALLBACK: True})
        trial = study.ask()
        values = objective(trial)
        frozen = study.tell(trial, values)
        proposals += 1
        repeated = frozen.user_attrs.get(OUTCOME) == TrialOutcome.DUPLICATE.value
        repeats += repeated
        fallbacks += fallback
        if distinct and repeated:
            in_a_row += 1
            continue
        in_a_row = 0
        key = frozen.user_attrs.get(KEY)
        if key is not None:
            seen.add(key)
        feasible = all(v <= 0 for v in frozen.constraints.values())
        points.append((values[0], frozen.user_attrs[MEAN], values[1]) if feasible else None)
    return SimulatedRun(
        points=points, proposals=proposals, repeats=repeats, fallbacks=fallbacks, distinct=len(seen) - own, study=study
    )


def _unseen_params(space: Space, explorer: optuna.Study, seen: set[str], attempts: int = 1000) -> dict[str, Any]:
    """Parameters of a random architecture not in ``seen`` (the last draw if every attempt was seen)."""
    for _ in range(attempts):
        trial = explorer.ask()
        arch = sample_architecture(space, trial)
        explorer.tell(trial, 0.0)
        if architecture_key(arch.to_dict()) not in seen:
            break
    return dict(trial.params)


SCORES = ("observed", "true", "reported")


def hypervolume_curve(
    points: Sequence[tuple[float, float, float] | None], *, reference: tuple[float, float], score: str = "observed"
) -> list[float]:
    """Hypervolume after each counted trial: (accuracy up, log10 MACs down) from ``reference`` (accuracy, MACs).

    ``score``: ``observed``, the accuracies the search recorded (with their
    noise), over every feasible trial; ``true``, the noise-free accuracies of
    the same architectures; ``reported``, the noise-free accuracies of the
    trials on the recorded front only: what retraining the front the search
    reports would give (a lucky run on the front can push a better model off
    it, so this one may fall as trials are added).
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
    corner = (-reference[0], math.log10(reference[1]))
    curve, feasible = [], []
    for point in points:
        if point is not None:
            feasible.append((-point[0], -point[1], math.log10(point[2])))  # observed loss, true loss, log MACs
        if score == "observed":
            chosen = [(observed, macs) for observed, _, macs in feasible]
        elif score == "true":
            chosen = [(true, macs) for _, true, macs in feasible]
        else:
            recorded = [(observed, macs) for observed, _, macs in feasible]
            chosen = [
                (true, macs)
                for observed, true, macs in feasible
                if not any(dominates(other, (observed, macs), LOSSES) for other in recorded)
            ]
        curve.append(hypervolume(chosen, corner))
    return curve


# --- the command line -----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    # The steps' modules import this one; imported here, they find it as ``simulator``.
    import simulator_commands

    return simulator_commands.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
