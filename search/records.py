"""What each trial records in the study, under which user-attribute keys.

Everything a trial knows goes into the study (not into side files), so any
Optuna tool, the report and the dashboard see the same facts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from optuna.trial import FrozenTrial

from evaluation import Architecture

__all__ = ["TrialRecord", "architecture_key", "describe_architecture"]


def architecture_key(architecture: dict[str, Any]) -> str:
    """A stable hash of an architecture's dict, for finding repeats."""
    canonical = json.dumps(architecture, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class TrialRecord:
    """The facts of one trial; stored one user attribute per field.

    ``outcome``: trained (trained and evaluated), rejected (refused before
    training: cannot be built, or breaks a constraint), diverged (loss became
    NaN/inf), failed (raised), duplicate (an architecture already evaluated;
    values copied from that trial) or pruned (stopped early by the pruner).
    """

    outcome: str
    architecture: dict[str, Any] | None = None
    architecture_key: str | None = None
    params: int | None = None
    macs: int | None = None
    latency_ms: float | None = None
    val_accuracy_per_epoch: list[float] = field(default_factory=list)
    epochs_run: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    device: str | None = None
    reason: str | None = None
    duplicate_of: int | None = None

    def save(self, trial: Any) -> None:
        """Set every field as a user attribute of ``trial`` (None fields are skipped)."""
        for key, value in asdict(self).items():
            if value is not None:
                trial.set_user_attr(key, value)

    @classmethod
    def load(cls, trial: FrozenTrial) -> TrialRecord:
        known = cls.__dataclass_fields__
        attrs = {k: v for k, v in trial.user_attrs.items() if k in known}
        attrs.setdefault("outcome", "failed" if trial.state.name == "FAIL" else "unknown")
        return cls(**attrs)


def describe_architecture(architecture: dict[str, Any]) -> str:
    """The recorded architecture in words (``Architecture.describe``), for hovers and tables."""
    return Architecture.from_dict(architecture).describe()
