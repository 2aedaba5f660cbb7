"""The report's plots as plotly figure dicts, drawn from a ``ReportData`` (the draw half).

Figures are JSON-ready dicts rather than ``plotly.graph_objects``: the page
embeds them as data and plotly.js draws them in the browser. A grid of small
plots takes its layout from ``plotly.subplots.make_subplots``. Axes, labels
and value formats come from the metric table, ``evaluation.metrics``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

from evaluation.metrics import METRICS, Metric, format_metric, metric_label
from search.report._data import (
    CORRELATED_COSTS,
    Correlation,
    DataPanel,
    Importance,
    ModelErrors,
    ParamAxis,
    ReportData,
    TrialPoint,
)
from search.storage.records import TrialOutcome, describe_architecture

__all__ = [
    "ABSENT",
    "PARCOORDS_MAX_KNOBS",
    "PLOT_CONFIG",
    "SLICES_MAX_KNOBS",
    "class_counts_figure",
    "confusion_figure",
    "curves_figure",
    "history_figure",
    "importance_figure",
    "parcoords_figure",
    "pareto_figure",
    "proxies_figure",
    "slices_figure",
    "spearman_figure",
]

# Knobs drawn in the parallel-coordinates plot: more axes than this overlap.
PARCOORDS_MAX_KNOBS = 10
# Knobs given a slice plot and an importance bar, the most important first: a
# space that samples every block's knobs in every trial has dozens, and a
# thousand trials in fifty slice plots would make the page sluggish.
SLICES_MAX_KNOBS = 16
_SLICE_COLUMNS = 4
IMPORTANCE_MAX_BARS = 20
# Axis label for a knob a trial lacks (a stage its network does not have);
# short, so it does not crowd the value labels beside it.
ABSENT = "–"

_GREY = "#9aa5b1"
_RUNG_LINE = {"color": _GREY, "width": 1, "dash": "dot"}
_FRONT = "#d1495b"
_PRUNED = "#edae49"
_TRAINED = "#5b7fa6"
_DIVERGED = "#7b4b94"
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_HOVERLABEL = {"bgcolor": "white", "bordercolor": "#888", "font": {"size": 12, "color": "#222"}, "align": "left"}


def _tick_format(metric: Metric | None, values: list[float]) -> str | None:
    """The metric's tick format; a percent format only for fractions (all values <= 1)."""
    if metric is None or metric.tick_format is None:
        return None
    if metric.tick_format.endswith("%") and (not values or max(values) > 1.0):
        return None
    return metric.tick_format


def _axis(name: str, values: Iterable[float | None], *, short: bool = False) -> dict[str, Any]:
    """Axis title and scale for a metric; accuracies as percentages, counts as 10M, 20M."""
    metric = METRICS.get(name)
    present = [v for v in values if v is not None and math.isfinite(v)]
    if metric is None:
        return {"title": {"text": name}}
    axis: dict[str, Any] = {"title": {"text": metric.short_axis_title if short else metric.axis_title}}
    if metric.log_axis and present and min(present) > 0:
        axis["type"] = "log"
        # Across one to three decades plotly labels every digit (7M 8M 9M...),
        # which overlap; "D2" labels only 1, 2 and 5 of each decade.
        if 0.7 <= math.log10(max(present) / min(present)) <= 3:
            axis["dtick"] = "D2"
    tick_format = _tick_format(metric, present)
    if tick_format is not None:
        axis["tickformat"] = tick_format
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


def _value(trial: TrialPoint, index: int) -> float:
    """Objective ``index`` of a drawn trial, which finished with values (``TrialPoint.drawn``)."""
    if trial.values is None:
        raise ValueError(f"trial #{trial.number} has no values to draw")
    return trial.values[index]


def _hover(data: ReportData, trial: TrialPoint) -> str:
    """The trial's numbers and architecture in words, one fact per line."""
    lines = [f"<b>trial #{trial.number}</b> ({trial.record.outcome}{', on the front' if trial.on_front else ''})"]
    for name in data.metrics:
        value = data.metric(trial, name)
        if value is not None:
            lines.append(f"{metric_label(name)}: {format_metric(name, value)}")
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


