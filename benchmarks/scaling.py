"""Finished trials per hour with 1, 2 and 4 worker processes on one study, per storage.

Every configuration (storage x workers) evaluates the same workload: a fresh
study into which the same ``--trials`` distinct architectures of a small space
on scikit-learn's 8x8 digits are enqueued (all within the space's constraints,
so every one trains), then W processes each run ``search.run_search`` on that
study with the whole ``--trials`` as their study-wide budget (each stops when
the study holds that many finished trials), one seed per process. The machine's cores are split between them: each
process gets ``OMP_NUM_THREADS = max(1, cores // W)``.

Two rates per configuration: ``trials_per_hour`` over the span of the trials
(first start to last finish, as the storage recorded them), and
``wall_trials_per_hour`` from starting the processes to their exit, which adds
each process's start (imports, data loading). Ratios are against 1 worker on
the same storage. Storages: the journal file (``JournalFileBackend``) and
PostgreSQL (a throwaway server on loopback, ``search.testing.postgres``).

Resumable: each finished configuration is written to the results file at once
and skipped by the next run with the same workload (``--fresh`` measures all
again).

    python benchmarks/scaling.py                       # all, about 5 minutes on 2 cores
    python benchmarks/scaling.py --storages journal --workers 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from search import Budget, SamplerSpec, StudySpec, Workers, run_search
from search.storage.records import architecture_key
from search.storage.studies import create_or_resume, make_storage
from search.testing.postgres import PostgresServer, throwaway_server
from spaces import Space, load_space, precheck, sample_architecture

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "scaling.json"
STUDY = "scaling"
SPACE = """\
description: Scaling benchmark, a small dense space on scikit-learn's 8x8 digits; trials of a few seconds.
dataset: digits
input: [1, 8, 8]
num_classes: 10
objectives: {accuracy: maximize, macs: minimize}
constraints: {max_params: 200000}
training: {epochs: 10, train_fraction: 1.0, batch_size: 64, lr: 0.05, schedule: onecycle}
stem: {style: small, width: {choice: [16, 24]}}
stages:
  count: 1
  each:
    block: dense
    depth: {low: 2, high: 6}
    dense: {growth_rate: {choice: [8, 12, 16]}, bn_size: 0}
head: {norm: true}
"""


def workload_params(space: Space, trials: int, seed: int = 0) -> list[dict[str, Any]]:
    """``trials`` distinct trainable architectures of ``space``, as parameters to enqueue."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    chosen: dict[str, dict[str, Any]] = {}
    for _ in range(100 * trials):
        trial = study.ask()
        arch = sample_architecture(space, trial)
        if precheck(space, arch) is None:
            chosen.setdefault(architecture_key(arch.to_dict()), trial.params)
        if len(chosen) == trials:
            return list(chosen.values())
    raise SystemExit(f"the benchmark space has fewer than {trials} trainable architectures")


def prepare_study(spec: str, space: Space, params: list[dict[str, Any]]) -> None:
    """Create the study once, before the workers (concurrent creation collides), and queue the workload."""
    study, _ = create_or_resume(
        name=STUDY,
        storage=make_storage(spec),
        directions=[o.direction for o in space.objectives],
        metric_names=[o.metric for o in space.objectives],
        sampler=optuna.samplers.RandomSampler(seed=0),
        settings={"benchmark": "scaling"},
    )
    for trial_params in params:
        study.enqueue_trial(trial_params)


def spawn_worker(spec: str, space_file: Path, *, trials: int, seed: int, threads: int) -> subprocess.Popen[bytes]:
    """One worker process running ``run_search`` on the shared study with ``threads`` threads."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--worker", spec, "--space-file", str(space_file)]
    command += ["--trials", str(trials), "--seed", str(seed)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def run_worker(spec: str, space_file: Path, *, trials: int, seed: int) -> None:
    """The worker's side: the search's library call, no report."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_search(
        space=space_file,
        study=StudySpec(name=STUDY, storage=spec, report=False),  # journal:PATH or a PostgreSQL URL
        budget=Budget(trials=trials),
        sampler=SamplerSpec("random"),
        workers=Workers(device="cpu"),
        seed=seed,
    )


