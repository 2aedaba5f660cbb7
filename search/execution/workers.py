"""The one worker function, run in this process for one worker and in N processes for N.

``run_worker`` takes the run's ``SearchPlan`` and a worker index, gives the
study that worker's sampler (``search.samplers``, seeded per worker) and the
run's pruner, builds the trial objective (pruning and screening included) and
runs the ask-and-tell loop. ``run_search`` calls it directly for one worker;
for N it creates the study once (concurrent creation collides, optuna#1092)
and ``run_workers`` starts N processes that each call it with their index,
their share of the CPU threads, or their own GPU when there are several. The
parent only watches: it reports each trial the workers finish and forwards
Ctrl-C and SIGTERM. Workers run in their own process group, so a terminal's
Ctrl-C reaches them once, through the parent.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial

from evaluation.data import DataSplits
from evaluation.errors import ToolkitError
from evaluation.training import planned_images
from search.errors import UsageError, exit_code_of
from search.execution.distinct import Exploration
from search.execution.interrupts import STOP_SIGNALS, sigterm_as_interrupt
from search.execution.objective import TrialObjective
from search.execution.plan import SearchPlan
from search.execution.runner import is_given_back, run_trials
from search.pruners import Pruner
from search.storage.leases import fail_stale

__all__ = ["prepare_study", "run_worker", "run_workers", "use_device", "worker_devices"]

USER_ERROR_EXIT = 2  # a worker stopped by a ToolkitError, printed as one line


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


def prepare_study(plan: SearchPlan, study: optuna.Study, worker: int, data: DataSplits) -> Pruner:
    """Give ``study`` worker ``worker``'s sampler and the run's pruner; the pruner, for the objective.

    The objective's rules and the study hold one Optuna pruner, so what
    decides at the rungs is what the sampler sees (Hyperband samples within
    its brackets), in every worker alike.
    """
    pruner = Pruner(plan.pruning, plan.space.objectives, planned_images(data, plan.config))
    study.pruner = pruner.optuna
    study.sampler = plan.sampler.make(plan.sampler_context(worker))
    return pruner


def run_worker(
    plan: SearchPlan,
    worker: int,
    *,
    study: optuna.Study | None = None,
    data: DataSplits | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> signal.Signals | None:
    """Run trials of ``plan`` as worker ``worker`` until the budget is met; the signal that stopped it, if any.

    ``study`` and ``data``: the ones this process already opened and loaded
    (the run in one process); None opens and loads them from the plan.
    """
    use_device(plan.devices[worker])
    data = plan.load_data() if data is None else data
    study = plan.load_study() if study is None else study
    objective = TrialObjective(
        space=plan.space,
        data=data,
        config=plan.config,
        memory_limit=plan.memory_limit,
        while_waiting=lambda s: fail_stale(s, plan.leases),
        pruner=prepare_study(plan, study, worker, data),
        screening=plan.screening,
    )
    exploration = Exploration(
        space=plan.space, seed=plan.sampler_context(worker).worker_seed, fallback_after=plan.sampler.fallback_after
    )
    return run_trials(
        study,
        objective,
        trials=plan.budget.trials,
        timeout=plan.budget.timeout,
        on_trial=on_trial,
        lease=plan.leases,
        exploration=exploration,
    )


def run_workers(
    plan: SearchPlan,
    *,
    study: optuna.Study,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    poll_seconds: float = 1.0,
) -> signal.Signals | None:
    """Run ``plan.workers`` worker processes to the end; the signal that stopped them, if any.

    Raises:
        RuntimeError: Every worker exited abnormally and no signal stopped them.
    """
    context = multiprocessing.get_context("spawn")  # no fork: torch and storage connections are not fork-safe
    processes = [
        context.Process(target=_worker_process, args=(plan, i), name=f"search-worker-{i}") for i in range(plan.workers)
    ]
    reported = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    with _Forward(processes) as forward:
        for process in processes:
            process.start()
            forward.catch_up(process)
        while alive := [p for p in processes if p.is_alive()]:
            alive[0].join(poll_seconds)
            reported |= _report_new(study, reported, on_trial)
    _report_new(study, reported, on_trial)
    codes = [p.exitcode for p in processes]
    stopped = forward.signum or _stopped_by(codes)
    if stopped is None and codes and all(code == USER_ERROR_EXIT for code in codes):
        raise UsageError(f"every worker of study {study.study_name!r} stopped on the error it printed above")
    if stopped is None and all(code != 0 for code in codes):
        raise RuntimeError(f"every worker of study {study.study_name!r} exited abnormally, exit codes {codes}")
    return None if stopped is None else signal.Signals(stopped)


def _worker_process(plan: SearchPlan, worker: int) -> None:
    """A worker process: its threads, then ``run_worker``; exits 130 or 143 when a signal stopped it."""
    os.setpgrp()  # Ctrl-C comes through the parent, once
    with sigterm_as_interrupt():  # SIGTERM while it sets up stops it as Ctrl-C would; the loop then takes both
        try:
            if plan.threads is not None:
                torch.set_num_threads(plan.threads)
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            stopped = run_worker(plan, worker)
        except KeyboardInterrupt as stop:
            sys.exit(exit_code_of(stop))
        except ToolkitError as error:  # a full disk, a broken storage: one line, as the CLI prints it
            print(f"error: {error}", file=sys.stderr)
            sys.exit(USER_ERROR_EXIT)
    sys.exit(0 if stopped is None else 128 + stopped)


def _stopped_by(codes: list[int | None]) -> int | None:
    """The signal a worker's exit code says stopped it (SIGTERM first), if any."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        if 128 + signum in codes:
            return signum
    return None


class _Forward:
    """The parent's handler of SIGINT and SIGTERM: passes the signal on to every live worker."""

    def __init__(self, processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
        self.processes = processes
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signum != signal.SIGTERM:
            self.signum = signum
        for process in self.processes:
            self._send(process, signum)

    def catch_up(self, process: multiprocessing.process.BaseProcess) -> None:
        """Pass a signal that came while ``process`` was not started yet."""
        if self.signum is not None:
            self._send(process, self.signum)

    @staticmethod
    def _send(process: multiprocessing.process.BaseProcess, signum: int) -> None:
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signum)

    def __enter__(self) -> _Forward:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


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
