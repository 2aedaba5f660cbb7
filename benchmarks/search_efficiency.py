"""Search quality per CPU-hour: methods at matched wall-clock budgets, fronts retrained at one common budget.

Each method searches the default space (``densenet_hybrid``) on Fashion-MNIST
for ``--minutes`` of wall time (no trial starts after it), once per seed, each
in its own journal study under ``benchmarks/results/search_efficiency/``
(beside the JSON file):

- ``tpe``: today's search (multivariate TPE, every trial trained to the end);
- ``nsga2`` and ``gp`` (Optuna's GPSampler), every trial to the end;
- ``tpe_asha``: TPE with multi-objective asynchronous successive halving, on
  the whole training split per trial (rungs at a ninth and a third of it);
- ``best_asha_screen``: the best of the samplers above (``--best``) with
  MO-ASHA and zero-cost screening;
- ``tpe_copies``: the search before distinct trials (commit ``b0848e8``), where
  a proposal of an architecture already trained took a trial slot. This code
  cannot run it; it only scores its journals, which that commit's own
  ``run_method`` records under this name (``benchmarks/search_at_commit.py``),
  beside ``tpe`` runs of this code at the same time.

Fronts found at different fidelities are not comparable, so at each of a few
points in time the method's front so far is cut to the ``--keep``
architectures that best stand for it (the subset of the Pareto front with the
largest hypervolume of the search's own accuracies; keeping the most accurate
would drop the cheap end of a front that grew, and the score would fall as the
search found more) and each is retrained at one common budget
(``--retrain-epochs`` on ``--retrain-fraction`` of the training split, seed
0; one retraining per architecture, shared by every method that found it).
The hypervolume is computed on those accuracies against log10 MACs,
maximising accuracy and minimising log MACs, from the fixed reference point
``REFERENCE`` (accuracy 0.5, the space's MACs limit of 60 M): the area of the
(accuracy, log MACs) plane that the points dominate.

Finished runs and retrainings are cached in the JSON file as they end, and a
killed run resumes with what is left of its budget. Processes side by side
share the file (each takes its own methods or seeds); with ``--threads 1``
each, two of them share 2 cores, and the wall-clock budget is then one
thread's. Runs compare only at the same settings, so a cache of others is
refused:

    python benchmarks/search_efficiency.py --minutes 30 --seeds 0 1
    python benchmarks/search_efficiency.py --threads 1 --methods tpe --seeds 0 &
    python benchmarks/search_efficiency.py --threads 1 --methods tpe_asha --seeds 0
    python benchmarks/search_efficiency.py --summary-only

``--paired A B`` adds to the summary the seed-by-seed difference of A's final
hypervolume from B's, with its 95% interval (Student's t).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
import torch
from intervals import t_half_width
from optuna.trial import FrozenTrial

from evaluation import Architecture, build_model, train
from evaluation.data import load_dataset
from evaluation.errors import differences
from search import Budget, Pruning, SamplerSpec, Screening, StudySpec, pareto, run_search
from search.pruners import images_saved_fraction
from search.storage.records import TrialRecord
from search.storage.studies import busy_seconds, make_storage
from spaces import Objective, load_space

from result_cache import journal_to_read, load_cache, merge_into, pack_journal, packed, save_cache, unpacked_journal

HERE = Path(__file__).resolve().parent / "results"
RESULTS = HERE / "search_efficiency.json"
SPACE = "densenet_hybrid"
REFERENCE = (0.5, math.log10(60e6))  # (accuracy, log10 MACs): worse than every trained point of the space
CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)  # fractions of the budget at which the front is scored
COMPARABLE = ("minutes", "best", "keep", "retrain_epochs", "retrain_fraction")  # runs compare only at equal ones

METHODS: dict[str, dict[str, Any]] = {
    "tpe": {"sampler": "tpe", "pruner": "none"},
    "nsga2": {"sampler": "nsga2", "pruner": "none"},
    "gp": {"sampler": "gp", "pruner": "none"},
    # At the space's own budget (1 epoch on 20%) the first rungs sit at chance
    # (benchmarks/results/rung_schedules.json): MO-ASHA gets a larger budget to cut.
    "tpe_asha": {"sampler": "tpe", "pruner": "asha", "train_fraction": 1.0},
    "best_asha_screen": {"pruner": "asha", "train_fraction": 1.0, "screen": 4},  # the sampler is --best
    "tpe_copies": {"sampler": "tpe", "pruner": "none", "recorded_by": "b0848e8"},  # scored from its journals only
}


def hypervolume(points: Sequence[tuple[float, float]]) -> float:
    """Area dominated by (accuracy, log MACs) points, accuracy up and log MACs down, from ``REFERENCE``."""
    return pareto.hypervolume([(-accuracy, log_macs) for accuracy, log_macs in points], (-REFERENCE[0], REFERENCE[1]))


def best_few(
    trials: Sequence[FrozenTrial], keep: int, objectives: Sequence[Objective] | None = None
) -> list[FrozenTrial]:
    """The ``keep`` trials that best stand for the search's front.

    The trials are ranked by ``search.pareto``'s rule on the study's
    ``objectives`` (default: the space's), as ``search show`` and ``search
    finalize`` rank them: finished, feasible, one per architecture. From a
    Pareto front larger than ``keep``: the subset whose (validation accuracy,
    log MACs) points dominate the largest area. From a smaller one: all of it,
    then the next fronts by rank and accuracy.
    """
    objectives = tuple(load_space(SPACE).objectives if objectives is None else objectives)
    ranked = pareto.rank_trials(trials, [o.direction for o in objectives])
    front = [r.trial for r in ranked if r.rank == 1]
    if len(front) <= keep:
        return [r.trial for r in ranked[:keep]]
    names = [o.metric for o in objectives]
    if "accuracy" not in names or "macs" not in names:
        raise ValueError(f"the benchmark scores accuracy against MACs; the study optimises {', '.join(names)}")

    def point(trial: FrozenTrial) -> tuple[float, float]:
        return trial.values[names.index("accuracy")], math.log10(trial.values[names.index("macs")])

    return list(max(itertools.combinations(front, keep), key=lambda few: hypervolume([point(t) for t in few])))


# --- runs --------------------------------------------------------------------------


class NotRecorded(Exception):
    """A method this code can only score lacks its recorded journal."""


def run_method(method: str, seed: int, args: argparse.Namespace, log: Callable[[str], None]) -> optuna.Study:
    """Run (or finish) one method's search for its wall-clock budget, in its own journal study."""
    options = dict(METHODS[method])
    options.setdefault("sampler", args.best)
    name = f"{method}-s{seed}"
    studies = args.out.with_suffix("")  # the journals sit in a folder named after the JSON file
    studies.mkdir(parents=True, exist_ok=True)
    journal = unpacked_journal(studies / f"{name}.log")  # committed as .log.gz
    storage = f"journal:{journal}"
    budget = args.minutes * 60
    try:
        existing = optuna.load_study(study_name=name, storage=make_storage(storage)).trials
    except KeyError:
        existing = []
    left = budget - busy_seconds(existing)
    if left > 0 and "recorded_by" in options:
        raise NotRecorded(f"{name} runs only as commit {options['recorded_by']} recorded it, and {journal} "
                          f"holds {budget - left:.0f} of its {budget:.0f} s of search; see the docstring")  # fmt: skip
    if left > 0:
        log(f"{name}: {left / 60:.1f} min of search left ({options})")
        try:
            return run_search(
                space=SPACE, study=StudySpec(name, storage=storage, report=False, command=f"benchmarks/search_efficiency.py {name}"),
                budget=Budget(trials=100_000, timeout=left, train_fraction=options.get("train_fraction")), seed=seed,
                sampler=SamplerSpec(options["sampler"]), pruning=Pruning(options["pruner"]),
                screening=Screening(options.get("screen", 1)),
            )  # fmt: skip
        finally:
            pack_journal(journal)
    return optuna.load_study(study_name=name, storage=make_storage(storage))


def _architectures(study: optuna.Study) -> set[str]:
    """The distinct architectures the study's finished trials evaluated or copied."""
    finished = study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    )
    return {key for t in finished if (key := t.user_attrs.get("architecture_key"))}