def pareto_figure(data: ReportData, x_name: str) -> dict[str, Any]:
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

    traces = [
        markers(
            others, name=f"other feasible trials ({len(others)})", marker={"color": _GREY, "size": 7, "opacity": 0.6}
        )
    ]
    # The staircase is the attained region's border only when the plot shows
    # exactly the two objectives; elsewhere the front is a set of points. With
    # y maximised the border runs right then up, with y minimised down then right.
    if len(data.objectives) == 2 and x_name in data.objectives and front:
        shape = "hv" if data.directions[data.quality] == "maximize" else "vh"
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [data.metric(t, x_name) for t in front],
                "y": [data.metric(t, y_name) for t in front],
                "line": {"color": _FRONT, "width": 1.5, "shape": shape},
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
    traces.append(
        markers(
            front,
            name=f"Pareto front ({len(front)} trials)",
            meta="front",
            marker={"color": _FRONT, "size": 10, "line": {"color": "white", "width": 1}},
        )
    )
    title = f"{metric_label(y_name)} vs {metric_label(x_name)}"
    layout = _layout(
        title={"text": title, "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
        xaxis=_axis(x_name, (data.metric(t, x_name) for t in drawn)),
        yaxis=_axis(y_name, (data.metric(t, y_name) for t in drawn)),
        height=460,
        margin={"l": 70, "r": 20, "t": 80, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    return {"data": traces, "layout": layout}


def history_figure(data: ReportData) -> dict[str, Any]:
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
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    **where,
                    "x": [n for n, _ in data.front_size_history],
                    "y": [s for _, s in data.front_size_history],
                    "line": {"color": _FRONT, "shape": "hv"},
                    "showlegend": False,
                    "hovertemplate": "after trial #%{x}: %{y} trials on the front<extra></extra>",
                }
            )
            most = max((s for _, s in data.front_size_history), default=0)
            y_axis: dict[str, Any] = {
                "title": {"text": "trials"},
                "rangemode": "tozero",
                "dtick": 1 if most <= 8 else None,
            }
        else:
            i = data.objectives.index(name)
            values = [_value(t, i) for t in drawn]
            best = max if data.directions[i] == "maximize" else min
            title = (
                f"{metric_label(name)} of each feasible trial, and the {'highest' if best is max else 'lowest'} so far"
            )
            running: list[float] = []
            for value in values:
                running.append(value if not running else best(running[-1], value))
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    **where,
                    "x": [t.number for t in drawn],
                    "y": values,
                    "customdata": [t.number for t in drawn],
                    "hovertext": [_hover(data, t) for t in drawn],
                    "hovertemplate": "%{hovertext}<extra></extra>",
                    "marker": {"color": [_FRONT if t.on_front else _GREY for t in drawn], "size": 6},
                    "name": "a trial (red: on the front)",
                    "legendgroup": "trial",
                    "showlegend": row == 0,
                }
            )
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    **where,
                    "x": [t.number for t in drawn],
                    "y": running,
                    "line": {"color": _TRAINED, "shape": "hv"},
                    "name": "best so far",
                    "legendgroup": "best",
                    "showlegend": row == 0,
                    "hoverinfo": "skip",
                }
            )
            y_axis = _axis(name, values, short=True)
        y_axis.update({"domain": [top - span, top], "anchor": f"x{axis}"})
        layout[f"yaxis{axis}"] = y_axis
        layout[f"xaxis{axis}"] = {
            "anchor": f"y{axis}",
            "matches": "x" if row else None,
            "title": {"text": "trial number"} if row == rows - 1 else None,
            "dtick": 1 if len(data.trials) <= 12 else None,  # no ticks at trial 0.5
        }
        annotations.append(
            {
                "text": f"<b>{html.escape(title)}</b>",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": top,
                "xanchor": "left",
                "yanchor": "bottom",
                "font": {"size": 13},
            }
        )
    layout["annotations"] = annotations
    # Left-aligned: the right end of the top line belongs to plotly's toolbar.
    layout["legend"] = {"orientation": "h", "yanchor": "bottom", "y": 1.0 + 36 / layout["height"], "x": 0}
    layout["margin"] = {"l": 80, "r": 20, "t": 70, "b": 60}
    return {"data": traces, "layout": _drop_none(layout)}


