"""The metrics a trial is judged by, one ``Metric`` per metric, in one table.

Everything that names a metric reads ``METRICS``: the space file's objectives
and constraints, the objective that tells Optuna a trial's values, the
progress line, the tables and the report's axes, labels and hovers. Adding a
metric (peak memory, say) is adding one entry here, plus the ``TrialRecord``
field that holds its value. The zero-cost proxies of ``evaluation.proxies``
are one entry each, made from that module's table; they share one field, a
mapping of proxy names to scores, and are no objective unless a space names
them.

The class-balanced scores (``evaluation.scores``: balanced accuracy,
macro-F1, and ROC AUC for two classes) are computed on the validation split
after training; like the proxies they share one field, ``val_scores``, a
mapping of score names to values.

This module knows nothing of Optuna, spaces or studies: a record is read as
the mapping of its fields (``vars(record)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from evaluation.errors import ConfigError
from evaluation.proxies import PROXIES, Proxy

__all__ = ["DIRECTIONS", "METRICS", "Direction", "Metric", "format_metric", "get_metric", "metric_label"]

Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[Direction, ...] = ("maximize", "minimize")


def _percent(value: float) -> str:
    """0.7312 -> '73.12 %'; a value above 1 is taken as a percentage already."""
    return f"{value * 100:.2f} %" if value <= 1.0 else f"{value:.2f} %"


def _si(value: float) -> str:
    """12_345_678 -> '12.3 M'."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g}"


def _milliseconds(value: float) -> str:
    return f"{value:.2f} ms"


def _fraction(value: float) -> str:
    """0.93412 -> '0.934': a score in [0, 1] that is not a share of images."""
    return f"{value:.3f}"


def _plain(value: float) -> str:
    """1.7279e27 -> '1.728e+27', 788.5756 -> '788.6': four significant digits."""
    return f"{value:.4g}"


@dataclass(frozen=True)
class Metric:
    """One metric: where a trial's value comes from, which way is better, how it reads.

    ``worst`` is the value that ranks last in the metric's own ``direction``;
    a trial without a measurement gets it, so a missing value never wins.
    """

    name: str
    direction: Direction
    label: str  # short name for titles, legends and table headers
    axis_title: str
    short_axis_title: str  # for the small plots of a grid
    log_axis: bool
    formatter: Callable[[float], str] = field(compare=False, repr=False)
    tick_format: str | None  # d3 format of plot ticks: ".1%" for fractions, "~s" for SI prefixes
    source: str  # the TrialRecord field that holds the value
    key: str | None = None  # the entry of that field when it holds a mapping (the proxies' scores)
    # The field holds one value per epoch and the metric is the last one; only
    # a run that trained to the end has it (a diverged run's curve is no result).
    per_epoch: bool = False
    constraint: str | None = None  # the space file's key for an upper limit, under ``constraints``
    limit_type: type[int] | type[float] = float  # the type of that limit's value
    worst: float = math.inf

    def value(self, fields: Mapping[str, Any]) -> float | None:
        """This metric's value among a record's ``fields``; None when missing or not finite."""
        value = fields.get(self.source)
        if self.key is not None:
            value = value.get(self.key) if value else None
        if self.per_epoch:
            value = value[-1] if value else None
        if value is None or not math.isfinite(value):
            return None
        return value

    def worst_for(self, direction: str) -> float:
        """The value that ranks last when the metric is optimised in ``direction``."""
        if direction == self.direction:
            return self.worst
        return math.inf if direction == "minimize" else -math.inf

    def format(self, value: float | None) -> str:
        """The value with its unit, for hovers and tables; '' when missing, 'n/a' when not finite."""
        if value is None:
            return ""
        if not math.isfinite(value):
            return "n/a"
        return self.formatter(value)