def measure(spec: str, space: Space, params: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    """Run the workload with ``workers`` processes on a fresh study in ``spec``; the rates."""
    prepare_study(spec, space, params)
    threads = max(1, (os.cpu_count() or 1) // workers)
    load = os.getloadavg()[0]
    started = time.monotonic()
    processes = [
        spawn_worker(spec, space.path, trials=len(params), seed=seed, threads=threads) for seed in range(workers)
    ]
    codes = [process.wait() for process in processes]
    wall = time.monotonic() - started
    if any(codes):
        raise SystemExit(f"a worker failed: exit codes {codes}")
    trials = optuna.load_study(study_name=STUDY, storage=make_storage(spec)).get_trials(
        states=(TrialState.COMPLETE, TrialState.PRUNED)
    )
    span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return {
        "workers": workers,
        "threads_per_worker": threads,
        "finished_trials": len(trials),
        "trained_trials": sum(t.user_attrs.get("outcome") == "trained" for t in trials),
        "span_s": round(span, 1),
        "wall_s": round(wall, 1),
        "trials_per_hour": round(len(trials) / span * 3600, 1),
        "wall_trials_per_hour": round(len(trials) / wall * 3600, 1),
        "load_average_before": load,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def load_results(path: Path, workload: dict[str, Any], fresh: bool) -> dict[str, Any]:
    """Results of earlier runs with the same workload, to resume from; else an empty set."""
    if not fresh and path.is_file():
        earlier = json.loads(path.read_text())
        if earlier.get("workload") == workload:
            return earlier
    return {"workload": workload, "cpu_count": os.cpu_count(), "configurations": {}, "ratios": {}}


def with_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Each configuration's rates divided by 1 worker's on the same storage."""
    ratios: dict[str, dict[str, float]] = {}
    configurations = results["configurations"]
    for key, measured in configurations.items():
        storage = key.split("/")[0]
        single = configurations.get(f"{storage}/1")
        if single is not None:
            ratios[key] = {
                "trials_per_hour": round(measured["trials_per_hour"] / single["trials_per_hour"], 2),
                "wall_trials_per_hour": round(measured["wall_trials_per_hour"] / single["wall_trials_per_hour"], 2),
            }
    return {**results, "ratios": ratios}


def fresh_spec(storage: str, workers: int, scratch: Path, server: PostgresServer | None) -> str:
    """A new journal file or a new database, so each configuration starts on an empty study."""
    if storage == "journal":
        return f"journal:{scratch / f'journal-{workers}.log'}"
    if server is None:
        raise ValueError(f"unknown storage {storage!r}; expected journal or postgres")
    return server.create_database(f"scaling_{workers}")


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every configuration not in the results yet, writing the file after each."""
    with tempfile.TemporaryDirectory(prefix="scaling-") as scratch_dir:
        scratch = Path(scratch_dir)
        os.environ["SEARCH_STUDIES_DIR"] = str(scratch / "studies")
        space_file = scratch / "scaling_digits.yaml"
        space_file.write_text(SPACE.replace("epochs: 10", f"epochs: {args.epochs}"))
        space = load_space(space_file)
        workload = {"space": SPACE, "epochs": args.epochs, "trials": args.trials, "dataset": "digits"}
        results = load_results(args.out, workload, args.fresh)
        params = workload_params(space, args.trials)
        for storage in args.storages:
            todo = [w for w in args.workers if f"{storage}/{w}" not in results["configurations"]]
            if not todo:
                continue
            with _server(storage) as server:
                for workers in todo:
                    measured = measure(fresh_spec(storage, workers, scratch, server), space, params, workers)
                    results["configurations"][f"{storage}/{workers}"] = {"storage": storage, **measured}
                    results = with_ratios(results)
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(results, indent=2) + "\n")
                    print(f"{storage} x{workers}: {measured['trials_per_hour']} trials/h", file=sys.stderr)
    return results


@contextmanager
def _server(storage: str) -> Iterator[PostgresServer | None]:
    """A throwaway PostgreSQL server for the postgres configurations; nothing for the journal."""
    if storage != "postgres":
        yield None
        return
    with throwaway_server() as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8, help="Trials per configuration (default: 8).")
    parser.add_argument("--epochs", type=int, default=3, help="Training epochs per trial (default: 3).")
    parser.add_argument("--workers", default="1,2,4", help="Worker counts, comma-separated (default: 1,2,4).")
    parser.add_argument("--storages", default="journal,postgres", help="journal and/or postgres (default: both).")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"Results file (default: {RESULTS}).")
    parser.add_argument("--fresh", action="store_true", help="Measure every configuration again.")
    parser.add_argument("--worker", metavar="STORAGE", help=argparse.SUPPRESS)
    parser.add_argument("--space-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.space_file, trials=args.trials, seed=args.seed)
        return
    args.workers = [int(w) for w in args.workers.split(",")]
    args.storages = args.storages.split(",")
    print(json.dumps(run_all(args), indent=2))


if __name__ == "__main__":
    main()
