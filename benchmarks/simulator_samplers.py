"""The samplers compared on the simulator: settings, runs cached per (setting, trials, seed), summary, figure, table.

Each setting is a sampler and whether the distinct-trials rule is on. The
defaults are the toolkit's own (``search.samplers.SAMPLERS``); a variant
changes one option the registry does not expose, constructed with Optuna
directly. A run is a simulated search of ``trials`` counted trials with one
seed (``simulator.run_simulated``); its hypervolume after every counted trial
is cached in ``runs.json`` the moment it ends, so a killed comparison resumes.
The summary gives, per setting and trial count, the mean hypervolume at 25%,
50% and 100% of the trials with its 95% interval across seeds (Student's t
on the mean) and the seeds' own 2.5-97.5% spread.

The hypervolume is that of (validation accuracy up, log10 MACs down) from the
fixed reference point ``REFERENCE`` (accuracy 0.5, the space's MACs limit of
60 M), over the feasible trials, scored three ways (``simulator.hypervolume_curve``):
``observed``, the accuracies the search recorded, noise included; ``true``, the
noise-free accuracies of every architecture it evaluated; ``reported``, the
noise-free accuracies of the front it reports, what a user retraining that
front would find.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from intervals import t_half_width
from scipy import stats
from simulator import SCORES, Simulator, hypervolume_curve, run_simulated

from search.execution.distinct import REPEATS_BEFORE_FALLBACK
from search.samplers import SAMPLERS, SamplerContext, SamplerFactory, startup_trials

__all__ = [
    "CHECKPOINTS",
    "REFERENCE",
    "SETTINGS",
    "Setting",
    "draw",
    "markdown_table",
    "run_all",
    "summarise",
    "summarise_warm_starts",
    "warm_start_run",
]

REFERENCE = (0.5, 60e6)  # (accuracy, MACs): as benchmarks/search_efficiency.py, on log10 MACs
CHECKPOINTS = (0.25, 0.5, 1.0)  # shares of the trials at which the hypervolume is reported
PATIENCE = (
    REPEATS_BEFORE_FALLBACK  # repeats in a row before the distinct-trials rule falls back to random (the toolkit's)
)


@dataclasses.dataclass(frozen=True)
class Setting:
    """A sampler configuration and the run rule it is compared under."""

    name: str
    method: str  # the registry's name: tpe, nsga2, random, gp
    description: str
    make: SamplerFactory  # as the registry's: told the space, the seed and the trials
    distinct: bool = False
    patience: int = PATIENCE


def _default(kind: str) -> SamplerFactory:
    return SAMPLERS[kind]


def _tpe(**options: Any) -> SamplerFactory:
    """TPE as the toolkit builds it, with ``options`` changed."""

    def make(context: SamplerContext) -> optuna.samplers.BaseSampler:
        settings = {"multivariate": True, "constant_liar": True, "n_startup_trials": startup_trials(context.trials)}
        return optuna.samplers.TPESampler(seed=context.seed, **(settings | options))

    return make


def _gamma(share: float) -> Callable[[int], int]:
    """TPE's split of the trials into good and bad: Optuna's default is ``min(ceil(0.1 n), 25)``."""
    return lambda n: min(math.ceil(share * n), 25)


def _nsga2(population: int) -> SamplerFactory:
    return lambda context: optuna.samplers.NSGAIISampler(seed=context.seed, population_size=population)


def _settings() -> dict[str, Setting]:
    group = dict(multivariate=True, group=True)
    table = [
        Setting("tpe", "tpe", "the default: search.samplers.SAMPLERS['tpe']", _default("tpe")),
        Setting("tpe startup=3", "tpe", "3 start-up trials", _tpe(n_startup_trials=3)),
        Setting("tpe startup=10", "tpe", "10 start-up trials (Optuna's default)", _tpe(n_startup_trials=10)),
        Setting("tpe startup=25", "tpe", "25 start-up trials", _tpe(n_startup_trials=25)),
        Setting("tpe univariate", "tpe", "multivariate off", _tpe(multivariate=False)),
        Setting("tpe group", "tpe", "multivariate with group=True", _tpe(**group)),
        Setting("tpe gamma=0.25", "tpe", "gamma min(ceil(0.25 n), 25) (Optuna's: 0.1 n)", _tpe(gamma=_gamma(0.25))),
        Setting("nsga2", "nsga2", "the default: search.samplers.SAMPLERS['nsga2']", _default("nsga2")),
        Setting("nsga2 population=4", "nsga2", "population 4", _nsga2(4)),
        Setting("nsga2 population=8", "nsga2", "population 8", _nsga2(8)),
        Setting("nsga2 population=50", "nsga2", "population 50", _nsga2(50)),
        Setting("random", "random", "the default: search.samplers.SAMPLERS['random']", _default("random")),
        Setting("gp", "gp", "the default: search.samplers.SAMPLERS['gp']", _default("gp")),
    ]
    distinct = [
        dataclasses.replace(
            s, name=f"{s.name} +distinct", description=f"{s.description}; distinct trials", distinct=True
        )
        for s in table
        if s.name in ("tpe", "nsga2", "random", "gp", "tpe startup=10")
    ]
    patience = [
        dataclasses.replace(
            table[0],
            name=f"tpe +distinct patience={k}",
            description=f"the default; distinct trials, random after {k} repeats in a row",
            distinct=True,
            patience=k,
        )
        for k in (1, 5, 20)
    ]
    return {s.name: s for s in [*table, *distinct, *patience]}


SETTINGS = _settings()


# --- runs -----------------------------------------------------------------------------


def run_key(setting: str, trials: int, seed: int) -> str:
    return f"{setting}|{trials}|{seed}"


def run_one(simulator: Simulator, setting: Setting, *, trials: int, seed: int) -> dict[str, Any]:
    """One simulated search: its hypervolume curves and what its sampler proposed."""
    started = time.perf_counter()
    run = run_simulated(
        simulator,
        setting.make(SamplerContext(space=simulator.space, seed=seed, trials=trials)),
        trials=trials,
        seed=seed,
        distinct=setting.distinct,
        patience=setting.patience,
    )
    if len(run.points) < trials:
        raise RuntimeError(f"{setting.name}: {trials} trials not reached in {run.proposals} proposals")
    return {
        **{
            score: [round(v, 6) for v in hypervolume_curve(run.points, reference=REFERENCE, score=score)]
            for score in SCORES
        },
        "proposals": run.proposals,
        "repeats": run.repeats,
        "fallbacks": run.fallbacks,
        "distinct": run.distinct,
        "seconds": round(time.perf_counter() - started, 3),
    }


def run_all(
    simulator: Simulator,
    cache: dict[str, Any],
    *,
    settings: Iterable[str],
    trial_counts: Iterable[int],
    seeds: Iterable[int],
    save: Callable[[], None],
    log: Callable[[str], None],
    shard: tuple[int, int] = (0, 1),
) -> None:
    """Every missing (setting, trials, seed) run, saved as each ends.

    Seed by seed, so a stop leaves every setting with about as many seeds;
    ``shard`` (i, n) takes every n-th run from the i-th, for n processes side by side.
    """
    plan = [(n, s, t) for s in seeds for t in trial_counts for n in settings][shard[0] :: shard[1]]
    missing = [(n, s, t) for n, s, t in plan if run_key(n, t, s) not in cache["runs"]]
    for done, (name, seed, trials) in enumerate(missing, start=1):
        run = run_one(simulator, SETTINGS[name], trials=trials, seed=seed)
        cache["runs"][run_key(name, trials, seed)] = run
        save()
        log(
            f"[{done}/{len(missing)}] {name}, {trials} trials, seed {seed}: hypervolume {run['observed'][-1]:.4f} "
            f"({run['distinct']} architectures, {run['repeats']} repeats) in {run['seconds']:.1f} s"
        )


# --- the summary ----------------------------------------------------------------------


def interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean, its 95% interval (Student's t across seeds) and the seeds' 2.5-97.5% spread."""
    a = np.asarray(values, dtype=float)
    mean = float(a.mean())
    half = t_half_width(a)
    return {
        "mean": mean,
        "ci95": [mean - half, mean + half],
        "spread95": [float(np.percentile(a, 2.5)), float(np.percentile(a, 97.5))],
        "seeds": len(a),
    }


