"""The samplers a search can use, by name, and the seed each worker's sampler gets."""

from __future__ import annotations

import numpy as np
import optuna

from search.errors import UsageError

__all__ = ["SAMPLERS", "make_sampler", "worker_seed"]

SAMPLERS = ("tpe", "nsga2", "random", "gp")


def worker_seed(seed: int, *, worker: int, existing_trials: int) -> int:
    """A sampler seed per worker and per start: the run's seed for worker 0 of a fresh
    study (so a one-process study repeats as before), else one drawn from all three,
    so workers and resumed runs do not propose the same architectures again."""
    if worker == 0 and existing_trials == 0:
        return seed
    return int(np.random.SeedSequence([seed, worker, existing_trials]).generate_state(1)[0])


def make_sampler(kind: str, *, seed: int | None, trials: int) -> optuna.samplers.BaseSampler:
    """The sampler for ``kind``; options that matter for parallel runs are explicit.

    TPE starts modelling after a third of the planned ``trials`` (at least 3,
    at most Optuna's default 10), so a short study still gets past random search.
    """
    if kind == "tpe":
        # multivariate: the space samples every knob in every trial, so joint
        # modelling stays on. constant_liar: workers sharing a storage avoid
        # proposing the same point while earlier trials still run.
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            constant_liar=True,
            n_startup_trials=min(10, max(3, trials // 3)),
        )
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "gp":
        # Gaussian-process BO (log EHVI for several objectives, with the trials'
        # constraints); it models the knobs every trial has and samples the
        # conditional ones (a third stage's) at random, without a warning per trial.
        # It learns from COMPLETE trials only (see search.pruners).
        return optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=min(10, max(3, trials // 3)), warn_independent_sampling=False
        )
    raise UsageError(f"unknown sampler {kind!r}; expected one of {', '.join(SAMPLERS)}")
