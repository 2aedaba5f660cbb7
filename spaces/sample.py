"""From an Optuna trial to an Architecture, and the checks before any training.

``sample_architecture`` uses Optuna's define-by-run API only
(``suggest_categorical``, ``suggest_int``, ``suggest_float``), so any sampler
works; the result is a pure function of the trial's parameters.
"""

from __future__ import annotations

from typing import Any

from evaluation.architecture import Architecture, ArchitectureError
from evaluation.counts import count
from evaluation.metrics import METRICS
from spaces.knobs import Suggests
from spaces.space import Space

__all__ = ["enqueue_architecture", "precheck", "sample_architecture"]


def sample_architecture(space: Space, trial: Suggests) -> Architecture:
    """The Architecture ``trial`` picks from ``space``.

    Parameters are named by part (``num_stages``, ``stage2.block``,
    ``stage2.depth``, ``stage2.dense.growth_rate``, ``transition1.pooling``,
    ``stem.width``); a shared knob drops the number (``transition.pooling``).
    """
    return space.architecture(lambda knob: knob.suggest(trial))


def enqueue_architecture(space: Space, arch: Architecture) -> dict[str, Any]:
    """Parameters for ``study.enqueue_trial`` that make the trial sample ``arch``.

    Raises ``SpaceError`` naming the first knob ``arch`` does not fit.
    """
    return space.params_for(arch)


def precheck(space: Space, arch: Architecture) -> str | None:
    """Why ``arch`` must not be trained in ``space``, or None if it may be.

    Uses the closed-form counts, so nothing is built: the architecture must
    fit ``space.input_size`` and meet the params and MACs constraints. The
    latency constraint needs a measurement and is left to the trial.
    """
    input_size, num_classes = space.model_shape()
    try:
        counts = count(arch, input_size, num_classes)
    except ArchitectureError as error:
        return str(error)
    # The metrics known before training, from the closed form.
    for metric, value in (("params", counts.params), ("macs", counts.macs)):
        limit = space.constraints.limit(metric)
        if limit is not None and value > limit:
            return f"{metric} {value:,} > {METRICS[metric].constraint} {limit:,}"
    return None
