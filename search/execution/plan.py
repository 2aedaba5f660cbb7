"""What a run asks for, as small validated objects, and the plan every worker executes.

A caller of ``search.run_search`` (the command line, a benchmark, a notebook)
says what it wants with a few frozen objects, each checked when made, so a
mistake is refused before anything is created: ``Budget`` (trials, timeout,
epochs, training fraction), ``StudySpec`` (which study, where it is stored,
what it evaluates first), ``DataSpec``, ``Workers`` (how many processes, on
which device); with ``search.samplers.SamplerSpec``, ``search.pruners.Pruning``,
``search.storage.leases.LeasePolicy`` and ``search.execution.screening.Screening``.

``run_search`` resolves them once into a ``SearchPlan``: the study's name and
storage URL, the space as the data set shapes it, the training of every trial,
and the rest. The same plan drives every worker, the one in this process or
each of N processes (it is pickled to them), through one function,
``search.execution.workers.run_worker``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna

from evaluation import Architecture, TrainConfig
from evaluation.data import DataSplits
from search.errors import UsageError
from search.execution.run_data import VALIDATION_SIZE, DataSpec, load_run_data
from search.execution.screening import Screening
from search.pruners import Pruning
from search.samplers import SamplerContext, SamplerSpec
from search.storage.leases import LeasePolicy
from search.storage.studies import make_storage
from spaces import Space

__all__ = [
    "DEFAULT_TRIALS",
    "VALIDATION_SIZE",
    "Budget",
    "DataSpec",
    "SearchPlan",
    "StudySpec",
    "Workers",
    "load_run_data",
]

DEFAULT_TRIALS = 12


@dataclass(frozen=True)
class Budget:
    """How much a run does: distinct architectures to evaluate in all, a time limit, and each trial's training.

    ``trials`` counts earlier runs of the same study and every worker (also
    those of other commands on the same storage): resuming with a larger
    number adds the difference. A trial that proposed an architecture the
    study already holds takes its recorded values and counts nothing; one
    refused before training counts; trials handed over by a warm start count
    toward no budget (``search.execution.distinct``). ``timeout``: seconds after which no new trial
    starts; None for no limit. ``epochs`` and ``train_fraction``: each
    trial's training; None takes the space's budget (more on a GPU).
    """

    trials: int = DEFAULT_TRIALS
    timeout: float | None = None
    epochs: int | None = None
    train_fraction: float | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.trials) or self.trials < 1:
            raise UsageError(f"trials must be >= 1, got {self.trials!r}")
        if self.timeout is not None and not (
            isinstance(self.timeout, int | float) and math.isfinite(self.timeout) and self.timeout > 0
        ):
            raise UsageError(f"timeout must be a number of seconds > 0, got {self.timeout!r}")
        if self.epochs is not None and (not _is_int(self.epochs) or self.epochs < 1):
            raise UsageError(f"epochs must be >= 1, got {self.epochs!r}")
        if self.train_fraction is not None and not 0 < self.train_fraction <= 1:
            raise UsageError(f"train_fraction must be in (0, 1], got {self.train_fraction!r}")


@dataclass(frozen=True)
class StudySpec:
    """The study a run works on, and what it writes beside it.

    ``name``: the study's name and folder under ``studies/``
    (``$SEARCH_STUDIES_DIR``); None takes the space's name. ``storage``: any
    Optuna storage URL, or ``journal:PATH``; None keeps the study in its folder,
    ``study.db`` (SQLite) for one worker, ``journal.log`` for several (or
    whichever of the two the folder already holds). ``enqueue``: known
    architectures to evaluate first, each an Architecture or the name of a
    baseline of the space or of a preset; one already in the study is not
    enqueued again. ``report``: write ``studies/<name>/report.html`` at the
    end, also after an interruption. ``command``: how the run was started,
    recorded in the study's settings; None records the library call.
    ``warm_start``: another study of the same space, ``NAME`` under
    ``studies/`` or ``NAME@URL`` in any storage, whose finished trials the
    study starts from (``search.storage.warm_start``): its sampler models
    them and their architectures are not trained again, but they count
    toward no budget.
    """

    name: str | None = None
    storage: str | None = None
    enqueue: tuple[str | Architecture, ...] = ()
    report: bool = True
    command: str | None = None
    warm_start: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "enqueue", tuple(self.enqueue))


@dataclass(frozen=True)
class Workers:
    """Processes on this machine running trials of the study, and where they train.

    ``count`` > 1 runs that many processes, each with ``cores // count`` CPU
    threads, or its own GPU when there are several; it needs a storage for
    concurrent writers (the default becomes the journal file, SQLite is
    refused). ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or
    ``cuda:N``. ``memory_limit``: bytes a trial's model may be estimated to
    need in training (``evaluation.memory``); None takes the machine's memory.
    """

    count: int = 1
    device: str = "auto"
    memory_limit: float | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.count) or self.count < 1:
            raise UsageError(f"workers must be >= 1, got {self.count!r}")


@dataclass(frozen=True)
class SearchPlan:
    """Everything a worker needs to run trials of the study, resolved once by ``run_search``.

    Picklable: worker processes receive it whole and rebuild nothing else
    from loose values, so every worker trains, samples, prunes and screens
    exactly as the others do.
    """

    study_name: str
    storage_url: str
    space: Space  # shaped by the data set (its input size and class count)
    data: DataSpec  # the data set resolved (never None), its options and fingerprint (search.execution.run_data)
    seed: int
    config: TrainConfig  # every trial's training (its seed is the run's; trial n trains with seed + n)
    budget: Budget
    sampler: SamplerSpec
    pruning: Pruning
    leases: LeasePolicy
    screening: Screening
    devices: tuple[str, ...]  # per worker: "cpu", "cuda" or "cuda:i"
    threads: int | None  # torch threads per worker process; None keeps torch's default
    memory_limit: float | None
    existing_trials: int  # trials the study held when this start began: part of each worker's sampler seed

    @property
    def workers(self) -> int:
        return len(self.devices)

    def load_data(self) -> DataSplits:
        return load_run_data(self.data, seed=self.seed)

    def load_study(self) -> optuna.Study:
        """The study, opened afresh from its storage (in a worker process)."""
        storage = make_storage(
            self.storage_url,
            heartbeat_interval=self.leases.heartbeat_interval,
            grace_period=self.leases.grace_period,
            retry_failed=self.leases.retry_failed,
        )
        return optuna.load_study(study_name=self.study_name, storage=storage)

    def sampler_context(self, worker: int) -> SamplerContext:
        return SamplerContext(
            space=self.space,
            seed=self.seed,
            trials=self.budget.trials,
            worker=worker,
            existing_trials=self.existing_trials,
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
