"""ONNX Runtime latency against MACs and PyTorch latency, on the fidelity panel of the default space.

The 24 architectures of ``benchmarks/fidelity.py``'s panel (read from its
cache, ``results/fidelity.json``: seeded, spread over the MACs range) are each
built and timed in eager PyTorch (``evaluation.profile.measure_latency``:
rounds until their medians agree, with one thread in the thread's CPU time),
exported and timed in onnxruntime on the CPU at batch 1 the same way
(``evaluation.onnx_latency``); both also in wall time, and PyTorch the way
trials were timed before (one round in wall time: the median of 5 calls
after 2 warm-ups). Every timing runs twice, in two passes over the panel
minutes apart, so the test-retest agreement of each way of timing can be
read: on a shared machine the question is whether a measurement repeats,
more than its absolute value.

It reports what a trial pays for ``onnx_latency_ms`` (export and timing
seconds), Spearman's rho with 95% bootstrap intervals of ONNX latency against
MACs and against PyTorch latency (and of PyTorch latency against MACs), the
ratio ONNX / PyTorch per model, and for each way of timing the rank agreement
of its two passes and the largest ratio between them:

    OMP_NUM_THREADS=1 python benchmarks/latency_panel.py   # writes results/latency_panel.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from scipy import stats

from evaluation import Architecture, build_model, count
from evaluation.onnx_latency import onnx_session, session_latency
from evaluation.profile import Latency, Timing, measure_latency
from spaces import load_space

RESULTS = Path(__file__).resolve().parent / "results"
PANEL = RESULTS / "fidelity.json"
# What the objective passed before the spread check: 5 timed calls after 2 warm-ups, one round.
TRIAL_REPEATS = 5
PASSES = 2
# torch and onnx: as the toolkit times them, rounds until they agree, with one thread in the
# thread's CPU time (evaluation.profile.latency_clock); torch_wall and onnx_wall: the same in wall
# time; legacy: one round in wall time, as trials were timed before.
KINDS = ("torch", "legacy", "torch_wall", "onnx", "onnx_wall")


def _legacy_latency(model: torch.nn.Module, input_size: tuple[int, int, int]) -> Latency:
    """The timing trials had before: the median of one round of ``TRIAL_REPEATS`` calls, wall time."""
    one_round = Timing(repeats=TRIAL_REPEATS, rounds=1, max_rounds=1)
    return measure_latency(model, input_size, timing=one_round, clock=time.perf_counter)


def _timed(measure: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = measure()
    return result, time.perf_counter() - started


def time_member(model: torch.nn.Module, input_size: tuple[int, int, int]) -> dict[str, Any]:
    """One pass of every timing of one model; the ONNX export is made afresh, as a trial makes it."""
    trial = Timing(repeats=TRIAL_REPEATS)  # as a trial times
    torch_latency, torch_seconds = _timed(lambda: measure_latency(model, input_size, timing=trial))
    legacy, legacy_seconds = _timed(lambda: _legacy_latency(model, input_size))
    wall = measure_latency(model, input_size, timing=trial, clock=time.perf_counter)
    session, export_seconds = _timed(lambda: onnx_session(model, input_size))
    onnx, onnx_seconds = _timed(lambda: session_latency(session, input_size, timing=trial))
    onnx_wall = session_latency(session, input_size, timing=trial, clock=time.perf_counter)
    return {
        "torch": dataclasses.asdict(torch_latency),
        "legacy": dataclasses.asdict(legacy),
        "torch_wall": dataclasses.asdict(wall),
        "onnx": dataclasses.asdict(onnx),
        "onnx_wall": dataclasses.asdict(onnx_wall),
        "seconds": {
            "torch": torch_seconds,
            "legacy": legacy_seconds,
            "onnx_export": export_seconds,
            "onnx_timing": onnx_seconds,
        },
    }


def bootstrap_spearman(x: np.ndarray, y: np.ndarray, *, rounds: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Spearman's rho and its 95% bootstrap interval (members resampled with replacement)."""
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(rounds):
        pick = rng.integers(0, len(x), len(x))
        if len(np.unique(x[pick])) > 1 and len(np.unique(y[pick])) > 1:
            boot.append(stats.spearmanr(x[pick], y[pick]).statistic)
    return {
        "spearman": float(stats.spearmanr(x, y).statistic),
        "spearman_95ci": [float(np.percentile(boot, q)) for q in (2.5, 97.5)],
        "n": len(x),
    }


def _spread_summary(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "median": statistics.median(values), "max": max(values)}


def _ratio_summary(ratios: np.ndarray) -> dict[str, float]:
    return {"median": float(np.median(ratios)), "min": float(ratios.min()), "max": float(ratios.max())}


