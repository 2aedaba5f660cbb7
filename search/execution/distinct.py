"""Distinct trials: ``--trials N`` is N architectures evaluated, not N proposals.

A sampler proposes architectures the study already holds more often as it
converges: in the headline's 60-minute search TPE did so in 826 of 1,176
trials. Such a trial still runs, cheaply: it takes the recorded values and
constraints, or is pruned as its original was (``search.execution.objective``,
outcome ``duplicate``), and is told to Optuna, so TPE, NSGA-II and GP learn
from it. But it holds no slot of the budget, and the loop asks again.

What counts: every finished (complete or pruned) trial of the study that is
not such a copy, in every worker and every earlier run, so the count lives in
the storage. A proposal refused before training (it cannot be built, or breaks
a constraint) counts: it is a distinct proposal the sampler had to learn about.
A trial that failed counts nothing and is retried, as before. Trials handed
over by a warm start (``search.storage.warm_start``) are architectures the
study holds, so a proposal of one is copied, not trained, but this study did
not evaluate them: they count toward no run's budget.

When proposals keep repeating, the sampler has converged. After
``REPEATS_BEFORE_FALLBACK`` repeats in a row in one process, that process's
next trial explores instead (``Exploration``): a random architecture of the
space that the study does not hold, each knob drawn uniformly as
``RandomSampler`` draws it, fixed on the trial the way a queued trial's
parameters are, and recorded as ``proposed_by: fallback-random``. Random
rather than a mutation of a front member: a converged TPE already proposes
near its front, and what it lacks is the rest of the space. The sampler then
learns the explored architecture like any other trial.

The loop stops rather than spin when the space is exhausted (every
architecture evaluated, by ``Space.size`` when it is exact, or no new one in
``FALLBACK_DRAWS`` random draws) or when ``MAX_FRUITLESS_FALLBACKS``
fallbacks in a row added nothing (another worker took the architecture first,
or it failed). With the fallback off, it stops after ``REPEAT_LIMIT`` repeats
in a row. The reason is stored on the study (``STOPPED_ATTR``), where the run
that started the workers reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from evaluation import ArchitectureError
from search.storage._optuna import fix_params
from search.storage.records import TrialOutcome, architecture_key
from search.storage.warm_start import WARM_START_ATTR
from spaces import Space, sample_architecture

__all__ = [
    "FALLBACK_DRAWS",
    "FALLBACK_RANDOM",
    "MAX_FRUITLESS_FALLBACKS",
    "PROPOSED_BY_ATTR",
    "REPEATS_BEFORE_FALLBACK",
    "REPEAT_LIMIT",
    "STOPPED_ATTR",
    "Exploration",
    "converged_line",
    "count_summary",
    "counted_trials",
    "holds_budget_slot",
    "stop_reason",
]

# A copy costs a proposal and a few writes to the storage: 0.7 to 0.9 s measured (SQLite,
# a 2-core machine at a load of 10), against tens of seconds for a trained trial on the
# default CPU budget, so ten cost little.
# And a sampler whose proposals are new at least half the time repeats ten in a row
# with probability 0.5**10 = 0.1%: only one that has all but stopped proposing new
# architectures falls back (TPE repeating 70% of the time, as in the headline's
# search, does so in 2.8% of windows of ten).
REPEATS_BEFORE_FALLBACK = 10
# Random draws a fallback makes to find an architecture the study lacks. When a share
# f of the space is left, all of them miss with probability (1 - f)**1000: 4.5e-5 at
# f = 1%. A draw costs milliseconds (densenet_hybrid: 5 ms on a loaded 2-core machine),
# so even a fruitless fallback takes seconds; the usual one finds a new architecture at once.
FALLBACK_DRAWS = 1000
# Fallbacks in a row that add no architecture (a race with another worker, a failure)
# before the run stops, and repeats in a row before it stops when the fallback is off.
MAX_FRUITLESS_FALLBACKS = 3
REPEAT_LIMIT = 100

PROPOSED_BY_ATTR = "proposed_by"  # user attribute of a trial the fallback proposed
FALLBACK_RANDOM = "fallback-random"
FALLBACK_AFTER_ATTR = "fallback_after_repeats"  # the repeats in a row that called the fallback
STOPPED_ATTR = "stopped_early"  # study user attribute: why the last run stopped before its budget
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Mixed into the worker's sampler seed, so the fallback's draws are not the sampler's own stream.
_FALLBACK_STREAM = 0xFA11BAC


def holds_budget_slot(trial: FrozenTrial) -> bool:
    """Whether ``trial``, once finished, counts toward ``--trials``: neither a copy of an
    evaluated architecture nor a trial handed over by a warm start."""
    attrs = trial.user_attrs
    return attrs.get("outcome") != TrialOutcome.DUPLICATE.value and WARM_START_ATTR not in attrs


def counted_trials(study: optuna.Study) -> int:
    """Finished trials that count toward the budget: distinct architectures this study evaluated."""
    return sum(holds_budget_slot(t) for t in study.get_trials(deepcopy=False, states=_FINISHED))


def count_summary(study: optuna.Study) -> str | None:
    """What the study's finished trials are, when not all count toward the budget:
    '3 count toward --trials, 20 copies of evaluated architectures, 5 from a warm start'."""
    finished = study.get_trials(deepcopy=False, states=_FINISHED)
    copies = sum(t.user_attrs.get("outcome") == TrialOutcome.DUPLICATE.value for t in finished)
    warm = sum(WARM_START_ATTR in t.user_attrs for t in finished)
    if not (copies or warm):
        return None
    parts = [f"{sum(holds_budget_slot(t) for t in finished)} count toward --trials"]
    parts += [f"{copies} copies of evaluated architectures"] if copies else []
    parts += [f"{warm} from a warm start"] if warm else []
    return ", ".join(parts)


def stop_reason(study: optuna.Study) -> str | None:
    """Why the study's last run stopped before its budget (exhausted space, fruitless fallbacks), or None."""
    return study.user_attrs.get(STOPPED_ATTR)


