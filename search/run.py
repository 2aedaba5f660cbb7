"""The search as a library: ``run_search`` runs or resumes a study over a space.

``python -m search run`` is a thin layer over it: it parses flags, calls
``run_search`` and prints. The run's policy lives here: the validation split,
the training budget taken from the space (larger on a GPU), the settings
stored with the study, the known architectures evaluated first, how many
trials are left, the worker processes, and the report written at the end.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial

from evaluation import Architecture, TrainConfig, planned_images, preset, resolve_device
from evaluation.data import DataSplits, load_dataset
from evaluation.presets import PRESETS
from search.errors import SearchInterrupted, UsageError
from search.execution.objective import TrialObjective
from search.execution.runner import run_trials
from search.execution.screening import VOTE, check_screening
from search.execution.workers import WorkerJob, run_workers, use_device, worker_devices
from search.pruners import Pruning
from search.report import write_report
from search.samplers import make_sampler, worker_seed
from search.storage.leases import LeasePolicy, fail_stale
from search.storage.studies import (
    create_or_resume,
    finished_trials,
    make_storage,
    storage_url,
    study_dir,
)
from spaces import Space, enqueue_architecture, load_space

__all__ = ["DEFAULT_PRUNER", "DEFAULT_TRIALS", "GPU_EPOCH_FACTOR", "RunPlan", "run_search"]

DEFAULT_TRIALS = 12
# Measured (benchmarks/rung_schedules.py, README "Stopping trials early"): on the
# default CPU budget the first rung (1/9, about 10 SGD steps) is at or near chance
# for every network, so ASHA there would rank by cost alone: it must be asked for.
DEFAULT_PRUNER = "none"
# On a GPU the same call trains on the whole training set for more epochs.
GPU_EPOCH_FACTOR = 3
# A tenth of the training set validates every trial; the test set is never touched.
VALIDATION_SIZE = 0.1


@dataclass(frozen=True)
class RunPlan:
    """What a run is about to do, given to ``on_start`` once the study is open."""

    study: optuna.Study
    finished: int  # trials finished by earlier runs (complete or pruned)
    to_run: int  # trials this run starts at most
    device: str  # where trials train: "cpu" or "cuda"
    report: Path | None  # where the report is written at the end; None without one
    workers: int = 1  # processes running trials
    settings_changed: str | None = None  # what differs from the settings the study was created with
    pruner: str = ""  # the pruner in use, in words (Pruning.describe)


def run_search(
    *,
    space: Space | str | Path,
    storage: str | None = None,
    study_name: str | None = None,
    trials: int = DEFAULT_TRIALS,
    timeout: float | None = None,
    epochs: int | None = None,
    train_fraction: float | None = None,
    sampler: str = "tpe",
    pruner: str = DEFAULT_PRUNER,
    min_rung: float | Fraction = Fraction(1, 9),
    eta: int = 3,
    seed: int = 0,
    device: str = "auto",
    workers: int = 1,
    heartbeat_interval: int = LeasePolicy.heartbeat_interval,
    grace_period: int = LeasePolicy.grace_period,
    retry_failed: int = 0,
    dataset: str | None = None,
    data_root: str | Path | None = None,
    enqueue: Sequence[str | Architecture] = (),
    report: bool = True,
    memory_limit: float | None = None,
    screen: int = 1,
    screen_by: str = VOTE,
    command: str | None = None,
    on_start: Callable[[RunPlan], None] | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> optuna.Study:
    """Run, or resume, a multi-objective study over ``space`` and return it.

    Each trial samples an architecture, refuses it before training when it
    cannot be built or breaks a constraint of the space, profiles it, trains it
    briefly and records validation accuracy per epoch (see
    ``search.execution.objective``). Nothing is printed; ``on_start`` and ``on_trial``
    are where a caller shows progress.

    Args:
        space: A ``spaces.Space``, or a built-in space name or YAML file path.
        storage: Any Optuna storage URL, or ``journal:PATH`` for a journal
            file; None keeps the study in ``studies/<study_name>/``:
            ``study.db`` (SQLite) for one worker, ``journal.log`` for several
            (or whichever of the two the folder already holds).
        study_name: The study's name and folder under ``studies/``
            (``$SEARCH_STUDIES_DIR``); None takes the space's name.
        trials: Finished trials wanted in all, counting earlier runs of the
            same study and every worker (also those of other commands on the
            same storage): resuming with a larger number adds the difference.
        timeout: Seconds after which no new trial starts; None for no limit.
        epochs: Training epochs per trial; None takes the space's budget
            (times ``GPU_EPOCH_FACTOR`` on a GPU).
        train_fraction: Fraction of the training split per trial, in (0, 1];
            None takes the space's budget (the whole split on a GPU).
        sampler: ``tpe`` (multivariate, constant liar), ``nsga2``, ``random``
            or ``gp`` (Gaussian-process Bayesian optimisation).
        pruner: How trials are stopped early (``search.pruners``): ``asha``
            (multi-objective asynchronous successive halving, any space),
            ``median`` or ``hyperband`` (Optuna's, single-objective spaces
            only) or ``none``. With rungs, a space's one-cycle schedule is
            replaced by cosine (one-cycle's rungs measure at chance).
        min_rung: The first rung, as a fraction of a trial's training budget.
        eta: Each rung is ``eta`` times the last; 1/eta of the trials at a
            rung continue.
        seed: Seed of the sampler, of the validation split and of each trial's
            weights and training (trial ``n`` uses ``seed + n``). Each worker
            and each resumed start seeds its sampler from it, its index and
            the trials already in the study (``search.samplers.worker_seed``).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        workers: Processes on this machine running trials of the study, each
            with ``cores // workers`` CPU threads, or its own GPU when there
            are several. More than one needs a storage for concurrent writers:
            the default becomes the journal file, SQLite is refused.
        heartbeat_interval: Seconds between the heartbeats of a running trial.
        grace_period: Seconds without a heartbeat after which a running trial
            is failed as stale (its worker died), by any worker of the study.
        retry_failed: Times a stale trial's parameters are queued again.
        dataset: A data set instead of the space's; the space's input size and
            class count follow it.
        data_root: A folder holding the data set files, searched first.
        enqueue: Known architectures to evaluate first, each an Architecture or
            the name of a baseline of the space or of a preset; one already in
            the study is not enqueued again.
        report: Write ``studies/<study_name>/report.html`` at the end, also
            after an interruption.
        memory_limit: Bytes a trial's model may be estimated to need in
            training (``evaluation.memory``); None takes the machine's memory.
        screen: Candidate architectures per trial, scored at initialisation by
            the zero-cost proxies; the best by ``screen_by`` is trained and all
            are recorded on the trial (``search.execution.screening``). 1 (the default)
            trains the sampler's proposal as it comes. One worker only.
        screen_by: The proxy that picks among the candidates (a name in
            ``evaluation.proxies.PROXIES``), or ``vote``: the lowest mean rank
            across proxies.
        command: How the run was started, recorded in the study's settings (the
            command line passes its own); None records this call.
        on_start: Called once with a ``RunPlan`` before the first trial.
        on_trial: Called with the study and each trial this run finished.

    Returns:
        The study, every trial of this run finished (COMPLETE, PRUNED or FAIL).

    Raises:
        SearchInterrupted: Ctrl-C stopped the run. It is raised after the loop
            stopped cleanly (no trial left RUNNING) and the report was written;
            ``error.study`` holds the study, which resumes on the next call.
        ToolkitError: A mistake in what was asked for (space, data set, budget,
            sampler, device, workers, storage, known architecture), before any
            trial runs.
    """
    space = space if isinstance(space, Space) else load_space(space)
    _check_budget(trials=trials, epochs=epochs, train_fraction=train_fraction, workers=workers)
    pruning = Pruning(kind=pruner, min_fraction=min_rung, eta=eta)
    pruning.check(space.objectives)
    _check_screening(screen, screen_by, workers=workers)
    lease = _lease_policy(heartbeat_interval=heartbeat_interval, grace_period=grace_period, retry_failed=retry_failed)
    devices = worker_devices(device, workers)
    name = space.name if study_name is None else study_name  # an empty name is refused, not replaced
    url = storage_url(name, storage, workers=workers)
    data = load_dataset(dataset or space.dataset, root=data_root, validation_size=VALIDATION_SIZE, seed=seed)
    if dataset:
        space = space.with_input(dataset=dataset, input_size=data.input_size, num_classes=data.num_classes)
    config = _train_config(
        space, data, epochs=epochs, train_fraction=train_fraction, device=device, seed=seed, pruning=pruning
    )
    first = [known if isinstance(known, Architecture) else _known_architecture(space, known) for known in enqueue]
    settings = _settings(
        space,
        config,
        pruning=pruning,
        sampler=sampler,
        trials=trials,
        timeout=timeout,
        command=command or f"search.run_search(space={space.name!r}, study_name={name!r}, trials={trials})",
    )
    study, changed = create_or_resume(
        name=name,
        storage=make_storage(
            url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, retry_failed=retry_failed
        ),
        directions=[o.direction for o in space.objectives],
        metric_names=[o.metric for o in space.objectives],
        sampler=optuna.samplers.RandomSampler(),  # replaced below: the seed depends on what the study holds
        settings=settings,
        pruner=pruning.optuna_pruner(planned_images(data, config)),
    )
    pruning.store_in(study)  # what every worker of the study prunes with
    study.sampler = make_sampler(
        sampler, seed=worker_seed(seed, worker=0, existing_trials=len(study.trials)), trials=trials
    )
    for arch in first:
        study.enqueue_trial(enqueue_architecture(space, arch), skip_if_exists=True)
    done = finished_trials(study)
    plan = RunPlan(
        study=study,
        finished=done,
        to_run=max(trials - done, 0),
        device=config.device,
        report=study_dir(name) / "report.html" if report else None,
        workers=workers,
        settings_changed=changed,
        pruner=pruning.describe()
        + (
            f", schedule {config.schedule} instead of {space.training.schedule}"
            if config.schedule != space.training.schedule
            else ""
        ),
    )
    if on_start is not None:
        on_start(plan)
    if workers == 1:
        use_device(devices[0])
        objective = TrialObjective(
            space=space,
            data=data,
            config=config,
            memory_limit=memory_limit,
            while_waiting=lambda study: fail_stale(study, lease),
            pruning=pruning,
            screen=screen,
            screen_by=screen_by,
        )
        interrupted = run_trials(study, objective, trials=trials, timeout=timeout, on_trial=on_trial, lease=lease)
    else:
        job = WorkerJob(
            study_name=name,
            storage_url=url,
            space=space,
            dataset=dataset or space.dataset,
            data_root=data_root,
            validation_size=VALIDATION_SIZE,
            config=config,
            sampler=sampler,
            seed=seed,
            trials=trials,
            timeout=timeout,
            lease=lease,
            devices=devices,
            threads=max(1, (os.cpu_count() or 1) // workers),
            memory_limit=memory_limit,
        )
        interrupted = run_workers(job, study=study, on_trial=on_trial)
    if plan.report is not None:
        write_report(study, plan.report)
    if interrupted:
        raise SearchInterrupted(study)
    return study


def _train_config(
    space: Space,
    data: DataSplits,
    *,
    epochs: int | None,
    train_fraction: float | None,
    device: str,
    seed: int,
    pruning: Pruning,
) -> TrainConfig:
    """The training of every trial: the space's budget, scaled up on a GPU, unless overridden.

    A pruner judges trials mid-schedule. One-cycle's rate is still rising at a
    ninth of the budget and peaks at 30%: on densenet_hybrid's budget every
    network measured sat at chance at the first rung, and the rungs ranked them
    against their final order; cosine (5% warm-up) ranked them with it and
    ended as accurate (benchmarks/results/rung_schedules.json). So with rungs,
    one-cycle becomes cosine.
    """
    budget = space.training
    on_gpu = resolve_device(device).type == "cuda"
    schedule = "cosine" if pruning.fractions() and budget.schedule == "onecycle" else budget.schedule
    return TrainConfig(
        epochs=epochs if epochs is not None else budget.epochs * (GPU_EPOCH_FACTOR if on_gpu else 1),
        train_fraction=train_fraction if train_fraction is not None else (1.0 if on_gpu else budget.train_fraction),
        batch_size=budget.batch_size,
        lr=budget.lr,
        schedule=schedule,
        device="cuda" if on_gpu else "cpu",
        seed=seed,
        # The space may ask for another resolution than the data set's own.
        resize=None if space.input_size[1:] == data.input_size[1:] else space.input_size[1],
    )


def _check_budget(*, trials: int, epochs: int | None, train_fraction: float | None, workers: int) -> None:
    """Refuse an impossible budget before the data set is loaded."""
    if trials < 1:
        raise UsageError(f"trials must be >= 1, got {trials}")
    if workers < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    if epochs is not None and epochs < 1:
        raise UsageError(f"epochs must be >= 1, got {epochs}")
    if train_fraction is not None and not 0 < train_fraction <= 1:
        raise UsageError(f"train_fraction must be in (0, 1], got {train_fraction}")


def _check_screening(screen: int, screen_by: str, *, workers: int) -> None:
    check_screening(screen, screen_by)
    if screen > 1 and workers > 1:
        # The worker processes build their own objective (search.execution.workers), without screening.
        raise UsageError(f"screen {screen} needs one worker, got workers {workers}")


def _lease_policy(*, heartbeat_interval: int, grace_period: int, retry_failed: int) -> LeasePolicy:
    try:
        return LeasePolicy(heartbeat_interval=heartbeat_interval, grace_period=grace_period, retry_failed=retry_failed)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _known_architecture(space: Space, name: str) -> Architecture:
    """A baseline named in the space file, else a preset."""
    if name in space.baselines:
        return space.baseline(name)
    if name in PRESETS:
        return preset(name)
    raise UsageError(
        f"enqueue {name!r}: not a baseline of space {space.name} "
        f"({', '.join(sorted(space.baselines)) or 'none'}) nor a preset ({', '.join(sorted(PRESETS))})"
    )


def _settings(
    space: Space,
    config: TrainConfig,
    *,
    pruning: Pruning,
    sampler: str,
    trials: int,
    timeout: float | None,
    command: str,
) -> dict[str, Any]:
    """Everything needed to understand and repeat the run, stored with the study."""
    return {
        "space": space.name,
        "space_file": str(space.path),
        "space_yaml": space.path.read_text(),
        "dataset": space.dataset,
        "input_size": list(space.input_size),
        "num_classes": space.num_classes,
        "objectives": [f"{o.metric} ({o.direction})" for o in space.objectives],
        "training": dataclasses.asdict(config),
        "sampler": sampler,
        "pruner": pruning.settings(),
        "seed": config.seed,
        "trials": trials,
        "timeout": timeout,
        "device": config.device,
        "command": command,
        "versions": {
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "optuna": optuna.__version__,
        },
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