def retrain(arch: dict[str, Any], args: argparse.Namespace, data: Any) -> float:
    """Validation accuracy of ``arch`` at the common budget (seed 0), the one ruler for every method."""
    space = load_space(SPACE)
    config = space.training.config(epochs=args.retrain_epochs, train_fraction=args.retrain_fraction, seed=0)
    torch.manual_seed(0)
    model = build_model(Architecture.from_dict(arch), space.input_size, space.num_classes)
    return train(model, data, config).val_accuracies[-1]


def score_run(
    study: optuna.Study, args: argparse.Namespace, cache: dict[str, Any], data: Any, retrain_missing: bool = True
) -> list[dict[str, Any]] | None:
    """Hypervolume of the retrained best few at each checkpoint of the budget.

    Without ``retrain_missing``, None when an architecture it needs is not retrained yet.
    """
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    if not trials:
        return []
    # Each trial's time is the search's busy time when it ended, so a pause between two runs of it does not count.
    ended_at = {
        t.number: busy_seconds([u for u in trials if u.datetime_complete <= t.datetime_complete]) for t in trials
    }
    budget = args.minutes * 60
    curve = []
    for share in CHECKPOINTS:
        # No trial starts after the budget, but the last ones end past it: the final point counts them all.
        cutoff = math.inf if share == 1.0 else share * budget
        done = [t for t in trials if ended_at[t.number] <= cutoff]
        points = []
        for trial in best_few(done, args.keep, pareto.study_objectives(study)):
            record = TrialRecord.load(trial)
            key = record.architecture_key
            if key not in cache["retrained"] and not retrain_missing:
                return None
            if key not in cache["retrained"]:
                cache["retrained"][key] = {"architecture": record.architecture, "macs": record.macs,
                                           "val_accuracy": retrain(record.architecture, args, data)}  # fmt: skip
                save_cache(args.out, cache)
            points.append((cache["retrained"][key]["val_accuracy"], math.log10(cache["retrained"][key]["macs"])))
        curve.append(
            {"minutes": share * args.minutes, "trials_finished": len(done), "hypervolume": hypervolume(points)}
        )
    return curve