def curves_figure(data: ReportData) -> dict[str, Any]:
    """Validation accuracy per epoch and at each rung of every trial; pruned ones dashed, ending
    in a cross at the rung where they were stopped; the rungs are dotted vertical lines."""
    # (legend, colour, member, dash, width, end marker), drawn in this order so
    # pruned curves stay visible on top. Unfinished curves end in an open
    # circle: still running, or stopped by an error.
    groups = [
        (
            "trained",
            _TRAINED,
            lambda t: t.state == "COMPLETE" and not t.on_front and t.record.outcome is not TrialOutcome.DIVERGED,
            "solid",
            1.0,
            None,
        ),
        (
            "running, failed or diverged",
            _DIVERGED,
            lambda t: (
                t.state not in ("COMPLETE", "PRUNED") or (t.record.outcome is TrialOutcome.DIVERGED and not t.on_front)
            ),
            "dot",
            1.5,
            "circle-open",
        ),
        ("on the Pareto front", _FRONT, lambda t: t.on_front, "solid", 2.5, None),
        ("pruned: stopped early", _PRUNED, lambda t: t.state == "PRUNED", "dash", 1.5, "x-thin"),
    ]
    traces = []
    for name, color, member, dash, width, end in groups:
        trials = [t for t in data.trials if t.progress and member(t)]
        x: list[float | None] = []
        y: list[float | None] = []
        ids: list[int | None] = []
        sizes: list[int] = []
        for trial in trials:
            points = len(trial.progress)
            x += [*(p[0] for p in trial.progress), None]
            y += [*(p[1] for p in trial.progress), None]
            ids += [trial.number] * points + [None]
            # A one-point curve has no segment to draw: mark its point instead.
            last = 9 if end else 6 if points == 1 else 0
            sizes += [0] * (points - 1) + [last, 0]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": x,
                "y": y,
                "customdata": ids,
                "name": f"{name} ({len(trials)})",
                "connectgaps": False,
                "line": {"color": color, "width": width, "dash": dash},
                "marker": {"symbol": end or "circle", "size": sizes, "line": {"color": color, "width": 2}},
                "opacity": 0.9 if name != "trained" else 0.5,
                "hovertemplate": f"trial #%{{customdata}} ({name}), epoch %{{x:.3~f}}: %{{y:.2%}}<extra></extra>",
            }
        )
    y_axis = _axis("accuracy", [v for t in data.trials for _, v in t.progress])
    # Diverged runs sit at chance level; start the view at the others' range
    # (double-click the plot to see everything).
    healthy = [v for t in data.trials if t.record.outcome is not TrialOutcome.DIVERGED for _, v in t.progress]
    if healthy:
        low, high = min(healthy), max(healthy)
        pad = (high - low) * 0.05 or 0.01
        y_axis["range"] = [low - pad, high + pad]
    longest = max((t.progress[-1][0] for t in data.trials if t.progress), default=0.0)
    rungs = sorted({x for t in data.trials for x in t.rung_epochs})
    x_axis = {"title": {"text": "epoch"}, "dtick": 1 if 2 < longest <= 20 else None, "range": [0.8, longest + 0.2]}
    if rungs:
        x_axis |= {
            "title": {"text": "epochs (dotted: the rungs where the pruner decides)"},
            "range": [0, longest * 1.05],
        }
    layout = _layout(height=480, xaxis=x_axis, yaxis=y_axis)
    layout["shapes"] = [
        {"type": "line", "xref": "x", "yref": "paper", "x0": r, "x1": r, "y0": 0, "y1": 1, "line": _RUNG_LINE}
        for r in rungs
    ]
    return {"data": traces, "layout": _drop_none(layout)}


def importance_figure(importance: Importance) -> dict[str, Any]:
    ranked = list(importance.values)
    names = ranked[:IMPORTANCE_MAX_BARS][::-1]  # bars bottom-up: the biggest on top
    values = [importance.values[n] for n in names]
    shown = f" (top {len(names)} of {len(ranked)} knobs)" if len(names) < len(ranked) else ""
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": values,
                "y": names,
                "marker": {"color": _TRAINED},
                "hovertemplate": "%{y}: %{x:.1%} of the total importance<extra></extra>",
                "text": [f"{v:.0%}" for v in values],
                "textposition": "outside",
                "cliponaxis": False,
            }
        ],
        "layout": _layout(
            title={"text": f"for {metric_label(importance.objective)}{shown}", "x": 0, "xanchor": "left"},
            height=max(260, 28 * len(names) + 110),
            xaxis={"title": {"text": "share of importance (PED-ANOVA)"}, "tickformat": ".0%", "rangemode": "tozero"},
            yaxis={"automargin": True, "type": "category"},
            margin={"l": 20, "r": 40, "t": 50, "b": 60},
        ),
    }