def _validation_score(name: str, label: str, axis_title: str, formatter: Callable[[float], str], ticks: str) -> Metric:
    """A score of the trained model on the validation split, read from the record's ``val_scores`` mapping."""
    return Metric(
        name=name,
        direction="maximize",
        label=label,
        axis_title=axis_title,
        short_axis_title=f"val. {label}",
        log_axis=False,
        formatter=formatter,
        tick_format=ticks,
        source="val_scores",
        key=name,
        worst=0.0,
    )


def _proxy_metric(proxy: Proxy) -> Metric:
    """A zero-cost proxy's score at initialisation, read from the record's ``proxies`` mapping."""
    scale = ", log scale" if proxy.log_scale else ""
    return Metric(
        name=proxy.name,
        direction="maximize" if proxy.higher_is_better else "minimize",
        label=proxy.label,
        axis_title=f"{proxy.label} at initialisation{scale}",
        short_axis_title=proxy.label,
        log_axis=proxy.log_scale,
        formatter=_plain,
        tick_format=None,
        source="proxies",
        key=proxy.name,
        worst=-math.inf if proxy.higher_is_better else math.inf,
    )


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            name="accuracy",
            direction="maximize",
            label="accuracy",
            axis_title="validation accuracy",
            short_axis_title="val. accuracy",
            log_axis=False,
            formatter=_percent,
            tick_format=".1%",
            source="val_accuracy_per_epoch",
            per_epoch=True,
            worst=0.0,
        ),
        Metric(
            name="macs",
            direction="minimize",
            label="MACs",
            axis_title="MACs (multiply-accumulates), log scale",
            short_axis_title="MACs",
            log_axis=True,
            formatter=_si,
            tick_format="~s",
            source="macs",
            constraint="max_macs",
            limit_type=int,
        ),
        Metric(
            name="params",
            direction="minimize",
            label="parameters",
            axis_title="parameters, log scale",
            short_axis_title="parameters",
            log_axis=True,
            formatter=_si,
            tick_format="~s",
            source="params",
            constraint="max_params",
            limit_type=int,
        ),
        Metric(
            name="latency_ms",
            direction="minimize",
            label="latency",
            axis_title="latency per image (ms)",
            short_axis_title="latency (ms)",
            log_axis=False,
            formatter=_milliseconds,
            tick_format=None,
            source="latency_ms",
            constraint="max_latency_ms",
        ),
        _validation_score(
            "balanced_accuracy",
            "balanced accuracy",
            "validation balanced accuracy (mean recall per class)",
            _percent,
            ".1%",
        ),
        _validation_score("macro_f1", "macro-F1", "validation macro-F1 (mean F1 per class)", _percent, ".1%"),
        _validation_score("roc_auc", "ROC AUC", "validation ROC AUC (two classes)", _fraction, ".3f"),
        *(_proxy_metric(proxy) for proxy in PROXIES.values()),
        Metric(
            name="onnx_latency_ms",
            direction="minimize",
            label="ONNX latency",
            axis_title="ONNX Runtime latency per image, CPU (ms)",
            short_axis_title="ONNX latency (ms)",
            log_axis=False,
            formatter=_milliseconds,
            tick_format=None,
            source="onnx_latency_ms",  # evaluation.onnx_latency.onnx_latency_ms: exported, timed at batch 1
            constraint="max_onnx_latency_ms",
        ),
    )
}


def get_metric(name: str) -> Metric:
    """The metric called ``name``; an unknown name fails with the known ones."""
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
    return METRICS[name]


def metric_label(name: str) -> str:
    """A metric's name as titles, legends and tables show it ('macs' -> 'MACs'); other names as they are."""
    metric = METRICS.get(name)
    return name if metric is None else metric.label


def format_metric(name: str, value: float | None) -> str:
    """A value of metric ``name`` with its unit; a name outside the table (a study made elsewhere) plainly."""
    metric = METRICS.get(name)
    if metric is not None:
        return metric.format(value)
    return "" if value is None else f"{value:.4g}"
