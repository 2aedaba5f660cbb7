"""The headline run: a Fashion-MNIST model of at most 100,000 parameters, searched and fully trained on this CPU.

Two phases, each resumable across separate runs (a run may be stopped with
Ctrl-C or killed, and the next one continues):

1. **Search** (``--search-minutes`` of wall time in all, counted from the
   trials' own timestamps, so earlier runs' time counts): the default space
   (``densenet_hybrid``) with its params limit lowered to 100,000, the
   toolkit's default sampler (TPE, distinct trials) at the space's trial
   budget, no pruning (on that budget the first rungs sit at
   chance: ``benchmarks/results/rung_schedules.json``), the space's
   DenseNet-BC baseline ``small_dense`` (98.5 K parameters) as the first
   trial, in the journal study ``benchmarks/results/<name>/`` (``--name``,
   default ``headline``; beside its JSON file, so that committing the folder
   lets a fresh clone resume from the journal and the finished trainings; a
   cut-short training's state stays on the machine that made it).
2. **Finalisation**: ``search finalize`` retrains the study's best ``--top``
   (non-dominated rank, then validation accuracy) of those whose training fits
   what is left of the ``--hours`` (``--max-hours``: each training's share of
   the cores, at the speed its trial trained at in the search, less a tenth for
   validation passes and for sharing; the headline search's most accurate
   model, 32.9 M MACs, would take 7.6 h per 200-epoch training on one core)
   with the toolkit's recipe
   (one-cycle, random crops and flips, label smoothing) for ``--epochs`` on
   the training split less ``HELD_OUT`` validation images (the search's
   validation split), ``--seeds`` seeds each, and tests each once,
   into ``<name>/final-<epochs>-epochs/`` (a budget per folder, so a longer
   schedule comes beside a shorter one). ``--final-workers`` processes share
   the trainings (``--shard``), each with its share of the cores. A finished
   (model, seed) is never retrained, and one cut short continues after its
   last whole epoch (``search.post.full_training``'s training-state.pt).
3. **Weight averaging** (with ``--swa-epochs S``): a second finalisation
   starts from each model and seed's weights in ``final-<epochs>-epochs/``
   and trains S more epochs at the constant rate ``--swa-lr``, averaging the
   weights of each (SWA, Izmailov et al. 2018), into
   ``final-<epochs>-epochs-swa-<S>/``.

``benchmarks/results/<name>.json`` is rewritten when a finalisation ends or
is stopped: the last command, the search's front, every stage's trainings per
seed (held-out validation and test accuracy, params and MACs), the best model
under 100K parameters, and the wall time of the search and of each budget's
finalisation, all of which count towards the target's 6 hours. The best (model, stage)
is the one of best mean accuracy on the held-out validation images, never on
the test set; its test accuracy is reported once, as it stands (mean and
spread over seeds). A stage trained on every training image (as the committed
stages were, before this rule) records no validation accuracy and is not chosen.

    python benchmarks/headline.py                 # run or resume both phases
    python benchmarks/headline.py --summary-only  # rewrite the JSON from what is there
    python benchmarks/headline.py --name headline-validated --epochs 200 --seeds 3 --final-workers 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from evaluation.atomic import atomic_write
from search import Budget, Pruning, StudySpec, Workers, run_search
from search.execution.interrupts import sigterm_as_interrupt
from search.pareto import front_trials
from search.post.final_results import FINAL_CSV, final_rows
from search.storage.records import TrialRecord
from search.storage.studies import busy_seconds, make_storage, storage_url, study_dir
from spaces import load_space
from spaces.space import Constraints

from result_cache import pack_journal, unpacked_journal

HERE = Path(__file__).resolve().parent / "results"
STUDY = "headline"  # the default --name: the study, its folder under HERE and its JSON file beside it
MAX_PARAMS = 100_000
# Training images each final training holds out, to choose among stages without the test set: the
# search's validation split (a tenth of Fashion-MNIST's 60,000, seed 0), so every stage holds out the same.
HELD_OUT = 6_000
BASELINES = ("small_dense",)  # the space's DenseNet-BC (98.5 K parameters): the first trial, a known start


def headline_space():
    """``densenet_hybrid`` with at most ``MAX_PARAMS`` parameters."""
    space = load_space("densenet_hybrid")
    limits = {**space.constraints.limits, "params": MAX_PARAMS}
    return dataclasses.replace(space, constraints=Constraints(limits))


def _use_results_folder() -> None:
    """Keep the studies in ``benchmarks/results/``: their state outlives a clone."""
    os.environ["SEARCH_STUDIES_DIR"] = str(HERE)


def results_file(name: str) -> Path:
    return HERE / f"{name}.json"


def journal(name: str) -> Path:
    """The study's journal, committed gzipped (journal.log.gz) and unpacked beside it to work in."""
    return HERE / name / "journal.log"


