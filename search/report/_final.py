"""The report's "Final front" section: ``search finalize``'s test accuracies beside the search's.

Each finalized trial is drawn twice at its MACs: its mean test accuracy after
full training (error bars: one sample standard deviation over its seeds) and
the validation accuracy the search ranked it by, joined by a line, so a
reader sees how far each moved and whether the ranking held; Spearman's rho
says it in one number. The final front is taken on the study's objectives
(``FinalResults``); it is drawn as a staircase when those are the plot's two
axes, accuracy and MACs, and marked in the table always.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from evaluation.metrics import format_metric, metric_label
from search.pareto import MIN_RANK_PAIRS
from search.post.final_results import FinalModel, FinalResults
from search.report._figures import _axis, _layout

__all__ = ["final_figure", "final_section"]

_SEARCH = "#5b7fa6"
_FINAL = "#d1495b"


def _hover(model: FinalModel) -> str:
    spread = "" if model.test_std is None else f" ± {format_metric('accuracy', model.test_std)}"
    lines = [
        f"<b>trial #{model.trial}</b>{' (on the final front)' if model.on_final_front else ''}",
        f"test accuracy: {format_metric('accuracy', model.test_mean)}{spread} over {model.seeds} seed(s)",
        f"search validation accuracy: {format_metric('accuracy', model.search_val_accuracy) or 'not recorded'}",
        f"MACs: {format_metric('macs', model.macs)}, parameters: {format_metric('params', model.params)}",
        "<i>click for the full config</i>",
    ]
    return "<br>".join(lines)


def _front_is_a_staircase(final: FinalResults) -> bool:
    """The final front is the border of the plot's attained region only when the study's objectives
    are the plot's axes (accuracy up, MACs down); elsewhere it is a set of points."""
    return {o.metric: o.direction for o in final.objectives} == {"accuracy": "maximize", "macs": "minimize"}


def final_figure(final: FinalResults) -> dict[str, Any]:
    """Mean test accuracy (± std) and search validation accuracy against MACs, the final front as a staircase
    when the study's objectives are those two."""
    models = sorted(final.models, key=lambda m: (m.macs, -m.test_mean))
    searched = [m for m in models if m.search_val_accuracy is not None]
    front = [m for m in models if m.on_final_front] if _front_is_a_staircase(final) else []
    links_x: list[float | None] = []
    links_y: list[float | None] = []
    for m in searched:
        links_x += [m.macs, m.macs, None]
        links_y += [m.search_val_accuracy, m.test_mean, None]
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": links_x,
            "y": links_y,
            "line": {"color": "#c8ced6", "width": 1, "dash": "dot"},
            "hoverinfo": "skip",
            "showlegend": False,
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "search: validation accuracy (brief training)",
            "x": [m.macs for m in searched],
            "y": [m.search_val_accuracy for m in searched],
            "customdata": [m.trial for m in searched],
            "hovertext": [_hover(m) for m in searched],
            "hovertemplate": "%{hovertext}<extra></extra>",
            "marker": {"symbol": "circle-open", "color": _SEARCH, "size": 9, "line": {"width": 2}},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": [m.macs for m in front],
            "y": [m.test_mean for m in front],
            "line": {"color": _FINAL, "width": 1.5, "shape": "hv"},
            "hoverinfo": "skip",
            "showlegend": False,
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "final: test accuracy, mean ± std over seeds",
            "meta": "final",
            "x": [m.macs for m in models],
            "y": [m.test_mean for m in models],
            "error_y": {"type": "data", "array": [m.test_std or 0.0 for m in models], "visible": True},
            "customdata": [m.trial for m in models],
            "hovertext": [_hover(m) for m in models],
            "hovertemplate": "%{hovertext}<extra></extra>",
            "marker": {"color": _FINAL, "size": 10, "line": {"color": "white", "width": 1}},
        },
    ]
    accuracies = [m.test_mean for m in models] + [m.search_val_accuracy for m in searched]
    y_axis = _axis("accuracy", accuracies)
    y_axis["title"] = {"text": "accuracy (test: full training; validation: search)"}
    layout = _layout(
        title={"text": "Final test accuracy vs MACs", "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
        xaxis=_axis("macs", [m.macs for m in models]),
        yaxis=y_axis,
        height=460,
        margin={"l": 70, "r": 20, "t": 80, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    return {"data": traces, "layout": layout}


def _ranks(values: list[float | None]) -> list[int | None]:
    """1 for the highest value, in the order given; None stays None."""
    order = sorted((v for v in values if v is not None), reverse=True)
    return [None if v is None else order.index(v) + 1 for v in values]


def _table(final: FinalResults) -> str:
    models = sorted(final.models, key=lambda m: -m.test_mean)
    search_ranks = _ranks([m.search_val_accuracy for m in models])
    head = "".join(
        f"<th>{name}</th>"
        for name in ("trial", "seeds", "test accuracy", "std", "final rank", "search val. accuracy", "search rank")
    )
    head += "<th>MACs</th><th>final front</th>"
    body = []
    for rank, (m, search_rank) in enumerate(zip(models, search_ranks), start=1):
        cells = [
            f"#{m.trial}",
            str(m.seeds),
            format_metric("accuracy", m.test_mean),
            "n/a (1 seed)" if m.test_std is None else format_metric("accuracy", m.test_std),
            str(rank),
            format_metric("accuracy", m.search_val_accuracy),
            "" if search_rank is None else str(search_rank),
            format_metric("macs", m.macs),
            "★" if m.on_final_front else "",
        ]
        body.append(f'<tr data-trial="{m.trial}">' + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="final"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def final_section(final: FinalResults, plot: Callable[[str, dict[str, Any]], str]) -> str:
    """The section's HTML; ``plot(id, figure)`` registers the figure and returns its div."""
    rho = final.rank_correlation
    objectives = html.escape(", ".join(f"{metric_label(o.metric)} ({o.direction})" for o in final.objectives))
    front = "the red staircase, ★ in the table" if _front_is_a_staircase(final) else "★ in the table"
    agreement = (
        f"Spearman's rho of the search's validation accuracy and the final test accuracy: <b>{rho:.2f}</b> "
        f"over {len(final.models)} models (1: the search ranked them as full training does)."
        if rho is not None
        else f"Spearman's rho needs at least {MIN_RANK_PAIRS} finalized models whose accuracies differ."
    )
    return (
        f"<p class=note>Trials retrained by <code>search finalize</code> on the whole training split and tested "
        f"once per seed ({html.escape(str(final.source))}). Filled points: mean test accuracy, bars one sample "
        "standard deviation over seeds; open points: the validation accuracy the search ranked them by, joined "
        f"to their final result. The final front ({front}) holds the models no other beats on the study's "
        f"objectives ({objectives}) with test accuracy in place of validation accuracy. {agreement}</p>"
        f'<div class="grid">{plot("final-front", final_figure(final))}<div class="table-wrap">{_table(final)}</div></div>'
    )