def _knob_codes(knob: ParamAxis, values: list[Any]) -> tuple[list[float], list[float], list[str]]:
    """Plot positions for a knob's values, and the tick positions and labels.

    Categorical choices sit at 0, 1, 2, ...; log-scaled knobs at their log10,
    labelled with their value; a knob missing from a trial (a stage the network
    does not have) sits one step below, labelled ABSENT.
    """
    if knob.kind == "categorical":
        labels = [str(c) for c in knob.choices]
        codes = [float(knob.choices.index(v)) if v in knob.choices else -1.0 for v in values]
        positions = list(range(len(labels)))
        if any(c < 0 for c in codes):
            return codes, [-1.0, *positions], [ABSENT, *labels]
        return codes, [float(p) for p in positions], labels
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


def _ranked_knobs(data: ReportData) -> list[ParamAxis]:
    """Knobs by importance for the quality objective; unranked ones keep the space's order."""
    ranking = list(data.importances[data.quality].values) if data.importances else []
    order = {name: i for i, name in enumerate(ranking)}
    return sorted(data.knobs, key=lambda k: order.get(k.name, len(order)))


def parcoords_figure(data: ReportData) -> dict[str, Any]:
    """The most important knobs and the objectives as parallel axes, one line per trial."""
    trials = [t for t in data.trials if t.drawn]
    knobs = _ranked_knobs(data)[:PARCOORDS_MAX_KNOBS]
    dimensions = []
    for knob in knobs:
        codes, ticks, labels = _knob_codes(knob, [t.knobs.get(knob.name) for t in trials])
        dimensions.append(
            _drop_none(
                {
                    "label": knob.name,
                    "values": codes,
                    "tickvals": ticks,
                    "ticktext": labels,
                    "range": _span(ticks + codes, 0.0),
                }
            )
        )
    for i, name in enumerate(data.objectives):
        values = [_value(t, i) for t in trials]
        dimensions.append(
            _drop_none(
                {
                    "label": metric_label(name),
                    "values": values,
                    "tickformat": _tick_format(METRICS.get(name), values),
                }
            )
        )
    quality = [_value(t, data.quality) for t in trials]
    quality_name = data.objectives[data.quality]
    return {
        "data": [
            {
                "type": "parcoords",
                "dimensions": dimensions,
                "labelangle": -20,
                "labelside": "top",
                "domain": {"x": [0, 0.92]},  # room on the right for the colour bar
                "line": {
                    "color": quality,
                    "colorscale": "Viridis",
                    "showscale": True,
                    "colorbar": {
                        "title": {"text": metric_label(quality_name)},
                        "tickformat": _tick_format(METRICS.get(quality_name), quality),
                    },
                },
            }
        ],
        "layout": _drop_none(_layout(height=520, margin={"l": 90, "r": 60, "t": 130, "b": 40})),
    }


