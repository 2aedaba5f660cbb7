"""The study report: one self-contained HTML page for reviewing a search by eye.

Compute first, draw second: ``collect_report(study)`` reads a study into a
``ReportData`` of plain values (what the tests check); ``render_report(data)``
draws it with plotly into one HTML string. The page embeds plotly.js and a few
lines of our own script, and fetches nothing, so it opens offline and can be
mailed. ``write_report(study, path)`` does both; ``search run`` calls it at the
end of every run, and ``search report`` at any time, also while a run goes on.
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from search.pareto import front_trials, objective_names
from search.records import TrialRecord, describe_architecture
from search.study import study_dir

__all__ = [
    "Importance",
    "Knob",
    "ReportData",
    "TrialPoint",
    "collect_report",
    "render_report",
    "write_report",
]

# Costs every trial records, drawn against the quality objective even when the
# study does not optimise them (the issue asks for accuracy vs MACs and vs params).
COST_METRICS = ("macs", "params", "latency_ms")
# PED-ANOVA compares the best 10% of trials with all of them; below this many
# feasible trials that top decile is one or no trial and the numbers are noise.
IMPORTANCE_MIN_TRIALS = 10
# Knobs drawn in the parallel-coordinates plot: more axes than this overlap.
PARCOORDS_MAX_KNOBS = 10
# Knobs given a slice plot and an importance bar, the most important first: a
# space that samples every block's knobs in every trial has dozens, and a
# thousand trials in fifty slice plots would make the page sluggish.
SLICES_MAX_KNOBS = 16
IMPORTANCE_MAX_BARS = 20
# Axis label for a knob a trial lacks (a stage its network does not have);
# short, so it does not crowd the value labels beside it.
ABSENT = "–"


@dataclass(frozen=True)
class Knob:
    """One searched parameter and the values it may take."""

    name: str
    kind: str  # "categorical", "int" or "float"
    choices: tuple[Any, ...] = ()
    log: bool = False


@dataclass(frozen=True)
class TrialPoint:
    """One trial as the report sees it: Optuna's facts plus the trial's record."""

    number: int
    state: str
    values: tuple[float, ...] | None
    feasible: bool
    on_front: bool
    knobs: dict[str, Any]
    constraints: dict[str, float]
    curve: tuple[float, ...]
    record: TrialRecord

    @property
    def finished(self) -> bool:
        """Completed with values and within every constraint: a candidate for the front."""
        return self.state == "COMPLETE" and self.values is not None and self.feasible

    @property
    def drawn(self) -> bool:
        """Shown in the objective plots. A diverged trial's chance-level accuracy would
        squash every axis, so it is left out unless it is on the front."""
        return self.finished and (self.record.outcome != "diverged" or self.on_front)


@dataclass(frozen=True)
class Importance:
    """How much each knob matters for one objective, or why that is unknown."""

    objective: str
    values: dict[str, float]
    note: str | None = None


@dataclass(frozen=True)
class ReportData:
    """Everything the report draws, computed from the study once."""

    study_name: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    trials: tuple[TrialPoint, ...]
    front: tuple[int, ...]
    front_size_history: tuple[tuple[int, int], ...]
    knobs: tuple[Knob, ...]
    importances: tuple[Importance, ...]
    settings: dict[str, Any]
    generated_at: str

    @property
    def quality(self) -> int:
        """Index of the objective drawn on the y axes: the first maximised one (accuracy)."""
        return next((i for i, d in enumerate(self.directions) if d == "maximize"), 0)

    def metric(self, trial: TrialPoint, name: str) -> float | None:
        """An objective's value, else the recorded cost of that name."""
        if name in self.objectives and trial.values is not None:
            return trial.values[self.objectives.index(name)]
        value = getattr(trial.record, name, None) if name in COST_METRICS else None
        return None if value is None else float(value)


# ---------------------------------------------------------------- compute