def rescore_all(cache: dict[str, Any], args: argparse.Namespace, data: Any) -> None:
    """Score every cached run again from its journal and the retrainings, training nothing.

    A process side by side holds the cache from its start, and its saves keep
    its own copy of a run another process has rescored since; so at its end
    each process scores every run anew, from the journals, which alone are
    never stale.
    """
    merge_into(cache, load_cache(args.out, {}))
    for method, seeds in cache["runs"].items():
        for seed, run in seeds.items():
            journal = args.out.with_suffix("") / f"{method}-s{seed}.log"
            if run.get("curve") and (journal.is_file() or packed(journal).is_file()):
                with journal_to_read(journal) as path:
                    study = optuna.load_study(study_name=f"{method}-s{seed}", storage=make_storage(f"journal:{path}"))
                    run["curve"] = score_run(study, args, cache, data, retrain_missing=False) or run["curve"]


def summarise(cache: dict[str, Any]) -> dict[str, Any]:
    """Mean hypervolume per method at each checkpoint, over the seeds that finished."""
    summary: dict[str, Any] = {}
    for method, seeds in cache["runs"].items():
        curves = [run["curve"] for run in seeds.values() if run.get("curve")]
        if not curves:
            continue
        summary[method] = {
            "seeds": len(curves),
            "mean_hypervolume": [
                sum(c[i]["hypervolume"] for c in curves) / len(curves) for i in range(len(CHECKPOINTS))
            ],
            "minutes": [point["minutes"] for point in curves[0]],
            "trials_finished": [[point["trials_finished"] for point in c] for c in curves],
            "architectures": [run.get("architectures") for run in seeds.values() if run.get("curve")],
            "images_saved": [run.get("images_saved") for run in seeds.values()],
        }
    return summary