def _grid(titles: list[str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The layout of a grid of small plots, one per title, and each plot's (x axis, y axis) layout keys.

    ``make_subplots`` places the plots and their titles; the traces stay dicts
    (building them as graph objects would validate every point, slowly).
    """
    from plotly.subplots import make_subplots  # heavy; only needed to draw

    rows = max(1, math.ceil(len(titles) / _SLICE_COLUMNS))
    cells: list[dict[str, Any] | None] = [{} if k < len(titles) else None for k in range(rows * _SLICE_COLUMNS)]
    grid = make_subplots(
        rows=rows,
        cols=_SLICE_COLUMNS,
        specs=[cells[row * _SLICE_COLUMNS : (row + 1) * _SLICE_COLUMNS] for row in range(rows)],
        subplot_titles=[f"<b>{html.escape(title)}</b>" for title in titles],
        horizontal_spacing=0.06,
        vertical_spacing=0.9 / (rows * 4) if rows > 1 else 0.0,
    )
    layout = grid.to_plotly_json()["layout"]
    del layout["template"]  # the page's template is set by name, as in every figure
    layout.update(_layout(height=240 * rows + 80, showlegend=False, margin={"l": 70, "r": 20, "t": 40, "b": 40}))
    for annotation in layout.get("annotations", []):
        annotation["font"] = {"size": 12}
    axes = []
    for k in range(len(titles)):
        subplot = grid.get_subplot(k // _SLICE_COLUMNS + 1, k % _SLICE_COLUMNS + 1)
        axes.append((subplot.xaxis.plotly_name, subplot.yaxis.plotly_name))
    return layout, axes


def slices_figure(data: ReportData) -> dict[str, Any]:
    """The quality objective against each knob, one small plot per knob."""
    trials = [t for t in data.trials if t.drawn]
    knobs = _ranked_knobs(data)[:SLICES_MAX_KNOBS]
    y_name = data.objectives[data.quality]
    layout, axes = _grid([knob.name for knob in knobs])
    traces: list[dict[str, Any]] = []
    y_values = [_value(t, data.quality) for t in trials]
    first_y = _axis_ref(axes[0][1]) if axes else None
    for k, (knob, (x_key, y_key)) in enumerate(zip(knobs, axes)):
        # Trials without the knob (a stage their network lacks) sit at ABSENT.
        codes, ticks, labels = _knob_codes(knob, [t.knobs.get(knob.name) for t in trials])
        # Categorical and small integer knobs stack their points in columns; a
        # deterministic jitter spreads them so the density shows.
        jitter = 0.3 if knob.kind == "categorical" or (knob.kind == "int" and len(ticks) <= 13) else 0.0
        for on_front, color, size in ((False, _GREY, 5), (True, _FRONT, 7)):
            group = [(t, c) for t, c in zip(trials, codes) if t.on_front == on_front]
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "xaxis": _axis_ref(x_key),
                    "yaxis": _axis_ref(y_key),
                    "x": [c + jitter * (((t.number * 0.6180339) % 1.0) - 0.5) for t, c in group],
                    "y": [_value(t, data.quality) for t, _ in group],
                    "customdata": [t.number for t, _ in group],
                    "text": [
                        f"trial #{t.number}: {knob.name} = {t.knobs.get(knob.name, 'absent')}<br>"
                        f"{metric_label(y_name)} {format_metric(y_name, _value(t, data.quality))}"
                        for t, _ in group
                    ],
                    "hovertemplate": "%{text}<extra></extra>",
                    "marker": {"color": color, "size": size, "opacity": 0.7},
                }
            )
        layout[x_key].update(
            {
                "tickvals": ticks,
                "ticktext": labels,
                "zeroline": False,
                # every choice on the axis, even one no trial took yet, with room for the jitter
                "range": _span(ticks + codes, 0.5) if jitter else None,
            }
        )
        y_axis = _axis(y_name, y_values, short=True)
        y_axis["matches"] = first_y if k else None
        if k % _SLICE_COLUMNS:
            y_axis["title"] = None
        layout[y_key].update(y_axis)
    return {"data": traces, "layout": _drop_none(layout)}


def _rho(correlation: Correlation) -> str:
    shown = "n/a" if correlation.rho is None else f"{correlation.rho:.2f}"
    return f"ρ = {shown} (n = {len(correlation.trials)})"


def proxies_figure(data: ReportData) -> dict[str, Any]:
    """Each proxy's score at initialisation against final validation accuracy, one small plot per proxy."""
    proxies = [c for c in data.correlations if c.metric not in CORRELATED_COSTS]
    layout, axes = _grid([f"{metric_label(c.metric)}: {_rho(c)}" for c in proxies])
    traces: list[dict[str, Any]] = []
    first_y = _axis_ref(axes[0][1]) if axes else None
    for k, (correlation, (x_key, y_key)) in enumerate(zip(proxies, axes)):
        name = correlation.metric
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "xaxis": _axis_ref(x_key),
                "yaxis": _axis_ref(y_key),
                "x": list(correlation.values),
                "y": list(correlation.accuracies),
                "customdata": list(correlation.trials),
                "text": [
                    f"trial #{n}: {metric_label(name)} {format_metric(name, x)}<br>"
                    f"accuracy {format_metric('accuracy', y)}"
                    for n, x, y in zip(correlation.trials, correlation.values, correlation.accuracies)
                ],
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"color": _TRAINED, "size": 6, "opacity": 0.7},
            }
        )
        layout[x_key].update(_axis(name, correlation.values, short=True))
        y_axis = _axis("accuracy", correlation.accuracies, short=True)
        y_axis["matches"] = first_y if k else None
        if k % _SLICE_COLUMNS:
            y_axis["title"] = None
        layout[y_key].update(y_axis)
    return {"data": traces, "layout": _drop_none(layout)}