def _storage(name: str) -> str:
    return storage_url(name, None, workers=2)  # the journal file: the search may run with --workers 2


def search(args: argparse.Namespace, log: Callable[[str], None]) -> optuna.Study:
    url = _storage(args.name)
    try:
        study = optuna.load_study(study_name=args.name, storage=make_storage(url))
        spent = busy_seconds(study.trials)
    except KeyError:
        spent = 0.0
    left = args.search_minutes * 60 - spent
    if left <= 0:
        log(f"search: done ({spent / 60:.0f} min spent)")
        return optuna.load_study(study_name=args.name, storage=make_storage(url))
    log(f"search: {left / 60:.0f} of {args.search_minutes} min left")
    try:
        return run_search(
            space=headline_space(), study=StudySpec(args.name, storage=url, enqueue=BASELINES, command=shlex.join(sys.argv)),
            budget=Budget(trials=100_000, timeout=left), seed=args.seed, workers=Workers(count=args.workers),
            pruning=Pruning("none"), on_trial=lambda study, trial: log(_trial_line(study, trial, args.search_minutes)),
        )  # fmt: skip
    finally:
        pack_journal(journal(args.name))


def _trial_line(study: optuna.Study, trial: FrozenTrial, minutes: float) -> str:
    """One progress line per finished trial: what it scored and how much of the search is spent."""
    record = TrialRecord.load(trial)
    scored = f"({record.reason}), " if record.reason else f"validation accuracy {trial.values[0]:.4f}, "
    sizes = f"{record.params or 0:,} params, {(record.macs or 0) / 1e6:.1f} M MACs"
    spent = busy_seconds(study.get_trials(deepcopy=False)) / 60
    return f"trial {trial.number} {record.outcome}: {scored}{sizes}; search {spent:.0f} of {minutes:.0f} min"


def final_folder(epochs: int) -> str:
    """The folder of the finalisation at ``epochs`` epochs, under the study's."""
    return f"final-{epochs}-epochs"


def swa_folder(epochs: int, swa_epochs: int) -> str:
    """The folder of the weight-averaging stage on top of ``final_folder(epochs)``."""
    return f"{final_folder(epochs)}-swa-{swa_epochs}"


def stages(epochs: int, swa_epochs: int = 0, swa_lr: float = 0.0) -> list[tuple[str, list[str]]]:
    """(folder, ``search finalize`` arguments) of each finalisation stage, in order."""
    main = final_folder(epochs)
    held_out = ["--validation-size", str(HELD_OUT)]
    plan = [(main, ["--epochs", str(epochs), *held_out])]
    if swa_epochs:
        swa = ["--init-from", main, "--epochs", str(swa_epochs), "--schedule", "constant",
               "--lr", str(swa_lr), "--swa-epochs", str(swa_epochs), *held_out]  # fmt: skip
        plan.append((swa_folder(epochs, swa_epochs), swa))
    return plan


# What a finalisation keeps aside of its hours for what the search's speed does not time: a validation
# pass every epoch, the test and the export, and processes sharing cores.
OVERHEAD = 0.1


def hours_per_training(hours_left: float, trainings: int, cores: int) -> float:
    """The longest one training may take on one core for ``trainings`` to share ``cores`` in ``hours_left``."""
    return hours_left * min(cores, trainings) / trainings * (1 - OVERHEAD)


def side_by_side(commands: list[list[str]], env: dict[str, str]) -> list[int]:
    """Run ``commands`` at once and wait for them; their exit codes.

    A stop of this process (Ctrl-C, or SIGTERM sent to it alone, as a
    scheduler may) is passed on to each process still running as SIGTERM, and
    raised once they have all ended: ``search finalize`` stops on it, keeping
    its last whole epoch, and none trains on unwatched. Not as Ctrl-C: a run
    started in the background (``nohup ... &``) ignores SIGINT, and so do the
    processes it starts.
    """
    processes = [subprocess.Popen(command, env=env) for command in commands]
    try:
        return [process.wait() for process in processes]
    except KeyboardInterrupt:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            process.wait()
        raise


