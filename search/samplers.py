"""The samplers a search can use: a table of factories by name, each given what it may need.

A factory receives a ``SamplerContext``: the space (a grid sampler enumerates
it), the run's seed, which worker asks and how many trials the study held when
this start began (so workers and resumed starts do not propose the same
architectures again), and the trials planned (TPE and GP start modelling after
a share of them). A new sampler is one more entry::

    @register_sampler("cmaes")
    def _cmaes(context: SamplerContext) -> optuna.samplers.BaseSampler: ...

A factory refuses what it cannot do with a ``UsageError``; the run asks it for
worker 0's sampler before the study is created, so a refusal creates nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from search.errors import UsageError
from search.execution.distinct import REPEATS_BEFORE_FALLBACK
from spaces import Space

__all__ = [
    "GRID_LIMIT",
    "SAMPLERS",
    "SamplerContext",
    "SamplerFactory",
    "SamplerSpec",
    "grid_points",
    "register_sampler",
    "startup_trials",
    "worker_seed",
]

# Optuna's GridSampler holds every combination in each worker's memory and
# scans them for each trial: 100,000 points take about 0.1 s and tens of MB,
# a million 1 s and 0.7 GB (measured with spaces/densenet.yaml's 1,037,232).
GRID_LIMIT = 100_000


@dataclass(frozen=True)
class SamplerContext:
    """What a sampler factory is told about the run and the worker it samples for."""

    space: Space
    seed: int  # the run's --seed
    trials: int  # finished trials the run aims at (the study's total)
    worker: int = 0  # 0 for a run in one process
    existing_trials: int = 0  # trials the study held when this start began

    @property
    def worker_seed(self) -> int:
        """The seed of this worker's sampler at this start (``worker_seed``)."""
        return worker_seed(self.seed, worker=self.worker, existing_trials=self.existing_trials)


SamplerFactory = Callable[[SamplerContext], optuna.samplers.BaseSampler]
SAMPLERS: dict[str, SamplerFactory] = {}


def register_sampler(name: str) -> Callable[[SamplerFactory], SamplerFactory]:
    """Add a factory to ``SAMPLERS`` under ``name`` (``--sampler NAME``)."""

    def register(factory: SamplerFactory) -> SamplerFactory:
        if name in SAMPLERS:
            raise ValueError(f"sampler {name!r} is registered twice")
        SAMPLERS[name] = factory
        return factory

    return register


@dataclass(frozen=True)
class SamplerSpec:
    """Which sampler a run uses, by its name in ``SAMPLERS``, and when it gives way to exploring.

    ``fallback_after``: proposals in a row of architectures the study already
    holds (in one process) after which the next trial explores a random
    architecture of the space instead (``search.execution.distinct``); None
    never explores. A mistake is refused when made.
    """

    name: str = "tpe"
    fallback_after: int | None = REPEATS_BEFORE_FALLBACK

    def __post_init__(self) -> None:
        if self.name not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.name!r}; expected one of {', '.join(SAMPLERS)}")
        after = self.fallback_after
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 1):
            raise UsageError(f"fallback_after must be None (never) or >= 1, got {after!r}")

    def make(self, context: SamplerContext) -> optuna.samplers.BaseSampler:
        return SAMPLERS[self.name](context)


def worker_seed(seed: int, *, worker: int, existing_trials: int) -> int:
    """A sampler seed per worker and per start: the run's seed for worker 0 of a fresh
    study (so a one-process study repeats as before), else one drawn from all three,
    so workers and resumed runs do not propose the same architectures again."""
    if worker == 0 and existing_trials == 0:
        return seed
    return int(np.random.SeedSequence([seed, worker, existing_trials]).generate_state(1)[0])


def startup_trials(trials: int) -> int:
    """Random trials before a model-based sampler models: a third of the planned
    ``trials`` (at least 3, at most Optuna's default 10), so a short study still
    gets past random search."""
    return min(10, max(3, trials // 3))


@register_sampler("tpe")
def _tpe(context: SamplerContext) -> optuna.samplers.BaseSampler:
    # multivariate: the space samples every knob in every trial, so joint
    # modelling stays on. constant_liar: workers sharing a storage avoid
    # proposing the same point while earlier trials still run.
    return optuna.samplers.TPESampler(
        seed=context.worker_seed,
        multivariate=True,
        constant_liar=True,
        n_startup_trials=startup_trials(context.trials),
    )


@register_sampler("nsga2")
def _nsga2(context: SamplerContext) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=context.worker_seed, population_size=20)


@register_sampler("random")
def _random(context: SamplerContext) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=context.worker_seed)


@register_sampler("gp")
def _gp(context: SamplerContext) -> optuna.samplers.BaseSampler:
    # Gaussian-process BO (log EHVI for several objectives, with the trials'
    # constraints); it models the knobs every trial has and samples the
    # conditional ones (a third stage's) at random, without a warning per trial.
    # It learns from COMPLETE trials only (see search.pruners).
    return optuna.samplers.GPSampler(
        seed=context.worker_seed, n_startup_trials=startup_trials(context.trials), warn_independent_sampling=False
    )


def grid_points(space: Space) -> int:
    """Points of the space's grid (``Space.grid``): the product of each parameter's value count.

    At least the space's distinct architectures (``Space.size``): the grid also
    varies the knobs a point does not use (a third stage's, when it has two),
    and such points repeat an architecture, which a trial copies without training.
    """
    return math.prod(len(values) for values in space.grid().values())


@register_sampler("grid")
def _grid(context: SamplerContext) -> optuna.samplers.BaseSampler:
    """Every point of a small space, each once, in an order shuffled by the run's seed.

    Every worker shuffles with the run's seed, not its own: Optuna's
    GridSampler gives trial ``n`` the grid's ``n``-th point, so workers sharing
    one order never take the same point.
    """
    points = grid_points(context.space)
    if points > GRID_LIMIT:
        raise UsageError(
            f"sampler grid enumerates every point of a space, at most {GRID_LIMIT:,}; "
            f"space {context.space.name} has {points:,}"
        )
    if context.trials > points:
        raise UsageError(
            f"sampler grid: space {context.space.name} has {points:,} grid points, fewer than the "
            f"{context.trials:,} trials asked; ask for at most {points:,}"
        )
    return _GridSampler(context.space.grid(), seed=context.seed)


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler, without its ``study.stop()`` once the grid is done.

    ``Study.stop`` works only inside ``study.optimize``; this loop is
    ask-and-tell (``search.execution.runner``), where it raises from ``tell``.
    The run's budget, never above the grid's size, ends the loop instead.
    """

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        return None
