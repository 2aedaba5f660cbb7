"""How long ``make run``'s search and export take on this machine, and what they find.

``make run`` creates the venv, installs, fetches Fashion-MNIST, then runs two
commands; this times those two, as a user would type them, in a fresh
studies folder (a temporary one, deleted afterwards):

    python -m search run --space densenet_hybrid
    python -m search export densenet_hybrid --top 3

and writes ``benchmarks/results/default_run.json``: each command's wall time
and CPU time (user + system, of all its threads; on a shared machine the wall
time grows with the load, the CPU time much less), the trials by outcome, the front (validation accuracy, MACs and params of each
member), the machine's cores and its load average before and after (other
processes on a shared machine only slow a run down). The venv and the install
are not timed: they depend on pip's cache and the network. ``--threads N`` runs
both commands with ``OMP_NUM_THREADS=N`` (default: as ``make run`` does, torch's
own choice).

    python benchmarks/default_run.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluation.atomic import atomic_write
from search.pareto import front_trials
from search.storage.records import TrialRecord
from search.storage.studies import open_study

RESULTS = Path(__file__).resolve().parent / "results" / "default_run.json"
SPACE = "densenet_hybrid"
COMMANDS = (["run", "--space", SPACE], ["export", SPACE, "--top", "3"])


def timed(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall and CPU seconds of ``python -m search COMMAND``; a failure stops the benchmark."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-m", "search", *command], env=env, check=True)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_seconds": wall, "cpu_seconds": cpu}


def describe(studies: Path) -> dict[str, Any]:
    """The study's trials by outcome and its front, read back from its storage."""
    os.environ["SEARCH_STUDIES_DIR"] = str(studies)
    study = open_study(SPACE)
    outcomes = Counter(str(TrialRecord.load(trial).outcome) for trial in study.trials)
    front = []
    for trial in front_trials(study):
        record = TrialRecord.load(trial)
        front.append({"trial": trial.number, "val_accuracy": trial.values[0], "macs": record.macs,
                      "params": record.params})  # fmt: skip
    seconds = [t.duration.total_seconds() for t in study.trials if t.duration is not None]
    return {"trials": len(study.trials), "outcomes": dict(outcomes), "trial_seconds": sum(seconds), "front": front}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of both commands.")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "SEARCH_STUDIES_DIR": folder}
        if args.threads is not None:
            env["OMP_NUM_THREADS"] = str(args.threads)
        times = {command[0]: timed(command, env) for command in COMMANDS}
        found = describe(Path(folder))
    result = {
        "commands": [shlex.join(["python", "-m", "search", *command]) for command in COMMANDS],
        "times": times,
        **found,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "load_average_before": load_before[0],
        "load_average_after": os.getloadavg()[0],
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_write(RESULTS) as temporary:
        temporary.write_text(json.dumps(result, indent=1) + "\n")
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
