"""Plausible searched studies built through Optuna's API, without training.

Architectures are real (``Architecture.from_dict`` validates them, MACs and
params come from ``evaluation.count``); accuracies are a made-up function of
size plus noise. Outcomes cover every case the report draws: trained,
rejected (constraint broken), pruned (partial curve), failed, duplicate,
diverged. With ``proxies`` the trials that built a model record zero-cost
proxy scores with known rank correlations: NASWOT rises with the final
accuracy, grad_norm falls with it, synflow is the MACs, SNIP failed.
"""

from __future__ import annotations

import math
import random
import warnings
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from evaluation import Architecture, count
from search.storage.records import TrialRecord, architecture_key

PARAMS_LIMIT = 1_000_000
EPOCHS = 6
SETTINGS = {
    "space": "densenet_hybrid",
    "space_yaml": "stem:\n  width: [16, 24, 32]\nstages:\n  count: [2, 4]\n  each:\n    block: [dense, residual]\n",
    "dataset": "fashion_mnist",
    "input_size": [1, 28, 28],
    "epochs": EPOCHS,
    "sampler": "tpe",
    "seed": 0,
    "versions": {"torch": "2.14.1", "optuna": optuna.__version__},
    "device": "cpu",
}


def _sample(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any], Architecture]:
    """Knob values, their distributions, and the architecture they describe."""
    params: dict[str, Any] = {}
    dists: dict[str, Any] = {}

    def pick(name: str, dist: Any, value: Any) -> Any:
        params[name], dists[name] = value, dist
        return value

    n_stages = pick("n_stages", IntDistribution(2, 4), rng.randint(2, 4))
    width = pick("stem.width", CategoricalDistribution([16, 24, 32]), rng.choice([16, 24, 32]))
    pooling = pick("transition.pooling", CategoricalDistribution(["avg", "max"]), rng.choice(["avg", "max"]))
    compression = pick("transition.compression", FloatDistribution(0.5, 1.0), round(rng.uniform(0.5, 1.0), 3))
    stages = []
    for i in range(1, n_stages + 1):
        block = pick(
            f"stage{i}.block", CategoricalDistribution(["dense", "residual"]), rng.choice(["dense", "residual"])
        )
        depth = pick(f"stage{i}.depth", IntDistribution(1, 6), rng.randint(1, 6))
        if block == "dense":
            growth = pick(f"stage{i}.growth_rate", IntDistribution(8, 48, step=8), rng.choice(range(8, 49, 8)))
            stages.append({"block": "dense", "depth": depth, "growth_rate": growth, "bn_size": 4})
        else:
            unit_width = pick(f"stage{i}.width", CategoricalDistribution([16, 32, 64]), rng.choice([16, 32, 64]))
            stages.append({"block": "residual", "depth": depth, "unit": "basic", "width": unit_width})
    # Pooling halves 28 -> 14 -> 7 -> 3: at most three transitions fit.
    transitions = [{"compression": compression, "pooling": pooling}] * (n_stages - 1)
    architecture = Architecture.from_dict(
        {"stem": {"style": "small", "width": width}, "stages": stages, "transitions": transitions}
    )
    return params, dists, architecture


def make_study(
    n_trials: int, *, seed: int = 0, storage: str | None = None, name: str = "synthetic", proxies: bool = False
) -> optuna.Study:
    """A two-objective (accuracy up, MACs down) study of ``n_trials`` finished trials."""
    rng = random.Random(seed)
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "macs"])
    study.set_user_attr("settings", SETTINGS)
    seen: dict[str, int] = {}
    trials = []
    for number in range(n_trials):
        params, dists, architecture = _sample(rng)
        arch_dict = architecture.to_dict()
        counts = count(architecture, (1, 28, 28), 10)
        key = architecture_key(arch_dict)
        final = 0.78 + 0.045 * (math.log10(counts.macs) - 6.8) + rng.gauss(0, 0.008)
        rate, gap = rng.uniform(0.35, 0.75), rng.uniform(0.1, 0.3)
        curve = [round(final - gap * rate**epoch, 4) for epoch in range(EPOCHS)]
        record = TrialRecord(
            outcome="trained",
            architecture=arch_dict,
            architecture_key=key,
            params=counts.params,
            macs=counts.macs,
            latency_ms=round(counts.macs / 2e7, 3),
            val_accuracy_per_epoch=curve,
            epochs_run=EPOCHS,
            train_seconds=round(rng.uniform(20, 90), 1),
            eval_seconds=1.0,
            device="cpu",
        )
        state, values = TrialState.COMPLETE, [curve[-1], counts.macs]
        roll = rng.random()
        if counts.params > PARAMS_LIMIT:
            record.outcome, record.reason = "rejected", f"params {counts.params} > limit {PARAMS_LIMIT}"
            record.val_accuracy_per_epoch, record.epochs_run, record.train_seconds = [], 0, 0.0
            values = [0.0, counts.macs]
        elif key in seen:
            record.outcome, record.duplicate_of = "duplicate", seen[key]
        elif roll < 0.05:
            state, values = TrialState.FAIL, None
            record.outcome, record.reason = "failed", "RuntimeError: CUDA out of memory (synthetic)"
            record.val_accuracy_per_epoch, record.epochs_run = [], 0
        elif roll < 0.20:
            stop = rng.randint(1, EPOCHS - 2)
            state, values = TrialState.PRUNED, None
            record.outcome, record.reason = "pruned", f"pruned after epoch {stop}: below the median"
            record.val_accuracy_per_epoch, record.epochs_run = curve[:stop], stop
        elif roll < 0.22:
            record.outcome, record.reason = "diverged", "loss became nan at epoch 2"
            record.val_accuracy_per_epoch, record.epochs_run = [0.1, 0.1], 2
            values = [0.1, counts.macs]
        seen.setdefault(key, number)
        if proxies and record.outcome not in ("rejected", "failed"):
            last = record.val_accuracy_per_epoch[-1]
            record.proxies = {"synflow": float(counts.macs), "naswot": 500 + 400 * last, "grad_norm": 1 / last}
            record.proxies["snip"], record.proxy_failures = None, {"snip": "not finite (nan)"}
        user_attrs = {k: v for k, v in vars(record).items() if v is not None}
        trials.append(
            optuna.trial.create_trial(
                state=state,
                values=values,
                params=params,
                distributions=dists,
                user_attrs=user_attrs,
                intermediate_values=dict(enumerate(record.val_accuracy_per_epoch)),
                constraints={"params": float(counts.params - PARAMS_LIMIT)},
            )
        )
    study.add_trials(trials)
    return study
