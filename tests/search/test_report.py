"""The report: its data object first, then the page drawn from it."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from synthetic_study import make_study
from timing import cpu_seconds

from evaluation.metrics import METRICS
from evaluation.proxies import PROXIES
from search.cli import main
from search.pareto import front_trials, trials_frame
from search.report import IMPORTANCE_MIN_TRIALS, ReportData, collect_report, render_report, write_report

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    return make_study(150, seed=1)


@pytest.fixture(scope="module")
def data(study: optuna.Study) -> ReportData:
    return collect_report(study)


@pytest.fixture(scope="module")
def page(data: ReportData) -> str:
    return render_report(data)


def _figures(page: str) -> dict:
    blob = re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', page, re.S)
    assert blob, "the page embeds its figures as JSON"
    return json.loads(blob.group(1).replace("<\\/", "</"))


def test_collect_report_front_matches_study(study: optuna.Study, data: ReportData) -> None:
    expected = [t.number for t in front_trials(study)]
    shown_by_show = sorted(trials_frame(study).query("front")["number"].tolist())
    assert list(data.front) == expected, f"report front {data.front} != front_trials {expected}"
    assert sorted(data.front) == shown_by_show, "report front differs from the front `search show` prints"
    assert {t.number for t in data.trials if t.on_front} == set(expected), "on_front flags disagree with the front"


def test_collect_report_front_size_history_ends_at_front_size(data: ReportData) -> None:
    numbers = [n for n, _ in data.front_size_history]
    assert numbers == [t.number for t in data.trials], "one history entry per trial, in trial order"
    assert data.front_size_history[-1][1] == len(data.front), (
        f"running front size ends at {data.front_size_history[-1][1]}, the front has {len(data.front)}"
    )


def test_collect_report_keeps_every_outcome(data: ReportData) -> None:
    outcomes = {t.record.outcome for t in data.trials}
    assert {"trained", "rejected", "pruned", "failed"} <= outcomes, f"synthetic study lacks outcomes: {outcomes}"
    rejected = [t for t in data.trials if t.record.outcome == "rejected"]
    assert all(not t.feasible and not t.drawn for t in rejected), "rejected trials are infeasible and not drawn"
    pruned = [t for t in data.trials if t.state == "PRUNED"]
    assert all(t.curve for t in pruned), "pruned trials keep their partial learning curve"
    assert all(len(t.curve) < 6 for t in pruned), "a pruned trial's curve stops before the last epoch"


def test_collect_report_knobs_are_the_union_of_trial_params(study: optuna.Study, data: ReportData) -> None:
    names = {k.name for k in data.knobs}
    expected = {p for t in study.get_trials(deepcopy=False) for p in t.params}
    assert names == expected, f"knobs {sorted(names ^ expected)} differ from the trials' params"
    pooling = next(k for k in data.knobs if k.name == "transition.pooling")
    assert pooling.kind == "categorical" and set(pooling.choices) == {"avg", "max"}, f"pooling knob: {pooling}"


def test_collect_report_importances_per_objective(data: ReportData) -> None:
    assert [i.objective for i in data.importances] == ["accuracy", "macs"], "one importance per objective"
    for importance in data.importances:
        assert importance.note is None, f"{importance.objective}: unexpected note {importance.note!r}"
        assert sum(importance.values.values()) == pytest.approx(1.0), "importances are shares summing to 1"
        assert "transition.pooling" in importance.values, "every knob is assessed, pooling included"


def test_collect_report_importances_note_with_few_trials() -> None:
    data = collect_report(make_study(IMPORTANCE_MIN_TRIALS - 4, seed=2))
    for importance in data.importances:
        assert importance.values == {} and importance.note, f"few trials need a note, got {importance}"
    assert "Not available: needs at least" in render_report(data), "the note shows on the page"


def test_collect_report_empty_study_renders() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    page = render_report(collect_report(study))
    assert "0 trials" in page and "The study records no settings" in page, "an empty study gives an empty report"


def test_collect_report_sees_running_trials() -> None:
    running = make_study(30, seed=3)
    running.ask()  # a trial in progress, as while `search run` goes on
    data = collect_report(running)
    assert data.trials[-1].state == "RUNNING", "the running trial is listed"
    assert "The study is still running (1 trial in progress)" in render_report(data), "the summary says so"


def test_render_report_front_plot_points_are_the_front(data: ReportData, page: str) -> None:
    front_trace = next(t for t in _figures(page)["pareto-0"]["data"] if t.get("meta") == "front")
    assert sorted(front_trace["customdata"]) == sorted(data.front), "the first Pareto plot draws exactly the front"
    assert all("stage 1:" in text for text in front_trace["hovertext"]), "hovers describe the architecture"


def test_render_report_is_self_contained(page: str) -> None:
    from plotly.offline import get_plotlyjs

    plotlyjs = get_plotlyjs()
    assert page.count(plotlyjs) == 1, "plotly.js is embedded, once"
    ours = page.replace(plotlyjs, "")  # the bundle names map tiles' URLs it fetches only for maps
    assert not re.search(r"<script[^>]+\bsrc=", ours), "no external scripts"
    assert not re.search(r"<link\b", ours), "no external stylesheets"
    assert not re.search(r"""\b(?:src|href)=["']?(?:https?:)?//""", ours), "no network URLs in src or href"


