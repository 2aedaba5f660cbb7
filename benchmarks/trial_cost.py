"""One search trial's cost, this code's against an older commit's: the same architecture, in turn.

Each run is a fresh process that trains one trial of ``densenet_hybrid`` on
Fashion-MNIST through the search's own ``TrialObjective`` (the space's budget,
one thread) and reports the trial's wall time and its recorded training and
evaluation seconds. The older code runs from a worktree of ``COMMIT``
(``search_at_commit.worktree``); the two alternate, older first, ``--pairs``
times, and the ratios are taken pair by pair, since this machine's speed
drifts. The architecture is ``--trial N`` of the default's confirmation
search (``default_confirmation/tpe-s0``; 58 is its median-cost trained trial):

    python benchmarks/trial_cost.py cf16c75 --pairs 3   # benchmarks/results/trial_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import optuna
from search_at_commit import worktree

from search.storage.studies import make_storage

from result_cache import journal_to_read

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "trial_cost.json"
JOURNAL = ROOT / "benchmarks" / "results" / "default_confirmation" / "tpe-s0.log"
# Runs in the code under test: argv[1] is the architecture as JSON.
CHILD = """
import json, sys, torch, optuna
torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)
from evaluation import Architecture
from evaluation.data import load_dataset
from search.execution.objective import TrialObjective
from spaces import enqueue_architecture, load_space
space = load_space("densenet_hybrid")
data = load_dataset(space.dataset, validation_size=0.1, seed=0)
study = optuna.create_study(directions=[o.direction for o in space.objectives])
study.enqueue_trial(enqueue_architecture(space, Architecture.from_dict(json.loads(sys.argv[1]))))
study.optimize(TrialObjective(space=space, data=data, config=space.training.config(seed=0)), n_trials=1)
trial = study.trials[0]
print(json.dumps({"trial_seconds": trial.duration.total_seconds(), "train_seconds": trial.user_attrs["train_seconds"],
                  "eval_seconds": trial.user_attrs["eval_seconds"], "val_accuracy": trial.values[0],
                  "balanced_accuracy": trial.user_attrs["val_scores"]["balanced_accuracy"]}))
"""


def architecture_of(trial: int) -> dict[str, Any]:
    with journal_to_read(JOURNAL) as path:
        study = optuna.load_study(study_name="tpe-s0", storage=make_storage(f"journal:{path}"))
        return study.trials[trial].user_attrs["architecture"]


def one_trial(code: Path, architecture: dict[str, Any]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    run = subprocess.run([sys.executable, "-c", CHILD, json.dumps(architecture)], cwd=code, env=env,
                         check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(run.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commit", help="The older code (any name git knows).")
    parser.add_argument("--pairs", type=int, default=3, help="Runs of each, in turn (default: 3).")
    parser.add_argument("--trial", type=int, default=58, help="The trial of tpe-s0 whose architecture runs.")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"Results (default: {RESULTS}).")
    args = parser.parse_args(argv)
    older = worktree(args.commit, Path(tempfile.gettempdir()))
    architecture = architecture_of(args.trial)
    pairs = []
    for pair in range(args.pairs):
        pairs.append({"before": one_trial(older, architecture), "after": one_trial(ROOT, architecture)})
        print(f"pair {pair + 1}: {json.dumps(pairs[-1])}", file=sys.stderr, flush=True)
    ratios = {key: [p["after"][key] / p["before"][key] for p in pairs] for key in ("trial_seconds", "eval_seconds")}
    results = {"commit": args.commit, "trial": args.trial, "architecture": architecture, "pairs": pairs,
               "after_over_before": ratios,
               "median_after_over_before": {key: statistics.median(r) for key, r in ratios.items()}}  # fmt: skip
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results["median_after_over_before"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
