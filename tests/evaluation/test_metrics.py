"""The metric table: lookup, values from a record's fields, worst values, formatting."""

from __future__ import annotations

import math

import pytest

from evaluation import ConfigError
from evaluation.metrics import DIRECTIONS, METRICS, Metric, format_metric, get_metric, metric_label


def test_get_metric_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        get_metric("flops")
    assert str(caught.value) == (
        "unknown metric 'flops'; known metrics: accuracy, macs, params, latency_ms, balanced_accuracy, macro_f1, "
        "roc_auc, synflow, naswot, grad_norm, snip, meco, zico, az_expressivity, az_progressivity, az_trainability, "
        "onnx_latency_ms"
    ), str(caught.value)


@pytest.mark.parametrize("metric", METRICS.values(), ids=list(METRICS))
def test_metric_worst_ranks_last_in_either_direction(metric: Metric) -> None:
    assert get_metric(metric.name) is metric, "the registry is keyed by name"
    assert metric.direction in DIRECTIONS, f"{metric.name}: direction {metric.direction!r}"
    sample = [0.0, 0.5, 1.0, 1e9]
    worst = metric.worst_for(metric.direction)
    beaten = max(sample) <= worst if metric.direction == "minimize" else min(sample) >= worst
    assert beaten, f"{metric.name}: worst {worst} must rank last when {metric.direction}d"
    assert metric.worst_for("minimize" if metric.direction == "maximize" else "maximize") in (math.inf, -math.inf), (
        f"{metric.name}: against its natural direction the worst is unbounded"
    )


@pytest.mark.parametrize("metric", METRICS.values(), ids=list(METRICS))
def test_metric_constraint_is_an_upper_limit_key(metric: Metric) -> None:
    if metric.constraint is None:
        assert metric.direction == "maximize", f"{metric.name}: a cost has a limit in space files"
    else:
        assert metric.constraint == f"max_{metric.name}", f"{metric.name}: constraint key {metric.constraint!r}"


def test_metric_value_reads_the_record_fields() -> None:
    accuracy, latency = METRICS["accuracy"], METRICS["latency_ms"]
    assert accuracy.value({"val_accuracy_per_epoch": [0.5, 0.75]}) == 0.75, "accuracy is the last epoch's"
    assert accuracy.value({"val_accuracy_per_epoch": []}) is None, "no epoch, no accuracy"
    assert latency.value({"latency_ms": 2.5}) == 2.5, "latency is the recorded field"
    assert latency.value({"latency_ms": None}) is None, "a missing latency is None"
    assert latency.value({"latency_ms": math.inf}) is None, "a non-finite measurement is no measurement"
    assert METRICS["params"].value({"params": 1234}) == 1234 and isinstance(
        METRICS["params"].value({"params": 1234}), int
    ), "counts stay integers"


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("accuracy", 0.7312, "73.12 %"),
        ("accuracy", 73.12, "73.12 %"),  # already a percentage
        ("macs", 12_345_678, "12.3 M"),
        ("params", 950, "950"),
        ("params", 2_500_000_000, "2.5 G"),
        ("latency_ms", 1.234, "1.23 ms"),
        ("latency_ms", math.inf, "n/a"),
        ("latency_ms", None, ""),
        ("objective0", 0.123456, "0.1235"),  # a name outside the table, from a study made elsewhere
    ],
)
def test_format_metric_with_units(name: str, value: float | None, shown: str) -> None:
    assert format_metric(name, value) == shown, f"{name} {value!r}"


def test_metric_label_short_names() -> None:
    labels = {name: metric_label(name) for name in (*METRICS, "objective0")}
    assert labels == {
        "accuracy": "accuracy",
        "macs": "MACs",
        "params": "parameters",
        "latency_ms": "latency",
        "balanced_accuracy": "balanced accuracy",
        "macro_f1": "macro-F1",
        "roc_auc": "ROC AUC",
        "synflow": "synflow",
        "naswot": "NASWOT",
        "grad_norm": "grad norm",
        "snip": "SNIP",
        "meco": "MeCo",
        "zico": "ZiCo",
        "az_expressivity": "AZ expressivity",
        "az_progressivity": "AZ progressivity",
        "az_trainability": "AZ trainability",
        "onnx_latency_ms": "ONNX latency",
        "objective0": "objective0",
    }, labels


def test_proxy_metrics_read_their_entry_of_the_proxies_field() -> None:
    naswot = METRICS["naswot"]
    assert (naswot.direction, naswot.constraint, naswot.source) == ("maximize", None, "proxies"), naswot
    assert naswot.value({"proxies": {"naswot": 788.5, "synflow": 1e27}}) == 788.5, "its own entry"
    assert naswot.value({"proxies": {"naswot": None}}) is None, "a failed proxy has no value"
    assert naswot.value({"proxies": None}) is None and naswot.value({}) is None, "a trial without proxies"
    assert METRICS["synflow"].value({"proxies": {"synflow": 1.7e27}}) == 1.7e27, "each proxy reads its own"
    assert format_metric("synflow", 1.7279e27) == "1.728e+27" and format_metric("naswot", 788.57) == "788.6"