def summarise(cache: dict[str, Any], *, baseline: str = "tpe") -> dict[str, Any]:
    """Per trial count and setting: hypervolume at each checkpoint, and the difference from ``baseline`` at the end."""
    grouped: dict[int, dict[str, dict[int, dict[str, Any]]]] = {}
    for key, run in cache["runs"].items():
        name, trials, seed = key.split("|")
        grouped.setdefault(int(trials), {}).setdefault(name, {})[int(seed)] = run
    summary: dict[str, Any] = {}
    for trials, by_setting in sorted(grouped.items()):
        rows = {}
        for name in [n for n in SETTINGS if n in by_setting]:
            runs = list(by_setting[name].values())
            row: dict[str, Any] = {"method": SETTINGS[name].method, "description": SETTINGS[name].description}
            for score in SCORES:
                row[score] = {
                    f"{round(share * 100)}%": interval([r[score][math.ceil(share * trials) - 1] for r in runs])
                    for share in CHECKPOINTS
                }
            row["mean_curve"] = [float(np.mean([r["observed"][i] for r in runs])) for i in range(trials)]
            row["distinct_architectures"] = interval([r["distinct"] for r in runs])
            row["proposals"] = float(np.mean([r["proposals"] for r in runs]))
            row["fallbacks"] = float(np.mean([r["fallbacks"] for r in runs]))
            row["seconds_per_run"] = float(np.mean([r["seconds"] for r in runs]))
            if baseline in by_setting and name != baseline:
                row["minus_baseline_at_100%"] = _difference(by_setting[name], by_setting[baseline])
            rows[name] = row
        summary[str(trials)] = rows
    return summary


