"""bf16 autocast against fp32 on this CPU: training speed and accuracy at a search trial's budget.

Trains the default space's DenseNet-BC baseline (``small_dense``) at the
space's trial budget (1 epoch on 20% of the training split, its recipe, seed
0) with ``precision`` fp32 and bf16, alternating, ``--rounds`` times each, on
``--threads`` threads (default 1). Each training's speed is its images per
CPU-second of this process over the whole ``train`` call, validation included
(``time.process_time``), beside the epoch's images per wall second: on a machine other processes share, the wall rate falls with the load
and the CPU rate much less. The fastest round of each counts. Writes
``benchmarks/results/precision.json``: both rates and the validation accuracy
of every round, the load average, and the speed ratio by CPU time.
bf16 is a speed-up only on CPUs with native bf16 (AVX-512 BF16 or AMX); the
JSON says whether this one has it.

    python benchmarks/precision.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from evaluation import build_model, train
from evaluation.atomic import atomic_write
from evaluation.data import load_dataset
from spaces import load_space

RESULTS = Path(__file__).resolve().parent / "results" / "precision.json"
SPACE, BASELINE = "densenet_hybrid", "small_dense"
PRECISIONS = ("fp32", "bf16")


def native_bf16() -> bool:
    """Whether this CPU has AVX-512 BF16 or AMX, where ``precision auto`` picks bf16."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.is_file() else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="Trainings per precision, alternating (default: 2).")
    parser.add_argument("--threads", type=int, default=1, help="torch's threads (default: 1).")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    space = load_space(SPACE)
    data = load_dataset(space.dataset, validation_size=0.1, seed=0)
    config = space.training.config(device="cpu", seed=0)
    rounds: dict[str, list[dict[str, float]]] = {precision: [] for precision in PRECISIONS}
    for _ in range(args.rounds):
        for precision in PRECISIONS:
            torch.manual_seed(0)
            model = build_model(space.baseline(BASELINE), space.input_size, space.num_classes)
            started = time.process_time()
            result = train(model, data, dataclasses.replace(config, precision=precision))
            images = result.epochs[-1].images_per_second * result.epochs[-1].seconds
            rounds[precision].append({"images_per_cpu_second": images / (time.process_time() - started),
                                      "images_per_second": result.epochs[-1].images_per_second,
                                      "val_accuracy": result.val_accuracies[-1]})  # fmt: skip
    best = {precision: max(r["images_per_cpu_second"] for r in runs) for precision, runs in rounds.items()}
    summary = {
        "command": "python benchmarks/precision.py",
        "model": f"{SPACE}:{BASELINE}",
        "budget": {"epochs": config.epochs, "train_fraction": config.train_fraction},
        "native_bf16": native_bf16(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "rounds": rounds,
        "bf16_speedup": best["bf16"] / best["fp32"],
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_write(RESULTS) as temporary:
        temporary.write_text(json.dumps(summary, indent=1) + "\n")
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