def finalize(args: argparse.Namespace, folder: str, stage: list[str], log: Callable[[str], None],
             max_hours: float) -> None:  # fmt: skip
    """``search finalize`` into ``folder`` in ``--final-workers`` processes side by side, one shard each,
    of the best models one training of which fits ``max_hours``."""
    workers = args.final_workers
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    command = [sys.executable, "-m", "search", "finalize", args.name, "--top", str(args.top), "--seeds",
               str(args.seeds), "--folder", folder, "--max-hours", f"{max_hours:.3f}", *stage]  # fmt: skip
    log(f"finalisation: {shlex.join(command[1:])} in {workers} processes of {threads} threads")
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    codes = side_by_side([[*command, "--shard", f"{i}/{workers}"] for i in range(workers)], env)
    if any(codes):
        raise SystemExit(f"error: finalisation stopped (exit codes {codes}); run again to continue")


def _trained(name: str, folder: str) -> int:
    """Rows in ``folder``'s final.csv: its finished trainings."""
    table = study_dir(name) / folder / FINAL_CSV
    return len(pd.read_csv(table)) if table.is_file() else 0


# What the summary keeps of each training (``final_trainings``): the toolkit's final.csv row, and its stage.
STAGE_COLUMNS = ["model", "folder", "epochs", "seed", "params", "macs", "latency_ms", "train_seconds", "diverged",
                 "search_val_accuracy", "val_accuracy", "test_accuracy"]  # fmt: skip


def final_trainings(name: str = STUDY) -> pd.DataFrame:
    """One row per finished training of every stage (``final-*/``, as its final.csv has it), with the
    model's accuracy on the held-out validation images (``val_accuracy``, None when it trained on them all)."""
    stages = [final_rows(folder).assign(folder=folder.name) for folder in sorted(study_dir(name).glob("final-*/"))]
    trained = [stage for stage in stages if not stage.empty]
    return pd.concat(trained, ignore_index=True)[STAGE_COLUMNS] if trained else pd.DataFrame(columns=STAGE_COLUMNS)


def best_under_limit(rows: pd.DataFrame) -> dict[str, Any] | None:
    """The model and stage (final folder) within ``MAX_PARAMS`` of best mean held-out validation accuracy.

    ``rows``: ``final_trainings()``. The test accuracy chooses nothing: the chosen
    one's is reported (mean and spread over its seeds). None when no stage within
    the limit recorded a validation accuracy.
    """
    small = rows[(rows["params"] <= MAX_PARAMS) & rows["val_accuracy"].notna()]
    if small.empty:
        return None
    per_model = small.groupby(["model", "folder"]).agg(
        val_mean=("val_accuracy", "mean"),
        test_mean=("test_accuracy", "mean"),
        test_std=("test_accuracy", "std"),
        seeds=("test_accuracy", "count"),
    )
    model, folder = per_model["val_mean"].idxmax()
    stats, chosen = (
        per_model.loc[(model, folder)],
        small[(small["model"] == model) & (small["folder"] == folder)].iloc[0],
    )
    return {"model": model, "folder": folder, "epochs": int(chosen["epochs"]), "seeds": int(stats["seeds"]),
            "val_accuracy_mean": float(stats["val_mean"]), "test_accuracy_mean": float(stats["test_mean"]),
            "test_accuracy_std": float(stats["test_std"]), "params": int(chosen["params"]),
            "macs": int(chosen["macs"])}  # fmt: skip