def _difference(runs: dict[int, dict[str, Any]], baseline: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean final hypervolume minus the baseline's over the seeds both ran, with the 95% interval and
    p-value of the paired t-test: a seed gives both settings the same first random trials and the
    same noise stream, so pairing removes that share of the spread."""
    seeds = sorted(set(runs) & set(baseline))
    out: dict[str, Any] = {"seeds": len(seeds)}
    for score in SCORES:
        d = np.array([runs[s][score][-1] - baseline[s][score][-1] for s in seeds])
        diff = float(d.mean())
        spread = float(d.std(ddof=1)) if len(d) > 1 else math.nan
        if len(d) < 2 or spread == 0:
            out[score] = {"difference": diff, "ci95": [diff, diff], "p_value": 1.0 if diff == 0 else 0.0}
            continue
        half = t_half_width(d)
        p = float(stats.ttest_rel([runs[s][score][-1] for s in seeds], [baseline[s][score][-1] for s in seeds]).pvalue)
        out[score] = {"difference": diff, "ci95": [diff - half, diff + half], "p_value": p}
    return out


def markdown_table(
    results: dict[str, Any],
    *,
    score: str = "observed",
    settings: Sequence[str] | None = None,
    trials: Sequence[int] | None = None,
) -> str:
    """The comparison as a Markdown table: mean hypervolume [95% interval] at 25/50/100% of the trials;
    only ``settings`` and ``trials`` where given (the README's short table)."""
    lines = [
        f"Hypervolume ({score} accuracy x log10 MACs, reference accuracy {results['reference']['accuracy']} and "
        f"{results['reference']['macs']:.0e} MACs), mean [95% interval] over seeds.",
        "",
        "| setting | trials | seeds | 25% | 50% | 100% | distinct architectures | minus `tpe` at 100%, paired by seed |",
        "|---|---:|---:|---|---|---|---:|---|",
    ]
    for count, rows in results["summary"].items():
        if trials is not None and int(count) not in trials:
            continue
        for name, row in rows.items():
            if settings is not None and name not in settings:
                continue
            cells = [_cell(row[score][f"{round(share * 100)}%"]) for share in CHECKPOINTS]
            diff = row.get("minus_baseline_at_100%", {}).get(score)
            versus = (
                "" if diff is None else f"{diff['difference']:+.4f} [{diff['ci95'][0]:+.4f}, {diff['ci95'][1]:+.4f}]"
            )
            seeds = row[score]["100%"]["seeds"]
            distinct = row["distinct_architectures"]["mean"]
            lines.append(f"| {name} | {count} | {seeds} | {' | '.join(cells)} | {distinct:.1f} | {versus} |")
    return "\n".join(lines) + "\n"


def _cell(entry: dict[str, Any]) -> str:
    low, high = entry["ci95"]
    return f"{entry['mean']:.4f} [{low:.4f}, {high:.4f}]"


def draw(results: dict[str, Any], path: Path) -> None:
    """Mean hypervolume against counted trials, one line per setting, one panel per trial count."""
    from plotly.subplots import make_subplots

    counts = list(results["summary"])
    figure = make_subplots(rows=1, cols=len(counts), subplot_titles=[f"{c} trials" for c in counts])
    for column, trials in enumerate(counts, start=1):
        for name, row in results["summary"][trials].items():
            figure.add_scatter(
                x=list(range(1, int(trials) + 1)),
                y=row["mean_curve"],
                mode="lines",
                name=name,
                legendgroup=name,
                showlegend=column == 1,
                line={"dash": "dot" if SETTINGS[name].distinct else "solid"},
                row=1,
                col=column,
            )
    reference = results["reference"]
    figure.update_layout(
        title=f"Hypervolume against trials on the simulator (mean over seeds; reference accuracy "
        f"{reference['accuracy']}, {reference['macs']:.0e} MACs; dotted: distinct trials)",
        yaxis_title="hypervolume (accuracy x log10 MACs)",
    )
    figure.update_xaxes(title_text="trials counted")
    figure.write_html(path, include_plotlyjs="cdn")


# --- warm starts ----------------------------------------------------------------------

WARM_SOURCE_SEED = 10_000  # the source study of seed s is the same setting's search with seed s + this


def warm_start_run(simulator: Simulator, setting: Setting, *, trials: int, seed: int) -> dict[str, Any]:
    """A cold search, and the same search warm-started from another seed's finished study (issue 23, item 3).

    Both evaluate ``trials`` architectures of their own; the warm one is first
    handed the source's trials as ``--warm-start`` hands them. The target is the
    cold search's final hypervolume (observed accuracies, its own trials);
    ``cold_trials`` is when the cold search first reached it, ``warm_trials``
    when the warm one did on its own trials (None: not within ``trials``).
    """
    started = time.perf_counter()

    def search(warm_start: optuna.Study | None = None, offset: int = 0) -> Any:
        return run_simulated(
            simulator,
            setting.make(SamplerContext(space=simulator.space, seed=seed + offset, trials=trials)),
            trials=trials,
            seed=seed + offset,
            distinct=setting.distinct,
            patience=setting.patience,
            warm_start=warm_start,
        )

    source = search(offset=WARM_SOURCE_SEED)
    cold, warm = search(), search(warm_start=source.study)
    cold_curve = hypervolume_curve(cold.points, reference=REFERENCE, score="observed")
    warm_curve = hypervolume_curve(warm.points, reference=REFERENCE, score="observed")
    target = cold_curve[-1]
    return {
        "target": round(target, 6),
        "cold_trials": _first_reaching(cold_curve, target),
        "warm_trials": _first_reaching(warm_curve, target),
        "warm_final": round(warm_curve[-1], 6),
        "handed_over": len(source.study.trials),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _first_reaching(curve: Sequence[float], target: float) -> int | None:
    """Trials (1-based) after which ``curve`` first holds ``target`` or more (rounding aside); None if never."""
    return next((i + 1 for i, value in enumerate(curve) if value >= target - 1e-9), None)


def summarise_warm_starts(runs: Sequence[dict[str, Any]], *, trials: int) -> dict[str, Any]:
    """Trials to reach the cold searches' final hypervolume, cold against warm, over the seeds."""
    reached = [r["warm_trials"] for r in runs if r["warm_trials"] is not None]
    return {
        "seeds": len(runs),
        "trials": trials,
        "cold_trials": interval([r["cold_trials"] for r in runs]),
        "warm_reached": len(reached),
        "warm_trials_when_reached": interval(reached) if reached else None,
        "warm_trials_median": float(
            np.median([trials + 1 if t is None else t for t in (r["warm_trials"] for r in runs)])
        ),
        "cold_trials_median": float(np.median([r["cold_trials"] for r in runs])),
        "final_hypervolume": {
            "cold": interval([r["target"] for r in runs]),
            "warm": interval([r["warm_final"] for r in runs]),
        },
        "seconds_per_seed": float(np.mean([r["seconds"] for r in runs])),
    }
