"""The command line of ``benchmarks/simulator.py``: train, fit, compare, table, warm."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import optuna
import simulator
import simulator_data
import simulator_fit
import simulator_samplers
import torch

from search.commands._common import shard
from spaces import load_space

from result_cache import load_cache, save_cache

NOISE_ARCHITECTURES = 16  # committed architectures trained again with NOISE_SEEDS
NOISE_SEEDS = (100, 101, 102)
# Random draws trained once. The committed studies hold ~60 architectures drawn at random (their
# samplers' start-up and the fidelity panel); the rest are TPE's proposals near its front. These
# cover where random search and every start-up go, and give the held-out check ~20 of them; the
# fit's learning curve was flat from ~300 training architectures on, so more would not improve it.
RANDOM_ARCHITECTURES = 40
RANDOM_SEED = 1000
# What compare writes, in its --out folder: the runs' cache, the summary, the figure, the table.
RUNS, SAMPLERS, FIGURE, TABLE = "runs.json", "samplers.json", "samplers.html", "samplers.md"
WARM_RUNS, WARM = "warm_start_runs.json", "warm_start.json"  # what warm writes there: its cache, its summary


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def training_plan(space: Any, *, noise: int, random: int) -> list[tuple[str, dict[str, Any], int]]:
    """The runs trained here: ``noise`` committed architectures with each noise seed, then ``random`` random draws."""
    committed, _ = simulator_data.committed_observations(space)
    plan = simulator_data.noise_plan(committed, architectures=noise, seeds=NOISE_SEEDS)
    known = {o.key for o in committed}
    return plan + simulator_data.random_plan(space, known, count_=random, seed=RANDOM_SEED)


def train(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    space = load_space(simulator_data.SPACE)
    plan = training_plan(space, noise=args.noise_architectures, random=args.random_architectures)
    cache = simulator_data.train_missing(plan, out=args.out, log=log, shard=args.shard)
    log(f"{len(cache['runs'])} runs in {args.out}")
    return 0


def fit(args: argparse.Namespace) -> int:
    space = load_space(simulator_data.SPACE)
    committed, sources = simulator_data.committed_observations(space)
    trained = simulator_data.trained_observations(load_cache(simulator_data.TRAINED, {}))
    report = {"sources": sources, "trained_here": _trained_summary(trained)}
    report |= simulator_fit.fit_report(space, committed=committed, trained=trained, seed=args.seed)
    rows = simulator_data.rows_by_architecture(committed + trained)
    digest = simulator.rows_digest(rows)
    fingerprint_text = json.dumps([digest, report["chosen"], report["noise"]["model"]])
    report["simulator"] = {
        "rows": len(rows),
        "rows_digest": digest,
        "fingerprint": simulator.short_hash(fingerprint_text),
        "note": "the chosen regressor refitted on every architecture (train and held-out); noise from noise.model",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("architectures", "chosen", "held_out")}, indent=1))
    return 0


def _trained_summary(trained: list[simulator_data.Observation]) -> dict[str, int]:
    found: dict[str, int] = {}
    for o in trained:
        found[o.source] = found.get(o.source, 0) + 1
    return found


def compare(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.settings) - set(simulator_samplers.SETTINGS))
    if unknown:
        log(f"error: unknown setting {unknown[0]!r}; known: {', '.join(simulator_samplers.SETTINGS)}")
        return 2
    sim = simulator.Simulator.load(args.fit)
    settings = {"fingerprint": sim.fingerprint, "reference": list(simulator_samplers.REFERENCE)}
    runs = args.out / RUNS
    cache = load_cache(runs, {"settings": settings, "runs": {}})
    if cache["settings"] != settings:
        log(
            f"error: {runs} holds runs of another simulator or reference ({cache['settings']}, now {settings});"
            " move it away to start afresh"
        )
        return 2
    if not args.summary_only:
        simulator_samplers.run_all(
            sim,
            cache,
            settings=args.settings,
            trial_counts=args.trials,
            seeds=range(args.seeds),
            save=lambda: save_cache(runs, cache),
            log=log,
            shard=args.shard,
        )
    cache = load_cache(runs, cache)
    results = {
        "space": sim.space.name,
        "simulator": sim.fingerprint,
        "reference": {
            "accuracy": simulator_samplers.REFERENCE[0],
            "macs": simulator_samplers.REFERENCE[1],
            "axes": "accuracy (maximised) x log10 MACs (minimised)",
        },
        "checkpoints": list(simulator_samplers.CHECKPOINTS),
        "patience": simulator_samplers.PATIENCE,
        "summary": simulator_samplers.summarise(cache),
    }
    (args.out / SAMPLERS).write_text(json.dumps(results, indent=1) + "\n")
    simulator_samplers.draw(results, args.out / FIGURE)
    table = simulator_samplers.markdown_table(results)
    (args.out / TABLE).write_text(table)
    print(table, end="")
    return 0


def table(args: argparse.Namespace) -> int:
    results = json.loads(args.results.read_text())
    print(
        simulator_samplers.markdown_table(results, score=args.score, settings=args.settings, trials=args.trials), end=""
    )
    return 0


def warm(args: argparse.Namespace) -> int:
    """Each missing seed's cold and warm-started searches, cached as each ends; then the summary."""
    if args.setting not in simulator_samplers.SETTINGS:
        log(f"error: unknown setting {args.setting!r}; known: {', '.join(simulator_samplers.SETTINGS)}")
        return 2
    sim = simulator.Simulator.load(args.fit)
    settings = {"fingerprint": sim.fingerprint, "setting": args.setting, "trials": args.trials}
    runs = args.out / WARM_RUNS
    cache = load_cache(runs, {"settings": settings, "runs": {}})
    if cache["settings"] != settings:
        log(f"error: {runs} holds runs of other settings ({cache['settings']}, now {settings}); move it away")
        return 2
    setting = simulator_samplers.SETTINGS[args.setting]
    for seed in range(args.seeds):
        if str(seed) not in cache["runs"]:
            cache["runs"][str(seed)] = run = simulator_samplers.warm_start_run(
                sim, setting, trials=args.trials, seed=seed
            )
            save_cache(runs, cache)
            log(
                f"seed {seed}: cold reached {run['target']:.4f} after {run['cold_trials']} trials, warm after {run['warm_trials']}"
            )
    done = [cache["runs"][str(seed)] for seed in range(args.seeds)]
    summary = {
        "space": sim.space.name,
        "simulator": sim.fingerprint,
        "setting": args.setting,
        "source": f"the same setting's search of {args.trials} trials with seed + {simulator_samplers.WARM_SOURCE_SEED}",
        "never_reached_counts_as": args.trials + 1,
        **simulator_samplers.summarise_warm_starts(done, trials=args.trials),
    }
    (args.out / WARM).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/simulator.py",
        description=simulator.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sub = commands.add_parser("train", help="Train the seed replicates and the random draws the cache lacks.")
    sub.add_argument(
        "--noise-architectures",
        type=int,
        default=NOISE_ARCHITECTURES,
        help=f"Committed architectures trained again with seeds {NOISE_SEEDS} (default: {NOISE_ARCHITECTURES}).",
    )
    sub.add_argument(
        "--random-architectures",
        type=int,
        default=RANDOM_ARCHITECTURES,
        help=f"Random architectures trained once (default: {RANDOM_ARCHITECTURES}).",
    )
    sub.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice).")
    sub.add_argument(
        "--shard",
        type=shard,
        default=(0, 1),
        metavar="I/N",
        help="Train only every N-th run of the plan, from the I-th (0-based), to run N processes side by side.",
    )
    sub.add_argument("--out", type=Path, default=simulator_data.TRAINED, help="The training cache.")
    sub.set_defaults(run=train)

    sub = commands.add_parser(
        "fit", help="Choose the surrogate by cross-validation, score it on held-out architectures."
    )
    sub.add_argument("--seed", type=int, default=0, help="Seed of the held-out split and the folds (default: 0).")
    sub.add_argument("--out", type=Path, default=simulator.FIT, help=f"The report (default: {simulator.FIT}).")
    sub.set_defaults(run=fit)

    sub = commands.add_parser("compare", help="Run every sampler setting on the simulator; summarise, draw, tabulate.")
    sub.add_argument(
        "--settings",
        nargs="+",
        default=list(simulator_samplers.SETTINGS),
        metavar="SETTING",
        help="Settings to run (default: all): " + ", ".join(simulator_samplers.SETTINGS) + ".",
    )
    sub.add_argument("--trials", type=int, nargs="+", default=[12, 100], help="Trial counts (default: 12 100).")
    sub.add_argument("--seeds", type=int, default=20, help="Seeds 0..N-1 per setting (default: 20).")
    sub.add_argument("--fit", type=Path, default=simulator.FIT, help="The simulator's fit report.")
    sub.add_argument(
        "--out",
        type=Path,
        default=simulator.RESULTS,
        help=f"Folder of {RUNS} (the runs' cache), {SAMPLERS}, {FIGURE} and {TABLE} (default: {simulator.RESULTS}).",
    )
    sub.add_argument(
        "--shard",
        type=shard,
        default=(0, 1),
        metavar="I/N",
        help="Run only every N-th run of the plan, from the I-th (0-based), to run N processes side by side.",
    )
    sub.add_argument("--summary-only", action="store_true", help="Run nothing; summarise the cache.")
    sub.set_defaults(run=compare)

    sub = commands.add_parser("table", help="Print the comparison as a Markdown table.")
    sub.add_argument(
        "--results",
        type=Path,
        default=simulator.RESULTS / SAMPLERS,
        help=f"The comparison (default: {simulator.RESULTS / SAMPLERS}).",
    )
    sub.add_argument(
        "--score",
        choices=simulator.SCORES,
        default="observed",
        help="Recorded accuracies (observed), the noise-free ones of every trial (true) or of the recorded front (reported).",
    )
    sub.add_argument("--settings", nargs="+", metavar="SETTING", help="Only these settings (default: all).")
    sub.add_argument("--trials", type=int, nargs="+", help="Only these trial counts (default: all).")
    sub.set_defaults(run=table)

    sub = commands.add_parser(
        "warm", help="Trials a warm-started search needs to reach a cold search's final hypervolume."
    )
    sub.add_argument(
        "--setting", default="tpe +distinct", help="The setting both searches use (default: the toolkit's)."
    )
    sub.add_argument("--trials", type=int, default=100, help="Trials of each search (default: 100).")
    sub.add_argument("--seeds", type=int, default=20, help="Seeds 0..N-1 (default: 20).")
    sub.add_argument("--fit", type=Path, default=simulator.FIT, help="The simulator's fit report.")
    sub.add_argument(
        "--out",
        type=Path,
        default=simulator.RESULTS,
        help=f"Folder of {WARM_RUNS} and {WARM} (default: {simulator.RESULTS}).",
    )
    sub.set_defaults(run=warm)

    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return args.run(args)
