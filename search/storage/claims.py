"""Which of several running trials trains an architecture that they all sampled.

Deduplication against finished trials is not enough with workers: two may
sample the same architecture while neither has finished. Each trial writes
``architecture_key`` (with its claim ``pending``) before it looks at the
others, so of any two trials with the same key at least one sees the other.
Then it decides, and writes the decision as ``architecture_claim``:

- it sees a lower-numbered running trial with its key: it ``wait``s for it;
- else it waits until every higher one it sees has decided, and ``wait``s for
  one that decided to ``train``; a higher one that decided without seeing it
  did so because it saw no lower trial, so exactly one of them trains;
- else it ``train``s.

Decisions only ever wait on higher-numbered trials, so there is no deadlock;
a trial whose worker died is failed by the lease, and the waiters decide again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["CLAIM_ATTR", "claim_architecture", "wait_until_finished"]

CLAIM_ATTR = "architecture_claim"
PENDING, TRAIN, WAIT = "pending", "train", "wait"


def claim_architecture(
    trial: optuna.Trial, key: str, *, poll_seconds: float, while_waiting: Callable[[], None]
) -> int | None:
    """Record that ``trial`` samples ``key``; the number of the running trial to wait for, or None to train."""
    trial.set_user_attr(CLAIM_ATTR, PENDING)
    trial.set_user_attr("architecture_key", key)
    while True:
        others = _running_with_key(trial, key)
        lower = [t for t in others if t.number < trial.number]
        if lower:
            return _decide(trial, WAIT, min(t.number for t in lower))
        if any(t.user_attrs.get(CLAIM_ATTR, PENDING) == PENDING for t in others):
            while_waiting()
            time.sleep(poll_seconds)
            continue
        trainers = [t.number for t in others if t.user_attrs.get(CLAIM_ATTR) == TRAIN]
        return _decide(trial, WAIT, trainers[0]) if trainers else _decide(trial, TRAIN, None)


def wait_until_finished(
    study: optuna.Study, number: int, *, poll_seconds: float, while_waiting: Callable[[], None]
) -> None:
    """Block while trial ``number`` runs (``while_waiting`` fails it if its worker died)."""
    while any(t.number == number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))):
        while_waiting()
        time.sleep(poll_seconds)


def _running_with_key(trial: optuna.Trial, key: str) -> list[FrozenTrial]:
    return [
        t
        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.number != trial.number and t.user_attrs.get("architecture_key") == key
    ]


def _decide(trial: optuna.Trial, claim: str, wait_for: int | None) -> int | None:
    trial.set_user_attr(CLAIM_ATTR, claim)
    return wait_for