def summary(study: optuna.Study, command: str, finalisations: dict[str, float]) -> dict[str, Any]:
    front = []
    for trial in front_trials(study):
        record = TrialRecord.load(trial)
        front.append({"trial": trial.number, "val_accuracy": trial.values[0], "params": record.params,
                      "macs": record.macs, "architecture": record.architecture})  # fmt: skip
    rows = final_trainings(study.study_name)
    search_minutes = busy_seconds(study.trials) / 60
    return {
        "command": command,
        "target": {"max_params": MAX_PARAMS, "test_accuracy": 0.945, "seeds": 3, "hours": 6},
        "search_minutes": search_minutes,
        "finalize_minutes": finalisations,
        "total_hours": (search_minutes + sum(finalisations.values())) / 60,
        "trials": len(study.trials),
        "front": front,
        "final": rows.astype(object).where(rows.notna(), None).to_dict("records"),  # NaN is no JSON
        "best_under_100k": best_under_limit(rows),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search-minutes", type=float, default=60, help="Search wall time in all (default: 60).")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="Search worker processes (default: 2; on 2 cores two 1-thread processes trained 1.44-1.50x the images "
        "of one 2-thread process: docs/results/checks.md).",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=1,
        help="Models finalized (default: 1; on 2 cores two 80-epoch trainings of the 4.4 M-MACs winner side by "
        "side took 79 min, about 1,050 images/s each; a 17 M-MACs model trains at 211 images/s on one thread "
        "(benchmarks/results/fidelity.json), so a second model x 2 seeds would not fit in 4 h).",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=80,
        help="Epochs of each final training (default: 80; it beat 20 epochs by 1.0 and 0.8 points on seeds 0 and 1).",
    )
    parser.add_argument("--seeds", type=int, default=2, help="Seeds per final model (default: 2).")
    parser.add_argument(
        "--swa-epochs",
        type=int,
        default=0,
        help="Epochs of weight averaging after the finalisation, from its weights (default: 0, none).",
    )
    parser.add_argument(
        "--swa-lr",
        type=float,
        default=0.01,
        help="The constant rate of the weight-averaging epochs (default: 0.01; on the 80-epoch models, 20 epochs "
        "at 0.01 held test accuracy level, 40 at 0.15, the SWA paper's half of the peak, lost 2.7 points).",
    )
    parser.add_argument(
        "--final-workers", type=int, default=2, help="Finalisation processes side by side (default: 2)."
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=6.0,
        help="Wall time of the whole run, search and finalisation (default: 6, the target's); what the search "
        "leaves bounds the models finalized.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the search (default: 0).")
    parser.add_argument(
        "--name",
        default=STUDY,
        help=f"The run: its study, its folder in {HERE.name}/ and its JSON file there (default: {STUDY}, the run "
        "made before held-out validation; a new run under the rule takes a new name).",
    )
    parser.add_argument("--summary-only", action="store_true", help="Run nothing; rewrite the JSON.")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    _use_results_folder()
    unpacked_journal(journal(args.name))  # where the search and `search finalize` open the study
    results = results_file(args.name)
    previous = json.loads(results.read_text()) if results.is_file() else {}
    finalisations: dict[str, float] = previous.get("finalize_minutes", {})
    # The command that made the results; a rewrite of the summary keeps the last one.
    options = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "summary_only")
    command = previous.get("command", "") if args.summary_only else f"python benchmarks/headline.py {options}"

    def write_summary(study: optuna.Study) -> None:
        with atomic_write(results) as temporary:
            temporary.write_text(json.dumps(summary(study, command, finalisations), indent=1, default=str) + "\n")

    if args.summary_only:
        write_summary(optuna.load_study(study_name=args.name, storage=make_storage(_storage(args.name))))
    else:
        try:
            with sigterm_as_interrupt():  # as Ctrl-C: a finalisation cut short still records its minutes
                run(args, log, finalisations, write_summary)
        except KeyboardInterrupt as stop:
            log(f"{stop or 'stopped by Ctrl-C'}; the same command continues where it stopped")
            return getattr(stop, "exit_code", 130)
    print(results.read_text())
    return 0


def run(args: argparse.Namespace, log: Callable[[str], None], finalisations: dict[str, float],
        write_summary: Callable[[optuna.Study], None]) -> None:  # fmt: skip
    """The search, then each finalisation stage not yet done; ``finalisations`` gains each stage's minutes."""
    study = search(args, log)
    for folder, stage in stages(args.epochs, args.swa_epochs, args.swa_lr):
        if _trained(args.name, folder) >= args.top * args.seeds:
            log(f"{folder}: done")
            continue
        # The hours left when the stage began, the same when it resumes, so its choice of model holds.
        before = sum(minutes for name, minutes in finalisations.items() if name != folder)
        spent = busy_seconds(study.trials) / 3600 + before / 60
        if spent >= args.hours:
            raise SystemExit(f"error: {spent:.1f} of the {args.hours:g} h are spent; none is left for {folder}")
        max_hours = hours_per_training(args.hours - spent, args.top * args.seeds, os.cpu_count() or 1)
        started = time.perf_counter()
        try:
            finalize(args, folder, stage, log, max_hours)
        finally:  # an interrupted finalisation's minutes count too
            finalisations[folder] = finalisations.get(folder, 0.0) + (time.perf_counter() - started) / 60
            write_summary(study)


if __name__ == "__main__":
    raise SystemExit(main())
