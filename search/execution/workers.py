"""Worker processes on one machine, all on one study.

``run_search(workers=N)`` creates the study once (concurrent creation collides,
optuna#1092), then starts N processes that load it and run the ask-and-tell
loop, each with its share of the CPU threads, or its own GPU when there are
several, and its own sampler seed. The parent only watches: it reports each
trial the workers finish and forwards Ctrl-C. Workers run in their own process
group, so a terminal's Ctrl-C reaches them once, through the parent.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import optuna
import torch
from optuna.trial import FrozenTrial

from evaluation import TrainConfig
from evaluation.data import load_dataset
from search.errors import UsageError
from search.execution.objective import TrialObjective
from search.execution.runner import is_given_back, run_trials
from search.samplers import make_sampler, worker_seed
from search.storage.leases import LeasePolicy, fail_stale
from search.storage.studies import make_storage
from spaces import Space

__all__ = ["WorkerJob", "run_workers", "worker_devices"]

INTERRUPTED_EXIT = 130


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker process needs to rebuild the run (it is pickled to the process)."""

    study_name: str
    storage_url: str
    space: Space
    dataset: str
    data_root: str | Path | None
    validation_size: float
    config: TrainConfig
    sampler: str
    seed: int
    trials: int
    timeout: float | None
    lease: LeasePolicy
    devices: tuple[str, ...]  # per worker: "cpu", "cuda" or "cuda:i"
    threads: int | None  # torch threads per worker; None keeps torch's default
    memory_limit: float | None = None  # bytes a trial's model may be estimated to need; None: the machine's


def worker_devices(device: str, workers: int) -> tuple[str, ...]:
    """The device of each worker: ``cuda:N`` as asked, one GPU each when CUDA has several."""
    count = torch.cuda.device_count()
    if device.startswith("cuda:"):
        index = device.removeprefix("cuda:")
        if not index.isdigit() or int(index) >= count:
            known = f"cuda:0 to cuda:{count - 1}" if count else "none"
            raise UsageError(f"device {device}: torch finds {count} CUDA devices ({known})")
        return (device,) * workers
    if device in ("auto", "cuda") and workers > 1 and count > 1:
        return tuple(f"cuda:{i % count}" for i in range(workers))
    return (device,) * workers


def use_device(device: str) -> None:
    """Make ``cuda:i`` the current device, so the trainer's plain "cuda" means it."""
    if device.startswith("cuda:"):
        torch.cuda.set_device(int(device.removeprefix("cuda:")))


def run_workers(
    job: WorkerJob,
    *,
    study: optuna.Study,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    poll_seconds: float = 1.0,
) -> bool:
    """Run ``len(job.devices)`` worker processes to the end; True when Ctrl-C stopped them.

    Raises:
        RuntimeError: Every worker exited abnormally and the budget is not met.
    """
    context = multiprocessing.get_context("spawn")  # no fork: torch and storage connections are not fork-safe
    processes = [
        context.Process(target=work, args=(job, i), name=f"search-worker-{i}") for i in range(len(job.devices))
    ]
    reported = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    forward = _Forward(processes)
    previous = signal.signal(signal.SIGINT, forward)
    try:
        for process in processes:
            process.start()
        while alive := [p for p in processes if p.is_alive()]:
            alive[0].join(poll_seconds)
            reported |= _report_new(study, reported, on_trial)
    finally:
        signal.signal(signal.SIGINT, previous)
    _report_new(study, reported, on_trial)
    codes = [p.exitcode for p in processes]
    interrupted = forward.requested or INTERRUPTED_EXIT in codes
    if not interrupted and all(code != 0 for code in codes):
        raise RuntimeError(f"every worker of study {study.study_name!r} exited abnormally, exit codes {codes}")
    return interrupted


def work(job: WorkerJob, index: int) -> None:
    """One worker process: load the study, seed its own sampler, run the loop."""
    os.setpgrp()  # Ctrl-C comes through the parent, once
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    use_device(job.devices[index])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset(job.dataset, root=job.data_root, validation_size=job.validation_size, seed=job.seed)
    storage = make_storage(
        job.storage_url,
        heartbeat_interval=job.lease.heartbeat_interval,
        grace_period=job.lease.grace_period,
        retry_failed=job.lease.retry_failed,
    )
    # The objective runs the pruner the study stores; the study object itself prunes nothing.
    study = optuna.load_study(study_name=job.study_name, storage=storage, pruner=optuna.pruners.NopPruner())
    study.sampler = make_sampler(
        job.sampler, seed=worker_seed(job.seed, worker=index, existing_trials=len(study.trials)), trials=job.trials
    )
    objective = TrialObjective(
        space=job.space,
        data=data,
        config=job.config,
        memory_limit=job.memory_limit,
        while_waiting=lambda s: fail_stale(s, job.lease),
    )
    interrupted = run_trials(study, objective, trials=job.trials, timeout=job.timeout, lease=job.lease)
    sys.exit(INTERRUPTED_EXIT if interrupted else 0)


class _Forward:
    """SIGINT handler of the parent: passes Ctrl-C on to every live worker, once."""

    def __init__(self, processes: list[multiprocessing.process.BaseProcess]) -> None:
        self.processes = processes
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        for process in self.processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGINT)


def _report_new(
    study: optuna.Study, reported: set[int], on_trial: Callable[[optuna.Study, FrozenTrial], None] | None
) -> set[int]:
    """Call ``on_trial`` for each trial finished since the last look; the numbers now reported."""
    new = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.number not in reported]
    if on_trial is not None:
        for trial in sorted(new, key=lambda t: t.number):
            if not is_given_back(trial):
                on_trial(study, trial)
    return {t.number for t in new}