def collect_report(study: optuna.Study) -> ReportData:
    """Read ``study`` into a ``ReportData``; safe while other processes add trials."""
    names = tuple(objective_names(study))
    directions = tuple(d.name.lower() for d in study.directions)
    front = tuple(t.number for t in front_trials(study))
    on_front = set(front)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    points = tuple(_trial_point(t, on_front) for t in trials)
    return ReportData(
        study_name=study.study_name,
        objectives=names,
        directions=directions,
        trials=points,
        front=front,
        front_size_history=_front_size_history(points, directions),
        knobs=_knobs(trials),
        importances=_importances(study, names, directions),
        settings=dict(study.user_attrs.get("settings") or {}),
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _feasible(trial: FrozenTrial) -> bool:
    """Within every constraint set with ``Trial.set_constraint`` (values <= 0), as Optuna decides."""
    return all(v <= 0 for v in trial.constraints.values())


def _trial_point(trial: FrozenTrial, on_front: set[int]) -> TrialPoint:
    record = TrialRecord.load(trial)
    # The record's curve is the truth; a trial that reported epochs but died
    # before saving its record still has Optuna's intermediate values.
    curve = record.val_accuracy_per_epoch or [v for _, v in sorted(trial.intermediate_values.items())]
    return TrialPoint(
        number=trial.number,
        state=trial.state.name,
        values=tuple(trial.values) if trial.values is not None else None,
        feasible=_feasible(trial),
        on_front=trial.number in on_front,
        knobs=dict(trial.params),
        constraints=dict(trial.constraints),
        curve=tuple(float(v) for v in curve),
        record=record,
    )


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` is no worse than ``b`` everywhere and better somewhere (all minimised)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _front_size_history(points: Iterable[TrialPoint], directions: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """(trial number, size of the front among trials up to it), for every trial.

    Counts like ``Study.best_trials``: feasible completed trials only, equal
    value vectors do not dominate each other.
    """
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    front: list[tuple[float, ...]] = []
    history = []
    for point in points:
        if point.finished:
            losses = tuple(s * v for s, v in zip(signs, point.values))
            if not any(_dominates(f, losses) for f in front):
                front = [f for f in front if not _dominates(losses, f)] + [losses]
        history.append((point.number, len(front)))
    return tuple(history)


def _knobs(trials: list[FrozenTrial]) -> tuple[Knob, ...]:
    """The union of the trials' parameters, in the order the space samples them."""
    distributions: dict[str, BaseDistribution] = {}
    for trial in trials:
        for name, distribution in trial.distributions.items():
            distributions.setdefault(name, distribution)
    return tuple(_knob(name, d) for name, d in distributions.items())


def _knob(name: str, distribution: BaseDistribution) -> Knob:
    if isinstance(distribution, CategoricalDistribution):
        return Knob(name, "categorical", tuple(distribution.choices))
    kind = "float" if isinstance(distribution, FloatDistribution) else "int"
    return Knob(name, kind, log=bool(getattr(distribution, "log", False)))


def _importances(study: optuna.Study, names: tuple[str, ...], directions: tuple[str, ...]) -> tuple[Importance, ...]:
    """PED-ANOVA importances (Optuna's default evaluator) per objective, feasible trials only.

    PED-ANOVA scores how differently a knob is distributed in the best 10% of
    trials than in all of them; it handles the conditional knobs of deeper
    networks. Rejected trials would teach it the constraints rather than the
    objective, so their target is NaN, which the evaluator skips.
    """
    feasible = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if _feasible(t)]
    if len(feasible) < IMPORTANCE_MIN_TRIALS:
        note = f"needs at least {IMPORTANCE_MIN_TRIALS} feasible completed trials, the study has {len(feasible)}"
        return tuple(Importance(name, {}, note) for name in names)
    # A knob that took one value in every trial cannot be judged, yet PED-ANOVA
    # still scores it against its prior; leave such knobs out.
    seen: dict[str, set[str]] = {}
    for trial in feasible:
        for knob, value in trial.params.items():
            seen.setdefault(knob, set()).add(repr(value))
    varied = [knob for knob, values in seen.items() if len(values) > 1]
    if not varied:
        note = "every knob took a single value in the feasible trials, so none can be judged"
        return tuple(Importance(name, {}, note) for name in names)
    return tuple(_importance(study, varied, i, name, directions[i] == "maximize") for i, name in enumerate(names))


def _importance(study: optuna.Study, knobs: list[str], index: int, name: str, maximize: bool) -> Importance:
    sign = -1.0 if maximize else 1.0  # PED-ANOVA takes lower targets as better

    def target(trial: FrozenTrial) -> float:
        return sign * trial.values[index] if _feasible(trial) else math.nan

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "importances will be equal" and experimental notices
            raw = optuna.importance.get_param_importances(study, params=knobs, target=target, normalize=False)
    except (ValueError, RuntimeError, ZeroDivisionError) as error:
        return Importance(name, {}, f"Optuna could not compute importances: {error}")
    total = sum(raw.values())
    # Optuna's own normalising would turn all zeros into equal shares, which
    # would read as "every knob matters a bit".
    if total <= 0:
        return Importance(name, {}, "no knob separates the best 10% of trials from the rest (every importance is 0)")
    return Importance(name, {k: v / total for k, v in sorted(raw.items(), key=lambda kv: -kv[1])})


# ---------------------------------------------------------------- draw

Figures = dict[str, dict[str, Any]]  # plot div id -> plotly figure as a JSON-ready dict

_GREY = "#9aa5b1"
_FRONT = "#d1495b"
_PRUNED = "#edae49"
_TRAINED = "#5b7fa6"
_DIVERGED = "#7b4b94"
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_HOVERLABEL = {"bgcolor": "white", "bordercolor": "#888", "font": {"size": 12, "color": "#222"}, "align": "left"}

# name -> (axis title, short axis title for small plots, log axis)
_METRIC_AXES = {
    "accuracy": ("validation accuracy", "val. accuracy", False),
    "macs": ("MACs (multiply-accumulates), log scale", "MACs", True),
    "params": ("parameters, log scale", "parameters", True),
    "latency_ms": ("latency per image (ms)", "latency (ms)", False),
}


def _si(value: float) -> str:
    """12_345_678 -> '12.3 M'."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g}"


def _format(name: str, value: float | None) -> str:
    """A metric's value with its unit, for hovers and the table."""
    if value is None:
        return ""
    if name == "accuracy":
        return f"{value * 100:.2f} %" if value <= 1.0 else f"{value:.2f} %"
    if name in ("macs", "params"):
        return _si(value)
    if name == "latency_ms":
        return f"{value:.2f} ms"
    return f"{value:.4g}"


def _label(name: str) -> str:
    return {"macs": "MACs", "latency_ms": "latency", "params": "parameters"}.get(name, name)


def _axis(name: str, values: Iterable[float | None], *, short: bool = False) -> dict[str, Any]:
    """Axis title and scale for a metric; accuracies as percentages, counts as 10M, 20M."""
    title, short_title, log = _METRIC_AXES.get(name, (name, name, False))
    present = [v for v in values if v is not None]
    axis: dict[str, Any] = {"title": {"text": short_title if short else title}}
    if log and present and min(present) > 0:
        axis["type"] = "log"
        # Across one to three decades plotly labels every digit (7M 8M 9M...),
        # which overlap; "D2" labels only 1, 2 and 5 of each decade.
        if 0.7 <= math.log10(max(present) / min(present)) <= 3:
            axis["dtick"] = "D2"
    if name == "accuracy" and present and max(present) <= 1.0:
        axis["tickformat"] = ".1%"
    elif log:
        axis["tickformat"] = "~s"
    return axis


def _architecture_lines(architecture: dict[str, Any] | None) -> list[str]:
    """``describe_architecture`` one segment per line, stages numbered."""
    if not architecture:
        return []
    segments = iter(describe_architecture(architecture).split(" | "))
    lines = [next(segments)]
    transitions = architecture.get("transitions", [])
    for i, _ in enumerate(architecture["stages"]):
        lines.append(f"stage {i + 1}: {next(segments)}")
        if i < len(transitions) and transitions[i] is not None:
            lines.append(f"   then {next(segments)}")
    return lines


def _hover(data: ReportData, trial: TrialPoint) -> str:
    """The trial's numbers and architecture in words, one fact per line."""
    lines = [f"<b>trial #{trial.number}</b> ({trial.record.outcome}{', on the front' if trial.on_front else ''})"]
    shown = list(data.objectives) + [m for m in COST_METRICS if m not in data.objectives]
    for name in shown:
        value = data.metric(trial, name)
        if value is not None:
            lines.append(f"{_label(name)}: {_format(name, value)}")
    lines += [html.escape(line) for line in _architecture_lines(trial.record.architecture)]
    lines.append("<i>click for the full config</i>")
    return "<br>".join(lines)


def _layout(**overrides: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "hovermode": "closest",
        "hoverlabel": _HOVERLABEL,
        "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        "font": {"size": 13},
    }
    layout.update(overrides)
    return layout


def _pareto_figure(data: ReportData, x_name: str) -> dict[str, Any]:
    """Quality objective against one cost: every feasible trial, the front highlighted."""
    y_name = data.objectives[data.quality]
    drawn = [t for t in data.trials if t.drawn and data.metric(t, x_name) is not None]
    others = [t for t in drawn if not t.on_front]
    front = sorted((t for t in drawn if t.on_front), key=lambda t: (data.metric(t, x_name), data.metric(t, y_name)))

    def markers(trials: list[TrialPoint], **style: Any) -> dict[str, Any]:
        return {
            "type": "scatter",
            "mode": "markers",
            "x": [data.metric(t, x_name) for t in trials],
            "y": [data.metric(t, y_name) for t in trials],
            "customdata": [t.number for t in trials],
            "hovertext": [_hover(data, t) for t in trials],
            "hovertemplate": "%{hovertext}<extra></extra>",
            **style,
        }

    traces = [markers(others, name=f"other feasible trials ({len(others)})", marker={"color": _GREY, "size": 7, "opacity": 0.6})]
    # The staircase is the attained region's border only when the plot shows
    # exactly the two objectives; elsewhere the front is a set of points. With
    # y maximised the border runs right then up, with y minimised down then right.
    if len(data.objectives) == 2 and x_name in data.objectives and front:
        shape = "hv" if data.directions[data.quality] == "maximize" else "vh"
        traces.append({
            "type": "scatter",
            "mode": "lines",
            "x": [data.metric(t, x_name) for t in front],
            "y": [data.metric(t, y_name) for t in front],
            "line": {"color": _FRONT, "width": 1.5, "shape": shape},
            "hoverinfo": "skip",
            "showlegend": False,
        })
    traces.append(markers(
        front, name=f"Pareto front ({len(front)} trials)", meta="front",
        marker={"color": _FRONT, "size": 10, "line": {"color": "white", "width": 1}},
    ))
    title = f"{_label(y_name)} vs {_label(x_name)}"
    layout = _layout(
        title={"text": title, "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
        xaxis=_axis(x_name, (data.metric(t, x_name) for t in drawn)),
        yaxis=_axis(y_name, (data.metric(t, y_name) for t in drawn)),
        height=460,
        margin={"l": 70, "r": 20, "t": 80, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    return {"data": traces, "layout": layout}


def _history_figure(data: ReportData) -> dict[str, Any]:
    """Each objective by trial number with the best so far, and the front's size."""
    rows = len(data.objectives) + 1
    drawn = [t for t in data.trials if t.drawn]
    traces: list[dict[str, Any]] = []
    layout = _layout(height=220 * rows + 80)
    gap = 0.35 / rows
    span = (1 - gap * (rows - 1)) / rows
    annotations = []
    for row, name in enumerate([*data.objectives, "front size"]):
        axis = "" if row == 0 else str(row + 1)
        top = 1 - row * (span + gap)
        where = {"xaxis": f"x{axis}", "yaxis": f"y{axis}"}
        if name == "front size":
            title = "trials on the Pareto front so far"
            traces.append({
                "type": "scatter", "mode": "lines", **where,
                "x": [n for n, _ in data.front_size_history], "y": [s for _, s in data.front_size_history],
                "line": {"color": _FRONT, "shape": "hv"}, "showlegend": False,
                "hovertemplate": "after trial #%{x}: %{y} trials on the front<extra></extra>",
            })
            most = max((s for _, s in data.front_size_history), default=0)
            y_axis: dict[str, Any] = {"title": {"text": "trials"}, "rangemode": "tozero", "dtick": 1 if most <= 8 else None}
        else:
            i = data.objectives.index(name)
            values = [t.values[i] for t in drawn]
            best = max if data.directions[i] == "maximize" else min
            title = f"{_label(name)} of each feasible trial, and the {'highest' if best is max else 'lowest'} so far"
            running: list[float] = []
            for value in values:
                running.append(value if not running else best(running[-1], value))
            traces.append({
                "type": "scatter", "mode": "markers", **where,
                "x": [t.number for t in drawn], "y": values, "customdata": [t.number for t in drawn],
                "hovertext": [_hover(data, t) for t in drawn], "hovertemplate": "%{hovertext}<extra></extra>",
                "marker": {"color": [_FRONT if t.on_front else _GREY for t in drawn], "size": 6},
                "name": "a trial (red: on the front)", "legendgroup": "trial", "showlegend": row == 0,
            })
            traces.append({
                "type": "scatter", "mode": "lines", **where,
                "x": [t.number for t in drawn], "y": running, "line": {"color": _TRAINED, "shape": "hv"},
                "name": "best so far", "legendgroup": "best", "showlegend": row == 0, "hoverinfo": "skip",
            })
            y_axis = _axis(name, values, short=True)
        y_axis.update({"domain": [top - span, top], "anchor": f"x{axis}"})
        layout[f"yaxis{axis}"] = y_axis
        layout[f"xaxis{axis}"] = {
            "anchor": f"y{axis}", "matches": "x" if row else None,
            "title": {"text": "trial number"} if row == rows - 1 else None,
            "dtick": 1 if len(data.trials) <= 12 else None,  # no ticks at trial 0.5
        }
        annotations.append({
            "text": f"<b>{html.escape(title)}</b>", "showarrow": False, "xref": "paper", "yref": "paper",
            "x": 0, "y": top, "xanchor": "left", "yanchor": "bottom", "font": {"size": 13},
        })
    layout["annotations"] = annotations
    # Left-aligned: the right end of the top line belongs to plotly's toolbar.
    layout["legend"] = {"orientation": "h", "yanchor": "bottom", "y": 1.0 + 36 / layout["height"], "x": 0}
    layout["margin"] = {"l": 80, "r": 20, "t": 70, "b": 60}
    return {"data": traces, "layout": _drop_none(layout)}


def _curves_figure(data: ReportData) -> dict[str, Any]:
    """Validation accuracy per epoch of every trial; pruned ones dashed, ending in a cross."""
    # (legend, colour, member, dash, width, end marker), drawn in this order so
    # pruned curves stay visible on top. Unfinished curves end in an open
    # circle: still running, or stopped by an error.
    groups = [
        ("trained", _TRAINED, lambda t: t.state == "COMPLETE" and not t.on_front and t.record.outcome != "diverged",
         "solid", 1.0, None),
        ("running, failed or diverged", _DIVERGED,
         lambda t: t.state not in ("COMPLETE", "PRUNED") or (t.record.outcome == "diverged" and not t.on_front),
         "dot", 1.5, "circle-open"),
        ("on the Pareto front", _FRONT, lambda t: t.on_front, "solid", 2.5, None),
        ("pruned: stopped early", _PRUNED, lambda t: t.state == "PRUNED", "dash", 1.5, "x-thin"),
    ]
    traces = []
    for name, color, member, dash, width, end in groups:
        trials = [t for t in data.trials if t.curve and member(t)]
        x: list[int | None] = []
        y: list[float | None] = []
        ids: list[int | None] = []
        sizes: list[int] = []
        for trial in trials:
            epochs = len(trial.curve)
            x += [*range(1, epochs + 1), None]
            y += [*trial.curve, None]
            ids += [trial.number] * epochs + [None]
            sizes += [0] * (epochs - 1) + [9 if end else 0, 0]
        traces.append({
            "type": "scatter", "mode": "lines+markers", "x": x, "y": y, "customdata": ids,
            "name": f"{name} ({len(trials)})", "connectgaps": False,
            "line": {"color": color, "width": width, "dash": dash},
            "marker": {"symbol": end or "circle", "size": sizes, "line": {"color": color, "width": 2}},
            "opacity": 0.9 if name != "trained" else 0.5,
            "hovertemplate": f"trial #%{{customdata}} ({name}), epoch %{{x}}: %{{y:.2%}}<extra></extra>",
        })
    y_axis = _axis("accuracy", [v for t in data.trials for v in t.curve])
    # Diverged runs sit at chance level; start the view at the others' range
    # (double-click the plot to see everything).
    healthy = [v for t in data.trials if t.record.outcome != "diverged" for v in t.curve]
    if healthy:
        low, high = min(healthy), max(healthy)
        pad = (high - low) * 0.05 or 0.01
        y_axis["range"] = [low - pad, high + pad]
    longest = max((len(t.curve) for t in data.trials), default=0)
    return {"data": traces, "layout": _drop_none(_layout(
        height=480,
        xaxis={"title": {"text": "epoch"}, "dtick": 1 if longest <= 20 else None, "range": [0.8, longest + 0.2]},
        yaxis=y_axis,
    ))}


def _importance_figure(importance: Importance) -> dict[str, Any]:
    ranked = list(importance.values)
    names = ranked[:IMPORTANCE_MAX_BARS][::-1]  # bars bottom-up: the biggest on top
    values = [importance.values[n] for n in names]
    shown = f" (top {len(names)} of {len(ranked)} knobs)" if len(names) < len(ranked) else ""
    return {
        "data": [{
            "type": "bar", "orientation": "h", "x": values, "y": names, "marker": {"color": _TRAINED},
            "hovertemplate": "%{y}: %{x:.1%} of the total importance<extra></extra>",
            "text": [f"{v:.0%}" for v in values], "textposition": "outside", "cliponaxis": False,
        }],
        "layout": _layout(
            title={"text": f"for {_label(importance.objective)}{shown}", "x": 0, "xanchor": "left"},
            height=max(260, 28 * len(names) + 110),
            xaxis={"title": {"text": "share of importance (PED-ANOVA)"}, "tickformat": ".0%", "rangemode": "tozero"},
            yaxis={"automargin": True, "type": "category"},
            margin={"l": 20, "r": 40, "t": 50, "b": 60},
        ),
    }


def _knob_codes(knob: Knob, values: list[Any]) -> tuple[list[float], list[float], list[str]]:
    """Plot positions for a knob's values, and the tick positions and labels.

    Categorical choices sit at 0, 1, 2, ...; log-scaled knobs at their log10,
    labelled with their value; a knob missing from a trial (a stage the network
    does not have) sits one step below, labelled ABSENT.
    """
    if knob.kind == "categorical":
        labels = [str(c) for c in knob.choices]
        codes = [float(knob.choices.index(v)) if v in knob.choices else -1.0 for v in values]
        ticks = list(range(len(labels)))
        if any(c < 0 for c in codes):
            return codes, [-1.0, *ticks], [ABSENT, *labels]
        return codes, [float(t) for t in ticks], labels
    scale = (lambda v: math.log10(float(v))) if knob.log else float
    present = [scale(v) for v in values if v is not None]
    if not present:
        return [0.0] * len(values), [], []
    low, high = min(present), max(present)
    distinct = sorted(set(present))
    # A whole grid step below the lowest value keeps ABSENT's label clear of the values'.
    if knob.kind == "int" and len(distinct) > 1:
        step = min(b - a for a, b in zip(distinct, distinct[1:]))
    else:
        step = (high - low) / 4 or 1.0
    codes = [scale(v) if v is not None else low - step for v in values]
    if knob.kind == "int" and not knob.log and len(distinct) <= 12:
        ticks = distinct
    else:
        ticks = [low + (high - low) * k / 4 for k in range(5)] if high > low else [low]
    labels = [f"{10**t if knob.log else t:.3g}" for t in ticks]
    if any(v is None for v in values):
        return codes, [low - step, *ticks], [ABSENT, *labels]
    return codes, ticks, labels


def _span(values: list[float], pad: float) -> list[float] | None:
    """An axis range covering ``values`` plus ``pad``; a single value gets room around it."""
    if not values:
        return None
    low, high = min(values), max(values)
    pad = pad or (0.5 if high == low else 0.0)
    return [low - pad, high + pad]


def _ranked_knobs(data: ReportData) -> list[Knob]:
    """Knobs by importance for the quality objective; unranked ones keep the space's order."""
    ranking = list(data.importances[data.quality].values) if data.importances else []
    order = {name: i for i, name in enumerate(ranking)}
    return sorted(data.knobs, key=lambda k: order.get(k.name, len(order)))


def _parcoords_figure(data: ReportData) -> dict[str, Any]:
    """The most important knobs and the objectives as parallel axes, one line per trial."""
    trials = [t for t in data.trials if t.drawn]
    knobs = _ranked_knobs(data)[:PARCOORDS_MAX_KNOBS]
    dimensions = []
    for knob in knobs:
        codes, ticks, labels = _knob_codes(knob, [t.knobs.get(knob.name) for t in trials])
        dimensions.append(_drop_none({
            "label": knob.name, "values": codes, "tickvals": ticks, "ticktext": labels, "range": _span(ticks + codes, 0.0),
        }))
    for i, name in enumerate(data.objectives):
        values = [t.values[i] for t in trials]
        dimension: dict[str, Any] = {"label": _label(name), "values": values}
        if name == "accuracy" and values and max(values) <= 1.0:
            dimension["tickformat"] = ".1%"
        elif name in ("macs", "params"):
            dimension["tickformat"] = ".3~s"
        dimensions.append(dimension)
    quality = [t.values[data.quality] for t in trials]
    return {
        "data": [{
            "type": "parcoords", "dimensions": dimensions, "labelangle": -20, "labelside": "top",
            "domain": {"x": [0, 0.92]},  # room on the right for the colour bar
            "line": {
                "color": quality, "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": {"text": _label(data.objectives[data.quality])}, "tickformat": ".1%" if quality and max(quality) <= 1.0 else None},
            },
        }],
        "layout": _drop_none(_layout(height=520, margin={"l": 90, "r": 60, "t": 130, "b": 40})),
    }


def _slices_figure(data: ReportData) -> dict[str, Any]:
    """The quality objective against each knob, one small plot per knob."""
    trials = [t for t in data.trials if t.drawn]
    knobs = _ranked_knobs(data)[:SLICES_MAX_KNOBS]
    y_name = data.objectives[data.quality]
    columns = 4
    rows = max(1, math.ceil(len(knobs) / columns))
    x_gap, y_gap = 0.06, 0.9 / (rows * 4) if rows > 1 else 0.0
    width, height = (1 - x_gap * (columns - 1)) / columns, (1 - y_gap * (rows - 1)) / rows
    traces: list[dict[str, Any]] = []
    layout = _layout(height=240 * rows + 80, showlegend=False, margin={"l": 70, "r": 20, "t": 40, "b": 40})
    annotations = []
    y_values = [t.values[data.quality] for t in trials]
    for k, knob in enumerate(knobs):
        row, column = divmod(k, columns)
        suffix = "" if k == 0 else str(k + 1)
        # Trials without the knob (a stage their network lacks) sit at ABSENT.
        codes, ticks, labels = _knob_codes(knob, [t.knobs.get(knob.name) for t in trials])
        # Categorical and small integer knobs stack their points in columns; a
        # deterministic jitter spreads them so the density shows.
        jitter = 0.3 if knob.kind == "categorical" or (knob.kind == "int" and len(ticks) <= 13) else 0.0
        for on_front, color, size in ((False, _GREY, 5), (True, _FRONT, 7)):
            group = [(t, c) for t, c in zip(trials, codes) if t.on_front == on_front]
            traces.append({
                "type": "scatter", "mode": "markers", "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
                "x": [c + jitter * (((t.number * 0.6180339) % 1.0) - 0.5) for t, c in group],
                "y": [t.values[data.quality] for t, _ in group], "customdata": [t.number for t, _ in group],
                "text": [f"trial #{t.number}: {knob.name} = {t.knobs.get(knob.name, 'absent')}" for t, _ in group],
                "hovertemplate": "%{text}<br>" + _label(y_name) + " %{y" + (":.2%" if y_name == "accuracy" else "") + "}<extra></extra>",
                "marker": {"color": color, "size": size, "opacity": 0.7},
            })
        x0 = column * (width + x_gap)
        y1 = 1 - row * (height + y_gap)
        x_axis: dict[str, Any] = {
            "domain": [x0, x0 + width], "anchor": f"y{suffix}", "tickvals": ticks, "ticktext": labels, "zeroline": False,
            # every choice on the axis, even one no trial took yet, with room for the jitter
            "range": _span(ticks + codes, 0.5) if jitter else None,
        }
        layout[f"xaxis{suffix}"] = x_axis
        y_axis = _axis(y_name, y_values, short=True)
        y_axis.update({"domain": [y1 - height, y1], "anchor": f"x{suffix}", "matches": "y" if k else None})
        if column:
            y_axis["title"] = None
        layout[f"yaxis{suffix}"] = y_axis
        annotations.append({
            "text": f"<b>{html.escape(knob.name)}</b>", "showarrow": False, "xref": "paper", "yref": "paper",
            "x": x0 + width / 2, "y": y1, "xanchor": "center", "yanchor": "bottom", "font": {"size": 12},
        })
    layout["annotations"] = annotations
    return {"data": traces, "layout": _drop_none(layout)}


def _drop_none(value: Any) -> Any:
    """Remove None entries from nested layout dicts (plotly.js reads null as a value)."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element: no '</', no NaN (JSON.parse rejects it)."""
    return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _trial_details(data: ReportData) -> dict[int, dict[str, Any]]:
    """The full config of each trial, shown in the side panel on click."""
    details = {}
    for t in data.trials:
        record = {k: v for k, v in asdict(t.record).items() if v is not None}
        details[t.number] = {
            "trial": t.number,
            "state": t.state,
            "objectives": dict(zip(data.objectives, t.values)) if t.values is not None else None,
            "on_front": t.on_front,
            "architecture": record.pop("architecture", None),
            "knobs": t.knobs,
            "record": record,
            "constraints (<= 0 is feasible)": t.constraints,
        }
    return details


def _table(data: ReportData) -> str:
    """The sortable table of all trials; numbers sort by their raw value (data-v)."""
    costs = [m for m in COST_METRICS if m not in data.objectives]
    columns = [("#", "num"), ("state", "text"), ("outcome", "text")]
    columns += [(f"{_label(n)}", "num") for n in data.objectives]
    columns += [(_label(c), "num") for c in costs]
    columns += [("epochs", "num"), ("train (s)", "num"), ("reason", "text"), ("architecture", "text")]
    head = "".join(
        f'<th data-type="{kind}" title="click to sort">{html.escape(name)}</th>' for name, kind in columns
    )
    body = []
    for t in data.trials:
        cells = [
            _cell(t.number, f"{t.number}{' ★' if t.on_front else ''}"),
            _cell(t.state, t.state.lower()),
            _cell(_outcome(t), _outcome(t)),
        ]
        for name in data.objectives:  # a pruned or failed trial still has its recorded costs
            value = data.metric(t, name)
            cells.append(_cell(value, _format(name, value)))
        for name in costs:
            value = data.metric(t, name)
            cells.append(_cell(value, _format(name, value)))
        cells.append(_cell(t.record.epochs_run, str(t.record.epochs_run)))
        cells.append(_cell(t.record.train_seconds, f"{t.record.train_seconds:.1f}"))
        reason = t.record.reason or ""
        if t.record.duplicate_of is not None:
            reason = reason or f"same architecture as trial #{t.record.duplicate_of}"
        cells.append(_cell(reason, reason, css="reason"))
        description = describe_architecture(t.record.architecture) if t.record.architecture else ""
        cells.append(_cell(description, description, css="arch"))
        css = " ".join(c for c in ("front" if t.on_front else "", t.state.lower()) if c)
        body.append(f'<tr data-trial="{t.number}" class="{css}">{"".join(cells)}</tr>')
    return f'<table id="trials"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _outcome(trial: TrialPoint) -> str:
    """The record's outcome; a trial still running has no record yet."""
    return trial.state.lower() if trial.record.outcome == "unknown" else trial.record.outcome


def _cell(raw: Any, shown: str, css: str = "") -> str:
    value = "" if raw is None or (isinstance(raw, float) and not math.isfinite(raw)) else str(raw)
    title = f' title="{html.escape(shown)}"' if css else ""
    klass = f' class="{css}"' if css else ""
    return f'<td data-v="{html.escape(value)}"{klass}{title}>{html.escape(shown)}</td>'


def _settings_html(value: Any) -> str:
    """Settings as nested tables; multi-line text (the space file) verbatim."""
    if isinstance(value, dict):
        if not value:
            return "<p class=note>The study records no settings.</p>"
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{_settings_html(v)}</td></tr>" for k, v in value.items()
        )
        return f'<table class="settings">{rows}</table>'
    if isinstance(value, str) and "\n" in value:
        return f"<pre>{html.escape(value)}</pre>"
    if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list, tuple)) for v in value):
        return html.escape(", ".join(str(v) for v in value))
    if isinstance(value, (list, tuple)):
        return f"<pre>{html.escape(json.dumps(value, indent=2, default=str))}</pre>"
    return html.escape(str(value))


def _summary(data: ReportData) -> str:
    counts: dict[str, int] = {}
    for t in data.trials:
        key = _outcome(t)
        counts[key] = counts.get(key, 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    objectives = ", ".join(f"{d} {_label(n)}" for n, d in zip(data.objectives, data.directions))
    running = sum(t.state == "RUNNING" for t in data.trials)
    status = f" The study is still running ({running} trial{'s' if running > 1 else ''} in progress)." if running else ""
    return (
        f"{len(data.trials)} trials ({parts}); {len(data.front)} on the Pareto front. "
        f"Objectives: {objectives}.{status} Generated {data.generated_at}."
    )


def _plot(figures: Figures, plot_id: str, figure: dict[str, Any]) -> str:
    """Register ``figure`` to be drawn into a new div ``plot_id``; return that div."""
    figures[plot_id] = figure
    return f'<div class="plot" id="{plot_id}"></div>'


def _front_section(data: ReportData, figures: Figures) -> str:
    # The study's own objectives first: the first plot is the front as Optuna defines it.
    costs = [n for i, n in enumerate(data.objectives) if i != data.quality]
    costs += [m for m in ("macs", "params") if m not in data.objectives]
    plots = "".join(_plot(figures, f"pareto-{k}", _pareto_figure(data, name)) for k, name in enumerate(costs))
    hidden: dict[str, int] = {}
    for trial in data.trials:
        if not trial.drawn:
            reason = _why_not_drawn(trial)
            hidden[reason] = hidden.get(reason, 0) + 1
    listed = ", ".join(f"{n} {reason}" for reason, n in hidden.items())
    return (
        "<p class=note>Hover a point for its architecture; click it for the full config. "
        "Red points are the study's Pareto front: no other feasible trial is at least as good "
        "in every objective and better in one.</p>"
        f'<div class="grid">{plots}</div>'
        + (f"<p class=note>Not drawn in the objective plots: {listed} (see the table).</p>" if hidden else "")
    )


def _why_not_drawn(trial: TrialPoint) -> str:
    if trial.state == "COMPLETE":
        return "diverged" if trial.feasible else "rejected (broke a constraint)"
    return {"FAIL": "failed", "RUNNING": "still running"}.get(trial.state, trial.state.lower())


def _curves_section(data: ReportData, figures: Figures) -> str:
    diverged = any(t.record.outcome == "diverged" for t in data.trials)
    return (
        "<p class=note>Validation accuracy after each epoch. Pruned trials are dashed and end in a "
        "cross where the pruner stopped them."
        + (" Diverged trials sit below the initial view: double-click the plot to see all." if diverged else "")
        + "</p>" + _plot(figures, "curves", _curves_figure(data))
    )


def _importances_section(data: ReportData, figures: Figures) -> str:
    parts = []
    for k, importance in enumerate(data.importances):
        if importance.note:
            parts.append(
                f"<div><h3>for {html.escape(_label(importance.objective))}</h3>"
                f"<p class=note>Not available: {html.escape(importance.note)}.</p></div>"
            )
        else:
            parts.append(_plot(figures, f"importance-{k}", _importance_figure(importance)))
    return (
        "<p class=note>PED-ANOVA (Optuna's default importance evaluator) over feasible completed trials: "
        "how differently each knob is set in the best 10% of trials than in all of them. "
        "A knob near 0% barely changes that objective.</p>"
        f'<div class="grid">{"".join(parts)}</div>'
    )


def _knobs_section(data: ReportData, figures: Figures) -> str:
    shown = min(len(data.knobs), PARCOORDS_MAX_KNOBS)
    return (
        f"<p class=note>Parallel coordinates of the {shown} most important knobs (of {len(data.knobs)}) "
        "and the objectives, one line per feasible trial; drag along an axis to filter. "
        f"'{ABSENT}' on an axis marks trials whose network lacks that knob (e.g. a fourth stage).</p>"
        + _plot(figures, "parcoords", _parcoords_figure(data))
        + f"<p class=note>{html.escape(_label(data.objectives[data.quality]))} against "
        + (f"the {SLICES_MAX_KNOBS} most important knobs (of {len(data.knobs)})" if len(data.knobs) > SLICES_MAX_KNOBS else "every knob")
        + ", most important first; red points are on the front.</p>"
        + _plot(figures, "slices", _slices_figure(data))
    )


def render_report(data: ReportData) -> str:
    """The report page as one self-contained HTML string."""
    from plotly.offline import get_plotlyjs  # heavy; only needed to draw

    figures: Figures = {}
    drawn = any(t.drawn for t in data.trials)
    sections = [("front", "Pareto front", _front_section(data, figures))]
    if drawn:
        sections.append(("history", "Optimisation history", _plot(figures, "history", _history_figure(data))))
    if any(t.curve for t in data.trials):
        sections.append(("curves", "Learning curves", _curves_section(data, figures)))
    sections.append(("importances", "Which knobs matter", _importances_section(data, figures)))
    if drawn and data.knobs:
        sections.append(("knobs", "Knobs", _knobs_section(data, figures)))
    sections.append(("trials", "All trials", (
        "<p class=note>Click a column to sort, a row for the full config. ★ marks the Pareto front.</p>"
        f'<div class="table-wrap">{_table(data)}</div>'
    )))
    sections.append(("settings", "Settings", _settings_html(data.settings)))
    # Section ids get a prefix: plot divs own the bare names, and a duplicate id
    # would make plotly draw into the section instead of its div.
    nav = "".join(f'<a href="#section-{key}">{html.escape(title)}</a>' for key, title, _ in sections)
    body = "".join(
        f'<section id="section-{key}"><h2>{html.escape(title)}</h2>{content}</section>'
        for key, title, content in sections
    )
    return _PAGE.format(
        title=html.escape(f"{data.study_name}: search report"),
        heading=html.escape(data.study_name),
        summary=html.escape(_summary(data)),
        nav=nav,
        body=body,
        css=_CSS,
        plotlyjs=get_plotlyjs(),
        figures=_json_for_script(figures),
        trials=_json_for_script(_trial_details(data)),
        config=_json_for_script(_PLOT_CONFIG),
        script=_SCRIPT,
    )


def write_report(study: optuna.Study, path: str | Path | None = None) -> Path:
    """Write the report of ``study`` (default ``studies/<name>/report.html``) and return its path.

    The file is replaced atomically, so a browser reloading it while a run
    rewrites it never sees half a page.
    """
    target = Path(path) if path is not None else study_dir(study.study_name) / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    page = render_report(collect_report(study))
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".report-", suffix=".html")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(page)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


_CSS = """
:root { --ink: #222; --muted: #666; --line: #e3e3e3; --front: #d1495b; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0; background: #f6f7f9; }
header { background: white; border-bottom: 1px solid var(--line); padding: 14px 28px 0; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 10px; color: var(--muted); }
nav { position: sticky; top: 0; z-index: 5; background: white; border-bottom: 1px solid var(--line);
      padding: 8px 28px; display: flex; gap: 18px; }
nav a { color: #2b5d8a; text-decoration: none; font-weight: 600; }
main { padding: 0 28px 40px; max-width: 1500px; }
section { background: white; border: 1px solid var(--line); border-radius: 6px; margin-top: 18px; padding: 12px 18px; }
section h2 { margin: 4px 0 6px; font-size: 18px; }
section h3 { margin: 8px 0 4px; font-size: 15px; }
.note { color: var(--muted); margin: 4px 0 8px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
.plot { min-height: 200px; }
.table-wrap { max-height: 640px; overflow: auto; border: 1px solid var(--line); }
#trials { border-collapse: collapse; width: 100%; font-size: 13px; }
#trials th { position: sticky; top: 0; background: #eef1f5; cursor: pointer; text-align: left;
             padding: 6px 8px; white-space: nowrap; user-select: none; }
#trials th[data-dir="asc"]::after { content: " \\25B2"; }
#trials th[data-dir="desc"]::after { content: " \\25BC"; }
#trials td { padding: 4px 8px; border-top: 1px solid var(--line); white-space: nowrap; }
#trials td.arch { font-family: ui-monospace, monospace; font-size: 12px; max-width: 520px;
                  overflow: hidden; text-overflow: ellipsis; }
#trials td.reason { max-width: 320px; overflow: hidden; text-overflow: ellipsis; }
#trials tbody tr { cursor: pointer; }
#trials tbody tr:hover { background: #f3f6fa; }
#trials tr.front td:first-child { color: var(--front); font-weight: 700; }
#trials tr.fail td, #trials tr.pruned td { color: #777; }
#trials tr.selected { background: #fff3c4 !important; }
table.settings { border-collapse: collapse; }
table.settings th { text-align: left; vertical-align: top; padding: 4px 12px 4px 0; color: var(--muted); font-weight: 600; }
table.settings td { padding: 4px 0; }
pre { background: #f6f7f9; border: 1px solid var(--line); padding: 8px 10px; margin: 0; overflow: auto;
      font-size: 12px; max-height: 480px; }
#detail { position: fixed; top: 0; right: 0; width: 460px; max-width: 95vw; height: 100vh; overflow: auto;
          background: white; border-left: 1px solid #ccc; box-shadow: -4px 0 16px rgba(0,0,0,.12);
          padding: 14px 18px; z-index: 10; }
#detail[hidden] { display: none; }
#detail h2 { margin: 0 0 6px; font-size: 18px; }
#detail button { float: right; font-size: 14px; }
#detail pre { max-height: none; }
"""

# Page script: render every figure, wire clicks to the detail panel, sort the
# table. When all plots have rendered it sets data-rendered on <body>, with the
# number of points drawn in the first Pareto plot, so a headless browser test
# can read the outcome from the DOM.
_SCRIPT = r"""
const FIGURES = JSON.parse(document.getElementById('report-figures').textContent);
const TRIALS = JSON.parse(document.getElementById('report-trials').textContent);
const CONFIG = JSON.parse(document.getElementById('report-config').textContent);

function showTrial(number) {
  const detail = TRIALS[number];
  if (!detail) return;
  const panel = document.getElementById('detail');
  panel.querySelector('h2').textContent = 'Trial #' + number + (detail.on_front ? ' (on the Pareto front)' : '');
  panel.querySelector('pre').textContent = JSON.stringify(detail, null, 2);
  panel.hidden = false;
  document.querySelectorAll('#trials tr.selected').forEach(row => row.classList.remove('selected'));
  const row = document.querySelector('#trials tr[data-trial="' + number + '"]');
  if (row) row.classList.add('selected');
}

function sortBy(th) {
  const table = th.closest('table');
  const column = Array.from(th.parentNode.children).indexOf(th);
  const direction = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  table.querySelectorAll('th').forEach(other => delete other.dataset.dir);
  th.dataset.dir = direction;
  const numeric = th.dataset.type === 'num';
  const sign = direction === 'asc' ? 1 : -1;
  const key = row => row.cells[column].dataset.v;
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === '' || y === '') return (x === '') - (y === '');  // blanks last either way
    return sign * (numeric ? Number(x) - Number(y) : x.localeCompare(y));
  });
  table.tBodies[0].append(...rows);
}

function frontPointsDrawn(gd) {
  const index = gd.data.findIndex(trace => trace.meta === 'front');
  const groups = gd.querySelectorAll('.scatterlayer .trace');
  if (index < 0 || !groups[index]) return 0;
  return groups[index].querySelectorAll('path.point').length;
}

document.querySelectorAll('#trials th').forEach(th => th.addEventListener('click', () => sortBy(th)));
document.querySelector('#trials tbody').addEventListener('click', event => {
  const row = event.target.closest('tr');
  if (row) showTrial(Number(row.dataset.trial));
});
document.querySelector('#detail button').addEventListener('click', () => { document.getElementById('detail').hidden = true; });

const started = performance.now();
Promise.all(Object.entries(FIGURES).map(([id, figure]) =>
  Plotly.newPlot(id, figure.data, figure.layout, CONFIG).then(gd => {
    gd.on('plotly_click', event => {
      const number = event.points && event.points[0] && event.points[0].customdata;
      if (number !== undefined && number !== null) showTrial(number);
    });
    return gd;
  })
)).then(() => {
  const front = document.getElementById('pareto-0');
  document.body.dataset.frontPoints = front ? frontPointsDrawn(front) : 0;
  document.body.dataset.frontTrials = front ? (front.data.find(t => t.meta === 'front') || {customdata: []}).customdata.join(',') : '';
  document.body.dataset.renderMs = Math.round(performance.now() - started);
  document.body.dataset.rendered = 'true';
}).catch(error => {
  document.body.dataset.renderError = String(error);
  console.error(error);
});
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>
<script>{plotlyjs}</script>
</head>
<body>
<header><h1>{heading}</h1><p>{summary}</p></header>
<nav>{nav}</nav>
<main>{body}</main>
<aside id="detail" hidden><button type="button">close</button><h2></h2><pre></pre></aside>
<script type="application/json" id="report-figures">{figures}</script>
<script type="application/json" id="report-trials">{trials}</script>
<script type="application/json" id="report-config">{config}</script>
<script>{script}</script>
</body>
</html>
"""