def paired_difference(cache: dict[str, Any], method: str, baseline: str) -> dict[str, Any]:
    """``method``'s final hypervolume minus ``baseline``'s, seed by seed, with the mean's 95% interval (Student's t).

    Pairing by seed removes the seed's share of the spread: with one seed,
    TPE draws the same proposals under both rules until their histories part
    (in the default's confirmation they never did), and the pair shares its
    time slot on the machine.
    """
    runs, base = cache["runs"].get(method, {}), cache["runs"].get(baseline, {})
    seeds = sorted(s for s in set(runs) & set(base) if runs[s].get("curve") and base[s].get("curve"))
    differences = [runs[s]["curve"][-1]["hypervolume"] - base[s]["curve"][-1]["hypervolume"] for s in seeds]
    out: dict[str, Any] = {"seeds": [int(s) for s in seeds], "per_seed": differences}
    if len(differences) > 1:
        mean = statistics.fmean(differences)
        half = t_half_width(differences)
        out |= {"difference": mean, "ci95": [mean - half, mean + half]}
    return out


def draw(cache: dict[str, Any], path: Path) -> None:
    """Hypervolume against wall time: one line per method (its seeds' mean), markers per seed."""
    figure = go.Figure()
    for method, seeds in cache["runs"].items():
        for seed, run in seeds.items():
            if run.get("curve"):
                figure.add_scatter(x=[p["minutes"] for p in run["curve"]], y=[p["hypervolume"] for p in run["curve"]],
                                   mode="markers", name=f"{method} seed {seed}", legendgroup=method, opacity=0.5)  # fmt: skip
    for method, row in summarise(cache).items():
        figure.add_scatter(x=row["minutes"], y=row["mean_hypervolume"], mode="lines", name=f"{method} (mean)",
                           legendgroup=method)  # fmt: skip
    figure.update_layout(title="Search quality per wall time (fronts retrained at one common budget)",
                         xaxis_title="wall time (min)", yaxis_title="hypervolume (accuracy x log10 MACs)")  # fmt: skip
    figure.write_html(path, include_plotlyjs="cdn")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="Wall-clock budget per run (default: 30).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="Seeds per method (default: 0 1).")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS), help="Methods to run.")
    parser.add_argument("--best", default="tpe", help="The sampler of best_asha_screen (default: tpe).")
    parser.add_argument("--keep", type=int, default=3, help="Architectures of each front retrained (default: 3).")
    parser.add_argument("--retrain-epochs", type=int, default=1, help="Epochs of the common budget (default: 1).")
    parser.add_argument("--retrain-fraction", type=float, default=0.5, help="Its share of the split (default: 0.5).")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"Cache and results (default: {RESULTS}).")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice).")
    parser.add_argument("--summary-only", action="store_true", help="Run nothing; summarise the cache.")
    parser.add_argument("--paired", nargs=2, metavar=("A", "B"), help="Also give A's final hypervolume minus B's.")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    cache = load_cache(args.out, {"runs": {}, "retrained": {}})
    settings = {key: getattr(args, key) for key in COMPARABLE} | {"threads": torch.get_num_threads()}
    settings["reference_point"] = list(REFERENCE)
    kept = cache.setdefault("settings", settings)
    if not args.summary_only and kept != settings:
        differs = ", ".join(differences(kept, settings))
        parser.exit(2, f"error: {args.out} holds runs made with {differs}; pass the same, or another --out\n")
    data = load_dataset(load_space(SPACE).dataset, validation_size=0.1, seed=0)  # the seed-0 run's split
    if not args.summary_only:
        for seed in args.seeds:
            for method in args.methods:
                # A finished search returns at once; its curve is scored again, retraining
                # only what the cache lacks, so no curve is left from an older rule.
                run = cache["runs"].setdefault(method, {}).setdefault(str(seed), {})
                try:
                    study = run_method(method, seed, args, log)
                except NotRecorded as error:
                    parser.exit(2, f"error: {error}\n")
                run.update(search_seconds=busy_seconds(study.trials), trials=len(study.trials),
                           architectures=len(_architectures(study)))  # fmt: skip
                run["images_saved"] = images_saved_fraction(study) if METHODS[method].get("pruner") == "asha" else None
                run["curve"] = score_run(study, args, cache, data)
                save_cache(args.out, cache)
                log(f"{method} seed {seed}: {run['curve']}")
    rescore_all(cache, args, data)
    cache["summary"] = summarise(cache)
    if args.paired:
        cache.setdefault("paired", {})[" - ".join(args.paired)] = paired_difference(cache, *args.paired)
    save_cache(args.out, cache)
    draw(cache, args.out.with_suffix(".html"))
    print(json.dumps({key: cache[key] for key in ("summary", "paired") if key in cache}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