def summarise(members: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Costs, rank correlations (first pass) and the test-retest agreement of each way of timing."""
    names = sorted(members)
    macs = np.array([members[n]["macs"] for n in names], dtype=float)
    first = {kind: np.array([members[n]["passes"][0][kind]["ms"] for n in names]) for kind in KINDS}
    passes = [p for n in names for p in members[n]["passes"]]
    seconds = {part: [p["seconds"][part] for p in passes] for part in passes[0]["seconds"]}
    summary: dict[str, Any] = {
        "members": len(names),
        "cost_seconds_per_trial": {
            "onnx_latency_ms (export and timing)": _spread_summary(
                [e + t for e, t in zip(seconds["onnx_export"], seconds["onnx_timing"])]
            ),
            **{part: _spread_summary(values) for part, values in seconds.items()},
        },
        "rank_correlation": {
            "onnx_vs_macs": bootstrap_spearman(first["onnx"], macs),
            "onnx_vs_torch": bootstrap_spearman(first["onnx"], first["torch"]),
            "torch_vs_macs": bootstrap_spearman(first["torch"], macs),
            "onnx_wall_vs_macs": bootstrap_spearman(first["onnx_wall"], macs),
            "onnx_wall_vs_torch_wall": bootstrap_spearman(first["onnx_wall"], first["torch_wall"]),
            "torch_wall_vs_macs": bootstrap_spearman(first["torch_wall"], macs),
            "legacy_vs_macs": bootstrap_spearman(first["legacy"], macs),
        },
        "onnx_over_torch": _ratio_summary(first["onnx"] / first["torch"]),
        "onnx_wall_over_torch_wall": _ratio_summary(first["onnx_wall"] / first["torch_wall"]),
    }
    if all(len(members[n]["passes"]) > 1 for n in names):
        retest = {}
        for kind in KINDS:
            a, b = first[kind], np.array([members[n]["passes"][1][kind]["ms"] for n in names])
            ratio = np.maximum(a, b) / np.minimum(a, b)
            retest[kind] = bootstrap_spearman(a, b) | {
                "largest_ratio_between_passes": float(ratio.max()),
                "members_over_1.5x_apart": int((ratio > 1.5).sum()),
                "median_ratio_between_passes": float(np.median(ratio)),
            }
        summary["test_retest"] = retest
    checked = [kind for kind in KINDS if kind != "legacy"]
    summary["spread"] = {
        kind: _spread_summary([p[kind]["spread"] for p in passes])
        | {"unsettled": sum(not p[kind]["settled"] for p in passes)}
        for kind in checked
    }
    summary["rounds"] = {kind: _spread_summary([p[kind]["rounds"] for p in passes]) for kind in checked}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", type=Path, default=PANEL, help=f"fidelity.py's cache (default: {PANEL}).")
    parser.add_argument("--members", type=int, help="Only the first N members, by name (default: all).")
    parser.add_argument("--passes", type=int, default=PASSES, help=f"Timings of each member (default: {PASSES}).")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency_panel.json", help="The results file.")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    space = load_space("densenet_hybrid")
    panel = json.loads(args.panel.read_text())["panel"]
    names = sorted(panel)[: args.members]
    load_before = os.getloadavg()
    members: dict[str, dict[str, Any]] = {}
    for name in names:
        counts = count(Architecture.from_dict(panel[name]["architecture"]), space.input_size, space.num_classes)
        members[name] = {"params": counts.params, "macs": counts.macs, "passes": []}
    # Pass after pass over the whole panel, so the two timings of a model are minutes apart.
    for number in range(1, args.passes + 1):
        for done, name in enumerate(names, start=1):
            torch.manual_seed(0)
            model = build_model(
                Architecture.from_dict(panel[name]["architecture"]), space.input_size, space.num_classes
            )
            members[name]["passes"].append(timing := time_member(model, space.input_size))
            print(
                f"[pass {number} {done}/{len(names)}] {name}: {members[name]['macs'] / 1e6:.1f} M MACs, "
                f"torch {timing['torch']['ms']:.2f} ms, onnx {timing['onnx']['ms']:.2f} ms "
                f"({timing['seconds']['onnx_export'] + timing['seconds']['onnx_timing']:.1f} s to export and time)",
                file=sys.stderr,
                flush=True,
            )
    result = {
        "settings": {
            "space": "densenet_hybrid",
            "panel": "benchmarks/results/fidelity.json (24 members, seed 0)",
            "batch_size": 1,
            "threads": torch.get_num_threads(),
            "repeats_per_round": TRIAL_REPEATS,
            "passes": args.passes,
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "load_average_before_after": [load_before[0], os.getloadavg()[0]],
            "machine": f"{os.cpu_count()} CPU cores shared with other jobs: compare ratios and ranks, not absolute times",
        },
        "members": members,
        "summary": summarise(members),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
