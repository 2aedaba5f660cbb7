"""What each trial records in the study, under which user-attribute keys.

Everything a trial knows goes into the study (not into side files), so any
Optuna tool, the report and the dashboard see the same facts.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from optuna.trial import FrozenTrial

from evaluation import Architecture
from evaluation.metrics import METRICS, Metric
from search.errors import UsageError

__all__ = ["TrialOutcome", "TrialRecord", "architecture_key", "describe_architecture"]


class TrialOutcome(enum.StrEnum):
    """How a trial ended. A ``str`` enum: stored as its plain value, so any study loads.

    trained: trained and evaluated. rejected: refused before training (cannot
    be built, or breaks a constraint). diverged: the loss became NaN/inf.
    failed: raised. duplicate: an architecture already evaluated, values copied
    from that trial. pruned: stopped early by the pruner. unknown: no record
    yet (the trial is still running).
    """

    TRAINED = "trained"
    REJECTED = "rejected"
    DIVERGED = "diverged"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    PRUNED = "pruned"
    UNKNOWN = "unknown"


def architecture_key(architecture: dict[str, Any]) -> str:
    """A stable hash of an architecture's dict, for finding repeats."""
    canonical = json.dumps(architecture, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class TrialRecord:
    """The facts of one trial; stored one user attribute per field.

    The only writer of a trial's ``outcome`` (a ``TrialOutcome``): ``save``
    for a whole record, ``save_outcome`` for a trial cut short.
    """

    outcome: TrialOutcome
    architecture: dict[str, Any] | None = None
    architecture_key: str | None = None
    params: int | None = None
    macs: int | None = None
    latency_ms: float | None = None
    # The exported model's latency in onnxruntime (evaluation.onnx_latency), measured only
    # when the space names onnx_latency_ms; and how steady latency_ms was (evaluation.profile).
    onnx_latency_ms: float | None = None
    latency_spread: float | None = None
    # Zero-cost proxy scores of the trained model at initialisation (evaluation.proxies),
    # None for a proxy that failed or was not finite; why, in proxy_failures.
    proxies: dict[str, float | None] | None = None
    proxy_failures: dict[str, str] | None = None
    val_accuracy_per_epoch: list[float] = field(default_factory=list)
    # The trained model on the validation split (evaluation.scores): balanced accuracy, macro-F1
    # and ROC AUC (two classes) by name, and each class's accuracy, None for a class without images.
    val_scores: dict[str, float | None] | None = None
    per_class_accuracy: list[float | None] | None = None
    epochs_run: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    device: str | None = None
    reason: str | None = None
    duplicate_of: int | None = None
    # Training images this trial saw, and what its whole budget would have seen
    # (0 and 0 when it did not train): what a pruner saved is read from these.
    images_seen: int = 0
    images_planned: int = 0

    def save(self, trial: Any) -> None:
        """Set every field as a user attribute of ``trial`` (None fields are skipped)."""
        for key, value in asdict(self).items():
            if value is not None:
                trial.set_user_attr(key, value.value if isinstance(value, TrialOutcome) else value)

    def save_costs(self, trial: Any) -> None:
        """Set the facts known before training (params, MACs, latency: every metric not
        measured in training), so other trials can compare this one while it trains."""
        for metric in METRICS.values():
            value = getattr(self, metric.source, None)
            if not metric.per_epoch and value is not None:
                trial.set_user_attr(metric.source, value)

    @staticmethod
    def save_outcome(trial: Any, outcome: TrialOutcome, reason: str) -> None:
        """Set only the outcome and its reason: for a trial cut short (an exception, Ctrl-C),
        whose learning curve so far is already on the trial and must stay."""
        trial.set_user_attr("outcome", outcome.value)
        trial.set_user_attr("reason", reason)

    @classmethod
    def load(cls, trial: FrozenTrial) -> TrialRecord:
        known = cls.__dataclass_fields__
        attrs = {k: v for k, v in trial.user_attrs.items() if k in known}
        default = TrialOutcome.FAILED if trial.state.name == "FAIL" else TrialOutcome.UNKNOWN
        attrs["outcome"] = TrialOutcome(attrs.get("outcome", default))
        return cls(**attrs)

    def built_architecture(self, *, trial: int, study: str, to: str) -> Architecture:
        """The architecture trial ``trial`` of ``study`` recorded, to ``to`` (build, train); a trial of
        a study made elsewhere may record none, which is the user's one-line error."""
        if self.architecture is None:
            raise UsageError(f"trial {trial} of study {study!r} records no architecture to {to}")
        return Architecture.from_dict(self.architecture)

    def value(self, metric: Metric) -> float | None:
        """The trial's value of ``metric``, None when it has none; per-epoch metrics
        (accuracy) only for a trial that trained to the end."""
        if metric.per_epoch and self.outcome is not TrialOutcome.TRAINED:
            return None
        return metric.value(vars(self))


def describe_architecture(architecture: dict[str, Any]) -> str:
    """The recorded architecture in words (``Architecture.describe``), for hovers and tables."""
    return Architecture.from_dict(architecture).describe()
