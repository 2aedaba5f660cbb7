"""Faults inside a trial: refused for memory, out of memory, model code or data raising.

Each ends only its own trial, with the reason recorded and the model freed,
and the study goes on to the next trial.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from evaluation import Architecture, DataError, Head, Stage, Stem, TrainConfig
from evaluation.blocks import DenseSpec
from evaluation.memory import estimate_memory
from search.execution import objective as objective_module
from search.execution.objective import VALID_CONSTRAINT, TrialObjective
from spaces import enqueue_architecture

optuna.logging.set_verbosity(optuna.logging.WARNING)
CPU_OOM = "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"


def arch(growth_rate: int, depth: int = 1) -> Architecture:
    return Architecture(
        stem=Stem(style="small", width=8),
        stages=(Stage(DenseSpec(growth_rate=growth_rate, bn_size=0), depth=depth),),
        head=Head(norm=True),
    )


def study_of(space, data, *archs: Architecture, **objective) -> tuple[optuna.Study, TrialObjective]:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    for a in archs:
        study.enqueue_trial(enqueue_architecture(space, a))
    config = TrainConfig(epochs=1, batch_size=64, lr=0.05, device="cpu", seed=0)
    return study, TrialObjective(space=space, data=data, config=config, latency_repeats=1, **objective)


def failing_once(monkeypatch: pytest.MonkeyPatch, make_error: Callable[[], BaseException]) -> list[weakref.ref]:
    """``train`` raises a fresh ``make_error()`` on its first call; returns weak references to its models.

    Fresh, as in real faults: an exception object kept alive would keep its traceback's frames, and the model.
    """
    real, models = objective_module.train, []

    def train(model, *args, **kwargs):
        models.append(weakref.ref(model))
        if len(models) == 1:
            raise make_error()
        return real(model, *args, **kwargs)

    monkeypatch.setattr(objective_module, "train", train)
    return models


def test_objective_rejects_a_model_over_the_memory_limit_and_goes_on(tiny_space, digits, monkeypatch) -> None:
    small, large = arch(4), arch(4, depth=2)
    sizes = [estimate_memory(a, tiny_space.input_size, 10, batch_size=64).total for a in (small, large)]
    built = []
    real = objective_module.build_model
    monkeypatch.setattr(objective_module, "build_model", lambda *a, **k: built.append(1) or real(*a, **k))
    study, objective = study_of(tiny_space, digits, large, small, memory_limit=sum(sizes) / 2)
    study.optimize(objective, n_trials=2)
    refused, trained = study.trials
    assert refused.state == TrialState.COMPLETE and refused.user_attrs["outcome"] == "rejected", refused.user_attrs
    assert "--memory-limit" in refused.user_attrs["reason"], refused.user_attrs["reason"]
    assert refused.constraints[VALID_CONSTRAINT] == 1.0, "a model that cannot fit is infeasible"
    assert trained.user_attrs["outcome"] == "trained" and built == [1], "only the second trial built a model"


@pytest.mark.parametrize(
    "make_error",
    [
        lambda: RuntimeError(CPU_OOM),
        lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        MemoryError,
    ],
    ids=["cpu-allocator", "cuda", "python"],
)
def test_objective_marks_out_of_memory_frees_the_model_and_goes_on(tiny_space, digits, monkeypatch, make_error) -> None:
    models = failing_once(monkeypatch, make_error)
    study, objective = study_of(tiny_space, digits, arch(4, depth=2), arch(4))
    study.optimize(objective, n_trials=2)
    oom, trained = study.trials
    assert oom.state == TrialState.COMPLETE, "an out-of-memory trial completes as infeasible, so it is not retried"
    assert oom.user_attrs["outcome"] == "failed" and oom.user_attrs["reason"].startswith("out of memory"), (
        oom.user_attrs
    )
    assert oom.constraints[VALID_CONSTRAINT] == 1.0, oom.constraints
    assert trained.user_attrs["outcome"] == "trained", "the next trial trains normally"
    gc.collect()
    assert models[0]() is None, "the failed trial's model must be freed"


@pytest.mark.parametrize(
    ("make_error", "reason"),
    [
        (lambda: RuntimeError("mat1 and mat2 shapes cannot be multiplied"), "RuntimeError: mat1 and mat2"),
        (lambda: DataError("fashion_mnist: labels out of range"), "DataError: fashion_mnist: labels out of range"),
    ],
    ids=["model-code", "data"],
)
def test_objective_fails_a_raising_trial_frees_the_model_and_goes_on(
    tiny_space, digits, monkeypatch, make_error, reason
) -> None:
    models = failing_once(monkeypatch, make_error)
    study, objective = study_of(tiny_space, digits, arch(4, depth=2), arch(4))
    study.optimize(objective, n_trials=2, catch=(Exception,))
    failed, trained = study.trials
    assert failed.state == TrialState.FAIL, f"an exception fails the trial: {failed.state}"
    assert failed.user_attrs["reason"].startswith(reason), failed.user_attrs
    assert trained.user_attrs["outcome"] == "trained", "the next trial trains normally"
    gc.collect()
    assert models[0]() is None, "the failed trial's model must be freed"


WIDE_STEM_SPACE = """\
description: digits, with a stem wide enough to exhaust a tight memory limit
dataset: digits
input: [1, 8, 8]
num_classes: 10
objectives: {accuracy: maximize, macs: minimize}
training: {epochs: 1, train_fraction: 1.0, batch_size: 64, lr: 0.05, schedule: onecycle}
stem: {style: small, width: {choice: [8, 6000]}}
stages:
  count: 1
  each: {block: dense, depth: 1, dense: {growth_rate: 4, bn_size: 0}}
"""


def test_a_real_cpu_allocation_failure_ends_only_its_trial(tmp_path: Path) -> None:
    """RLIMIT_AS 300 MB above the process: the estimate lets the 6000-channel stem through, the allocator does not."""
    space = tmp_path / "wide.yaml"
    space.write_text(WIDE_STEM_SPACE)
    script = Path(__file__).with_name("oom_study.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, str(script), str(space), "300"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (first, second) = json.loads(done.stdout.strip().splitlines()[-1])
    assert first[:2] == ["COMPLETE", "failed"] and "can't allocate memory" in first[2], first
    assert second[:2] == ["COMPLETE", "trained"], f"the study goes on after the out-of-memory trial: {second}"