def test_render_report_has_every_section(data: ReportData, page: str) -> None:
    figures = _figures(page)
    expected = {"pareto-0", "pareto-1", "history", "curves", "importance-0", "importance-1", "parcoords", "slices"}
    assert expected <= set(figures), f"missing figures: {sorted(expected - set(figures))}"
    for section in (
        "Pareto front",
        "Optimisation history",
        "Learning curves",
        "Which knobs matter",
        "All trials",
        "Settings",
    ):
        assert f">{section}</h2>" in page, f"section {section!r} missing"
    assert page.count("<tr data-trial=") == len(data.trials), "the table lists every trial"
    assert "stages:\n  count: [2, 4]" in page, "the space file is shown verbatim"
    pruned = next(t for t in figures["curves"]["data"] if t["name"].startswith("pruned"))
    assert pruned["line"]["dash"] == "dash", "pruned curves are drawn dashed"


def test_render_report_axes_are_labelled(page: str) -> None:
    figures = _figures(page)
    labelled = {
        "pareto-0": ["xaxis", "yaxis"],
        "pareto-1": ["xaxis", "yaxis"],
        "curves": ["xaxis", "yaxis"],
        "history": ["yaxis", "yaxis2", "yaxis3", "xaxis3"],
        "importance-0": ["xaxis"],
        "slices": ["yaxis"],
    }
    for plot_id, axes in labelled.items():
        for axis in axes:
            title = figures[plot_id]["layout"][axis].get("title", {}).get("text")
            assert title, f"{plot_id}: {axis} has no title"
    assert "MACs" in figures["pareto-0"]["layout"]["xaxis"]["title"]["text"], "the MACs axis says MACs"
    assert figures["pareto-0"]["layout"]["yaxis"]["tickformat"].endswith("%"), "accuracy reads as a percentage"


def test_write_report_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(tmp_path))
    study = make_study(12, seed=4, storage=f"sqlite:///{tmp_path / 'study.db'}", name="tiny")
    path = write_report(study)
    assert path == tmp_path / "tiny" / "report.html", f"report written to {path}"
    assert path.read_text().startswith("<!DOCTYPE html>"), "a whole HTML page"
    assert not list(path.parent.glob(".report-*")), "no temporary file is left behind"


def test_report_command_writes_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(tmp_path))
    (tmp_path / "cli").mkdir()
    make_study(12, seed=5, storage=f"sqlite:///{tmp_path / 'cli' / 'study.db'}", name="cli")
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["report", "cli", "--out", str(out)]) == 0, "report exits 0"
    assert out.is_file() and str(out) in capsys.readouterr().out, "the command writes --out and says where"
    assert main(["report", "missing"]) == 2, "an unknown study is a user error"
    assert "no study 'missing'" in capsys.readouterr().err, "the error names the study"


def test_write_report_thousand_trials_costs_at_most_thirty_reports_of_a_hundred(tmp_path: Path) -> None:
    """Timed against a 100-trial report written in the same test: ten times the trials may cost 30
    times as much (linear is 10, quadratic 100; measured 6 to 9)."""
    study = make_study(1000, seed=6)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) > 500, "most synthetic trials complete"
    small = make_study(100, seed=6)
    baseline = cpu_seconds(lambda: write_report(small, tmp_path / "small.html"), rounds=2)  # the first pays set-up
    seconds = cpu_seconds(lambda: write_report(study, tmp_path / "report.html"), rounds=1)
    path = tmp_path / "report.html"
    print(
        f"report of 1000 trials written in {seconds:.1f} s of CPU, {path.stat().st_size / 1e6:.1f} MB; "
        f"100 trials in {baseline:.2f} s"
    )
    assert seconds < 30 * baseline, (
        f"report generation took {seconds:.1f} s of CPU for 1000 trials, {baseline:.2f} s for 100: "
        f"{seconds / baseline:.0f} times as much, over 30"
    )


