"""Validation accuracy at the rungs of successive halving, one-cycle against cosine, on Fashion-MNIST.

With a one-cycle schedule over the whole budget, the rate is still rising at a
ninth of it and at its peak at a third (OneCycleLR peaks at 30%); the cosine
schedule (5% linear warm-up) is near its peak at a ninth and at 80% of it at a
third. Either way a rung measures a network mid-schedule, and what matters to
MO-ASHA is whether the networks rank at a rung as they rank at the end.

This trains a few architectures of ``spaces/densenet_hybrid.yaml`` (its
``small_dense`` baseline and a few sampled ones that pass its constraints)
with the space's trial budget (``training:`` in the YAML, 1 epoch on 20% of
the training split), validating at the rungs of ``search.pruners.Pruning``
(1/9 and 1/3 of the budget, eta 3) and at the end, once per schedule, each
run from the same initial weights. One CPU thread (the machine is shared).

Writes ``benchmarks/results/rung_schedules.json``: per architecture and
schedule the accuracy at each rung and at the end, and per schedule and rung
the Kendall rank correlation (tau-b, ``search.pareto.kendall``; null when a
rung's accuracies all tie) between rung and final accuracies and whether
the rung's best network is the final best.

    python benchmarks/rung_schedules.py            # small_dense + 3 sampled, a few minutes
    python benchmarks/rung_schedules.py --sampled 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import optuna
import torch

from evaluation import Architecture, TrainConfig, build_model, count, planned_images, train
from evaluation.data import load_dataset
from search.execution.run_data import VALIDATION_SIZE
from search.pareto import kendall
from search.pruners import Pruning
from spaces import load_space, precheck, sample_architecture

SCHEDULES = ("onecycle", "cosine")
RESULTS = Path(__file__).parent / "results" / "rung_schedules.json"


def sampled_architectures(space_name: str, count_wanted: int, seed: int, max_macs: int) -> list[Architecture]:
    """Architectures a random sampler draws from the space that pass its constraints and stay under ``max_macs``."""
    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    found: list[Architecture] = []
    while len(found) < count_wanted:
        arch = sample_architecture(space, study.ask())
        if precheck(space, arch) is None and count(arch, space.input_size, space.num_classes).macs <= max_macs:
            found.append(arch)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sampled", type=int, default=3, help="Sampled architectures besides small_dense.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-macs", type=int, default=25_000_000, help="Sampled ones stay under this (time).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    space = load_space("densenet_hybrid")
    data = load_dataset(space.dataset, validation_size=VALIDATION_SIZE, seed=args.seed)
    budget = space.training
    base = TrainConfig(
        epochs=budget.epochs,
        train_fraction=budget.train_fraction,
        batch_size=budget.batch_size,
        lr=budget.lr,
        device="cpu",
        seed=args.seed,
    )
    planned = planned_images(data, base)
    pruning = Pruning(kind="asha")
    rungs = pruning.rungs(planned)
    architectures = {"small_dense": space.baseline("small_dense")}
    for i, arch in enumerate(sampled_architectures("densenet_hybrid", args.sampled, args.seed, args.max_macs)):
        architectures[f"sampled_{i}"] = arch

    runs: dict[str, dict[str, object]] = {}
    load_before, started = os.getloadavg()[0], time.perf_counter()
    for name, arch in architectures.items():
        runs[name] = {"architecture": arch.describe(), "macs": count(arch, space.input_size, space.num_classes).macs}
        for schedule in SCHEDULES:
            config = dataclasses.replace(base, schedule=schedule)
            torch.manual_seed(args.seed)
            model = build_model(arch, space.input_size, space.num_classes)
            result = train(model, data, config, checkpoints=rungs)
            accuracies = [c.val_accuracy for c in result.checkpoints[: len(rungs)]] + [result.val_accuracies[-1]]
            runs[name][schedule] = {"accuracies": accuracies, "train_seconds": round(result.train_seconds, 1)}
            print(
                f"{name} {schedule}: {' '.join(f'{a:.4f}' for a in accuracies)} ({result.train_seconds:.0f} s)",
                flush=True,
            )

    fractions = [f"{images / planned:.3f}" for images in (*rungs, planned)]
    agreement: dict[str, dict[str, object]] = {}
    for schedule in SCHEDULES:
        table = [runs[name][schedule]["accuracies"] for name in architectures]  # type: ignore[index]
        final = [row[-1] for row in table]
        best_final = max(range(len(final)), key=final.__getitem__)
        agreement[schedule] = {
            fraction: {
                "kendall_tau_with_final": kendall([row[k] for row in table], final),
                "best_at_rung_is_best_at_end": max(range(len(table)), key=lambda i: table[i][k]) == best_final,
            }
            for k, fraction in enumerate(fractions[:-1])
        }
        agreement[schedule]["mean_final_accuracy"] = sum(final) / len(final)
    report = {
        "space": "densenet_hybrid",
        "budget": {"planned_images": planned, "rungs": list(rungs), "fractions": fractions, **vars(budget)},
        "threads": args.threads,
        "load_average_before": round(load_before, 2),
        "seconds": round(time.perf_counter() - started, 1),
        "runs": runs,
        "agreement": agreement,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(agreement, indent=2))


if __name__ == "__main__":
    main()
