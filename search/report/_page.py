"""The report page: sections, the trials table and the settings around the figures, as one HTML file.

The page template, its style sheet and its script are files beside this
module (``page.html``, ``report.css``, ``report.js``). The script draws every
figure, wires clicks to the detail panel and sorts the table. When all plots
have rendered it sets data-rendered on <body>, with the number of points drawn
in the first Pareto plot, so a headless browser test can read the outcome from
the DOM.
"""

from __future__ import annotations

import functools
import html
import json
import math
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import optuna

from evaluation.atomic import atomic_write
from evaluation.metrics import format_metric, metric_label
from search.pruners import Pruning, RungDecision
from search.report._data import ReportData, TrialPoint, collect_report
from search.report._data_section import data_section, errors_section
from search.report._figures import (
    ABSENT,
    PARCOORDS_MAX_KNOBS,
    PLOT_CONFIG,
    SLICES_MAX_KNOBS,
    curves_figure,
    history_figure,
    importance_figure,
    parcoords_figure,
    pareto_figure,
    proxies_figure,
    slices_figure,
    spearman_figure,
)
from search.report._final import final_section
from search.storage.records import TrialOutcome, describe_architecture
from search.storage.studies import study_dir

__all__ = ["render_report", "write_report"]

Figures = dict[str, dict[str, Any]]  # plot div id -> plotly figure as a JSON-ready dict
# Costs drawn against the quality objective even when the study does not
# optimise them (the issue asks for accuracy vs MACs and vs params).
PLOTTED_COSTS = ("macs", "params")


@functools.cache
def _asset(name: str) -> str:
    """A file shipped beside this module: the page template (``string.Template``), its CSS or script."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


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
    columns = [("#", "num"), ("state", "text"), ("outcome", "text")]
    columns += [(metric_label(n), "num") for n in data.metrics]
    columns += [("epochs", "num"), ("images", "num"), ("train (s)", "num"), ("reason", "text")]
    columns += [("architecture", "text")]
    head = "".join(f'<th data-type="{kind}" title="click to sort">{html.escape(name)}</th>' for name, kind in columns)
    body = []
    for t in data.trials:
        cells = [
            _cell(t.number, f"{t.number}{' ★' if t.on_front else ''}"),
            _cell(t.state, t.state.lower()),
            _cell(_outcome(t), _outcome(t)),
        ]
        for name in data.metrics:  # a pruned or failed trial still has its recorded costs
            value = data.metric(t, name)
            cells.append(_cell(value, format_metric(name, value)))
        cells.append(_cell(t.record.epochs_run, str(t.record.epochs_run)))
        cells.append(_cell(t.record.images_seen, f"{t.record.images_seen:,}"))
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
    return trial.state.lower() if trial.record.outcome is TrialOutcome.UNKNOWN else trial.record.outcome.value


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
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_settings_html(v)}</td></tr>" for k, v in value.items())
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
    objectives = ", ".join(f"{d} {metric_label(n)}" for n, d in zip(data.objectives, data.directions))
    running = sum(t.state == "RUNNING" for t in data.trials)
    status = (
        f" The study is still running ({running} trial{'s' if running > 1 else ''} in progress)." if running else ""
    )
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
    costs += [m for m in PLOTTED_COSTS if m not in data.objectives]
    plots = "".join(_plot(figures, f"pareto-{k}", pareto_figure(data, name)) for k, name in enumerate(costs))
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
        if trial.record.outcome is TrialOutcome.DIVERGED:
            return "diverged"
        return "rejected (broke a constraint)" if not trial.feasible else "without a measured value"
    return {"FAIL": "failed", "RUNNING": "still running"}.get(trial.state, trial.state.lower())


def _curves_section(data: ReportData, figures: Figures) -> str:
    diverged = any(t.record.outcome is TrialOutcome.DIVERGED for t in data.trials)
    return (
        "<p class=note>Validation accuracy after each epoch, and at each rung where the pruner judged the "
        "trial. Pruned trials are dashed and end in a cross at the rung where the pruner stopped them."
        + (" Diverged trials sit below the initial view: double-click the plot to see all." if diverged else "")
        + "</p>"
        + _plot(figures, "curves", curves_figure(data))
    )


def _halving_section(data: ReportData) -> str:
    """The pruner's decisions at each rung, and the training images each trial spent of its budget."""
    stored = data.settings.get("pruner")
    pruner = Pruning.from_settings(stored).describe() if isinstance(stored, dict) else "the pruner"
    budget = data.budget
    rows = []
    for t in data.trials:
        if not (t.decisions or t.record.images_planned):
            continue
        planned = t.record.images_planned
        share = t.record.images_seen / planned if planned else None
        decisions = "; ".join(_decision_text(d) for d in t.decisions)
        cells = [
            _cell(t.number, str(t.number)),
            _cell(t.state, t.state.lower()),
            _cell(_outcome(t), _outcome(t)),
            _cell(t.record.images_seen, f"{t.record.images_seen:,}"),
            _cell(share, "" if share is None else f"{share:.0%}"),
            _cell(decisions, decisions, css="reason"),
        ]
        rows.append(f'<tr data-trial="{t.number}">{"".join(cells)}</tr>')
    head = "".join(
        f"<th>{name}</th>" for name in ("#", "state", "outcome", "images seen", "of its budget", "rung decisions")
    )
    return (
        f"<p class=note>{html.escape(pruner[:1].upper() + pruner[1:])}. At each rung a trial continues only "
        "if its point (accuracy at the rung and its costs) ranks in the top 1/eta of the points recorded "
        "there, by non-dominated sorting (ties: crowding distance, then the earlier trial). "
        f"The {budget.trials} finished trials that trained saw {budget.images_seen:,} of the "
        f"{budget.images_planned:,} training images their budgets plan: {budget.saved:.0%} saved.</p>"
        f'<div class="table-wrap"><table class="rungs"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _decision_text(decision: RungDecision) -> str:
    verdict = "continued" if decision.continued else "stopped"
    if decision.rank is None:
        return f"rung {decision.rung} ({decision.images:,} images): {verdict}"
    return f"rung {decision.rung} ({decision.images:,} images): rank {decision.rank} of {decision.points}, {verdict}"


def _proxies_section(data: ReportData, figures: Figures) -> str:
    return (
        "<p class=note>Zero-cost proxies: each trained trial's scores of its network at initialisation, "
        "on one mini-batch, against its final validation accuracy; ρ is Spearman's rank correlation over "
        "the trials so far. Parameters and MACs (dashed) are the yardstick: a proxy is worth screening "
        "candidates with (<code>--screen</code>) only where it ranks accuracy better than they do.</p>"
        + _plot(figures, "proxies", proxies_figure(data))
        + _plot(figures, "spearman", spearman_figure(data))
    )


def _importances_section(data: ReportData, figures: Figures) -> str:
    parts = []
    for k, importance in enumerate(data.importances):
        if importance.note:
            parts.append(
                f"<div><h3>for {html.escape(metric_label(importance.objective))}</h3>"
                f"<p class=note>Not available: {html.escape(importance.note)}.</p></div>"
            )
        else:
            parts.append(_plot(figures, f"importance-{k}", importance_figure(importance)))
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
        + _plot(figures, "parcoords", parcoords_figure(data))
        + f"<p class=note>{html.escape(metric_label(data.objectives[data.quality]))} against "
        + (
            f"the {SLICES_MAX_KNOBS} most important knobs (of {len(data.knobs)})"
            if len(data.knobs) > SLICES_MAX_KNOBS
            else "every knob"
        )
        + ", most important first; red points are on the front.</p>"
        + _plot(figures, "slices", slices_figure(data))
    )