def spearman_figure(data: ReportData) -> dict[str, Any]:
    """Spearman's rho of each proxy (and of parameters and MACs) with accuracy, over the trials so far."""
    traces = []
    for correlation in data.correlations:
        cost = correlation.metric in CORRELATED_COSTS
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": list(correlation.trials),
                "y": list(correlation.running),
                "name": f"{metric_label(correlation.metric)} ({_rho(correlation)})",
                "line": {"dash": "dash" if cost else "solid", "width": 1.5 if cost else 2, "shape": "hv"},
                "hovertemplate": f"{html.escape(metric_label(correlation.metric))} after trial #%{{x}}: "
                "ρ = %{y:.2f}<extra></extra>",
            }
        )
    layout = _layout(
        height=380,
        xaxis={"title": {"text": "trial number"}},
        yaxis={"title": {"text": "Spearman's ρ with accuracy"}, "range": [-1.05, 1.05], "zeroline": True},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"l": 70, "r": 20, "t": 70, "b": 60},
    )
    return {"data": traces, "layout": layout}


_SPLIT_COLOURS = {"train": _TRAINED, "val": _PRUNED, "test": _FRONT}
_SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}


def class_counts_figure(panel: DataPanel) -> dict[str, Any]:
    """Images per class in each split, as grouped bars: a skewed class or an empty split shows at a glance."""
    traces = [
        {
            "type": "bar",
            "name": f"{_SPLIT_NAMES[split]} ({sum(counts):,})",
            "x": list(panel.classes),
            "y": list(counts),
            "marker": {"color": _SPLIT_COLOURS.get(split, _GREY)},
            "hovertemplate": f"%{{x}}: %{{y:,}} {_SPLIT_NAMES[split]} images<extra></extra>",
        }
        for split, counts in panel.counts.items()
    ]
    layout = _layout(
        title={"text": "Images per class and split", "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
        barmode="group",
        xaxis={"title": {"text": "class"}, "type": "category", "automargin": True},
        yaxis={"title": {"text": "images"}},
        height=380,
        margin={"l": 70, "r": 20, "t": 80, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    return {"data": traces, "layout": layout}


def confusion_figure(errors: ModelErrors, classes: tuple[str, ...]) -> dict[str, Any]:
    """The model's test confusion matrix: cells coloured by the share of each true class, labelled by count."""
    size = len(errors.confusion)
    names = list(classes) if len(classes) == size else [str(i) for i in range(size)]
    shares = [[n / max(1, sum(row)) for n in row] for row in errors.confusion]
    trace = {
        "type": "heatmap",
        "x": names,
        "y": names,
        "z": shares,
        "zmin": 0,
        "zmax": 1,
        "text": [[f"{n:,}" for n in row] for row in errors.confusion],
        "texttemplate": "%{text}" if size <= 20 else None,
        "colorscale": "Blues",
        "reversescale": True,  # plotly's Blues runs dark to light: empty cells light, the diagonal dark
        "colorbar": {"title": {"text": "share of the true class"}, "tickformat": ".0%"},
        "hovertemplate": "true %{y}, predicted %{x}: %{text} images (%{z:.1%} of the class)<extra></extra>",
    }
    title = (
        f"Trial #{errors.trial}: test confusion matrix ({errors.test_images:,} images"
        f"{f' over {errors.seeds} seeds' if errors.seeds > 1 else ''}, accuracy {errors.accuracy:.1%})"
    )
    layout = _layout(
        title={"text": title, "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
        xaxis={"title": {"text": "predicted class"}, "type": "category", "automargin": True},
        yaxis={"title": {"text": "true class"}, "type": "category", "autorange": "reversed", "automargin": True},
        height=max(380, 120 + 28 * size),
        margin={"l": 90, "r": 20, "t": 60, "b": 60},
    )
    return _drop_none({"data": [trace], "layout": layout})


def _axis_ref(key: str) -> str:
    """How a trace names the axis of layout key ``key``: 'xaxis2' -> 'x2'."""
    return key.replace("axis", "")


def _drop_none(value: Any) -> Any:
    """Remove None entries from nested layout dicts (plotly.js reads null as a value)."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