def converged_line(trial: FrozenTrial) -> str | None:
    """What a fallback trial says about its sampler, for a run's output; None for any other trial."""
    if trial.user_attrs.get(PROPOSED_BY_ATTR) != FALLBACK_RANDOM:
        return None
    repeats = trial.user_attrs.get(FALLBACK_AFTER_ATTR)
    return (
        f"sampler converged: {repeats} proposals in a row were architectures the study already holds; "
        f"trial {trial.number} explores a random one"
    )


def _known_keys(study: optuna.Study) -> set[str]:
    """Architectures the study holds: finished, or being evaluated now."""
    states = (*_FINISHED, TrialState.RUNNING)
    return {
        key for t in study.get_trials(deepcopy=False, states=states) if (key := t.user_attrs.get("architecture_key"))
    }


@dataclass
class Exploration:
    """One process's watch over its sampler's repeats, and the move it makes once the sampler has converged.

    ``fallback_after``: repeats in a row (copies of evaluated architectures, in
    this process) after which the next trial explores; None: never, the sampler
    is asked on, up to ``REPEAT_LIMIT`` repeats in a row. ``seed``: of the
    random draws (each worker and start its own, as its sampler's).
    """

    space: Space
    seed: int
    fallback_after: int | None = REPEATS_BEFORE_FALLBACK
    draws: int = FALLBACK_DRAWS
    repeats: int = 0  # copies in a row, in this process
    fruitless: int = 0  # fallback trials in a row that added no architecture
    _sampler: optuna.samplers.RandomSampler = field(init=False, repr=False)

    def __post_init__(self) -> None:
        seed = int(np.random.SeedSequence([self.seed % 2**64, _FALLBACK_STREAM]).generate_state(1)[0])
        self._sampler = optuna.samplers.RandomSampler(seed=seed)

    @property
    def due(self) -> bool:
        """Whether this process's next trial explores instead of asking the sampler."""
        return self.fallback_after is not None and self.repeats >= self.fallback_after

    def after(self, trial: FrozenTrial) -> None:
        """Note a trial this process ran to its end."""
        explored = trial.user_attrs.get(PROPOSED_BY_ATTR) == FALLBACK_RANDOM
        if trial.state in _FINISHED and holds_budget_slot(trial):
            self.repeats = self.fruitless = 0
            return
        if trial.user_attrs.get("outcome") == TrialOutcome.DUPLICATE.value:
            self.repeats += 1
        if explored:
            self.fruitless += 1

    def stop(self, study: optuna.Study) -> str | None:
        """Why the loop must stop before its budget, or None to go on."""
        if self.space.size_is_exact and len(_known_keys(study)) >= (size := self.space.size()):
            return f"space {self.space.name} is exhausted: the study holds all its {size:,} architectures"
        if self.fruitless >= MAX_FRUITLESS_FALLBACKS:
            return f"{self.fruitless} fallback architectures in a row added nothing (evaluated meanwhile, or failed)"
        if self.fallback_after is None and self.repeats >= REPEAT_LIMIT:
            return f"the sampler proposed {self.repeats} architectures the study holds in a row (fallback off)"
        return None

    def propose(self, study: optuna.Study) -> dict[str, Any] | None:
        """Parameters of a random architecture the study does not hold; None when ``draws`` draws found none."""
        known = _known_keys(study)
        # Drawn on trials of a throwaway in-memory study, so the space is sampled (and each
        # value converted) exactly as on a real trial; the sampler's stream goes on across calls.
        draws = optuna.create_study(sampler=self._sampler)
        for _ in range(self.draws):
            draw = draws.ask()
            try:
                architecture = sample_architecture(self.space, draw)
            except ArchitectureError:
                continue  # not an architecture: not what exploring is for
            if architecture_key(architecture.to_dict()) not in known:
                return draw.params
        return None

    def exhausted(self) -> str:
        return (
            f"space {self.space.name} looks exhausted: {self.draws:,} random draws found no architecture "
            "the study does not hold"
        )

    def fix(self, trial: optuna.Trial, params: dict[str, Any]) -> None:
        """Make ``trial`` evaluate ``params`` and say why."""
        fix_params(trial, params)
        trial.set_user_attr(PROPOSED_BY_ATTR, FALLBACK_RANDOM)
        trial.set_user_attr(FALLBACK_AFTER_ATTR, self.repeats)