def render_report(data: ReportData) -> str:
    """The report page as one self-contained HTML string."""
    from plotly.offline import get_plotlyjs  # heavy; only needed to draw

    figures: Figures = {}
    drawn = any(t.drawn for t in data.trials)
    sections = [("front", "Pareto front", _front_section(data, figures))]
    if data.final is not None:
        sections.append(("final", "Final front", final_section(data.final, functools.partial(_plot, figures))))
    if data.errors:
        errors = errors_section(data.errors, data.data, functools.partial(_plot, figures))
        sections.append(("errors", "Test errors", errors))
    if drawn:
        sections.append(("history", "Optimisation history", _plot(figures, "history", history_figure(data))))
    if any(t.progress for t in data.trials):
        sections.append(("curves", "Learning curves", _curves_section(data, figures)))
    if any(t.decisions for t in data.trials):
        sections.append(("halving", "Successive halving", _halving_section(data)))
    if any(c.trials for c in data.correlations):
        sections.append(("proxies", "Zero-cost proxies", _proxies_section(data, figures)))
    sections.append(("importances", "Which knobs matter", _importances_section(data, figures)))
    if drawn and data.knobs:
        sections.append(("knobs", "Knobs", _knobs_section(data, figures)))
    if data.data is not None:
        sections.append(("data", "Data", data_section(data.data, functools.partial(_plot, figures))))
    sections.append(
        (
            "trials",
            "All trials",
            (
                "<p class=note>Click a column to sort, a row for the full config. ★ marks the Pareto front.</p>"
                f'<div class="table-wrap">{_table(data)}</div>'
            ),
        )
    )
    sections.append(("settings", "Settings", _settings_html(data.settings)))
    # Section ids get a prefix: plot divs own the bare names, and a duplicate id
    # would make plotly draw into the section instead of its div.
    nav = "".join(f'<a href="#section-{key}">{html.escape(title)}</a>' for key, title, _ in sections)
    body = "".join(
        f'<section id="section-{key}"><h2>{html.escape(title)}</h2>{content}</section>'
        for key, title, content in sections
    )
    return Template(_asset("page.html")).substitute(
        title=html.escape(f"{data.study_name}: search report"),
        heading=html.escape(data.study_name),
        summary=html.escape(_summary(data)),
        nav=nav,
        body=body,
        css=_asset("report.css"),
        plotlyjs=get_plotlyjs(),
        figures=_json_for_script(figures),
        trials=_json_for_script(_trial_details(data)),
        config=_json_for_script(PLOT_CONFIG),
        script=_asset("report.js"),
    )


def write_report(study: optuna.Study, path: str | Path | None = None) -> Path:
    """Write the report of ``study`` (default ``studies/<name>/report.html``) and return its path.

    The file is replaced atomically, so a browser reloading it while a run
    rewrites it never sees half a page.
    """
    target = Path(path) if path is not None else study_dir(study.study_name) / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    page = render_report(collect_report(study))
    with atomic_write(target) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return target