def test_collect_report_importances_note_when_no_knob_varies() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    pooling = optuna.distributions.CategoricalDistribution(["avg", "max"])
    study.add_trials(
        [
            optuna.trial.create_trial(
                values=[0.8 + i / 100, 1e6 * (i + 1)],
                params={"transition.pooling": "avg"},
                distributions={"transition.pooling": pooling},
            )
            for i in range(IMPORTANCE_MIN_TRIALS + 10)
        ]
    )
    for importance in collect_report(study).importances:
        assert importance.values == {} and "single value" in (importance.note or ""), (
            f"a knob that never varies cannot matter: {importance}"
        )


def test_knob_codes_place_absent_below_and_log_knobs_by_decade() -> None:
    from search.report import ABSENT, ParamAxis, _knob_codes

    codes, ticks, labels = _knob_codes(ParamAxis("stage4.depth", "int"), [1, 4, None])
    assert codes[2] < min(codes[:2]) and labels[0] == ABSENT and ticks[0] == codes[2], "absent sits below, labelled"
    codes, _, labels = _knob_codes(ParamAxis("lr", "float", log=True), [1e-3, 1e-1])
    assert codes == [-3.0, -1.0] and labels[0] == "0.001" and labels[-1] == "0.1", f"log knob: {codes} {labels}"
    codes, _, labels = _knob_codes(ParamAxis("transition.pooling", "categorical", ("avg", "max")), ["max", "avg"])
    assert codes == [1.0, 0.0] and labels == ["avg", "max"], f"categorical codes follow the choices: {codes}"


def test_render_report_survives_values_that_are_not_finite() -> None:
    """A missing latency ranks worst as inf; JSON has no Infinity, and the table must not break."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "latency_ms"])
    study.add_trials(
        [
            optuna.trial.create_trial(
                values=[0.8, latency],
                user_attrs={"outcome": "trained", "latency_ms": latency, "val_accuracy_per_epoch": [0.8]},
            )
            for latency in (2.0, math.inf, 3.0)
        ]
    )
    data = collect_report(study)
    assert [t.drawn for t in data.trials] == [True, False, True], "a trial with an infinite value is not drawn"
    page = render_report(data)
    figures = _figures(page)  # json.loads rejects nothing; the page's own JSON is strict
    assert "Infinity" not in page.split('id="report-figures">')[1].split("</script>")[0], "figures hold no Infinity"
    assert sorted(figures["pareto-0"]["data"][-1]["customdata"]) == [0], "the front is drawn without the inf trial"
    row = re.search(r'<tr data-trial="1".*?</tr>', page, re.S)
    assert row and 'data-v="">n/a</td>' in row.group(0), f"the table shows n/a: {row and row.group(0)[:300]}"


@pytest.fixture(scope="module")
def with_proxies() -> ReportData:
    return collect_report(make_study(40, seed=7, proxies=True))


def test_collect_report_correlates_each_proxy_and_each_cost_with_accuracy(with_proxies, data) -> None:
    found = {c.metric: c for c in with_proxies.correlations}
    assert list(found) == [*PROXIES, "params", "macs"], list(found)
    accuracy = METRICS["accuracy"]
    trained = tuple(t.number for t in with_proxies.trials if t.record.proxies and t.record.value(accuracy) is not None)
    assert found["naswot"].trials == trained and len(trained) > 10, "every trained trial with proxies, in order"
    assert found["naswot"].running[:2] == (None, None), "no rank correlation of fewer than three trials"
    assert found["naswot"].rho == pytest.approx(1.0), "NASWOT rises with accuracy in this study"
    assert found["grad_norm"].rho == pytest.approx(-1.0), "grad_norm falls with it"
    assert found["synflow"].running == found["macs"].running, "synflow is the MACs here: the same ranks"
    assert found["snip"].trials == () and found["snip"].rho is None, "a proxy that always failed has no points"
    assert data.correlations == (), "a study without proxies has none"


def test_render_report_proxies_section(with_proxies, page) -> None:
    assert ">Zero-cost proxies</h2>" not in page, "a study without proxies has no such section"
    shown = render_report(with_proxies)
    figures = _figures(shown)
    assert ">Zero-cost proxies</h2>" in shown and {"proxies", "spearman"} <= set(figures), sorted(figures)
    titles = [a["text"] for a in figures["proxies"]["layout"]["annotations"]]
    assert any(t.startswith("<b>NASWOT: ρ = 1.00 (n = ") for t in titles), titles
    lines = {t["name"].split(" (")[0]: t for t in figures["spearman"]["data"]}
    assert set(lines) == {
        *("synflow", "NASWOT", "grad norm", "SNIP", "MeCo", "ZiCo"),
        *("AZ expressivity", "AZ progressivity", "AZ trainability", "parameters", "MACs"),
    }, sorted(lines)
    assert lines["MACs"]["line"]["dash"] == "dash" and lines["NASWOT"]["line"]["dash"] == "solid", "costs dashed"
