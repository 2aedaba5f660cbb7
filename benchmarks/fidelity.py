"""What brief training predicts: cheap signals against a reference budget, on a panel of the default space.

A panel of architectures is drawn from ``densenet_hybrid`` (seeded; a large
random pool is sorted by MACs and picked at evenly spaced quantiles, so it
spans the MACs range; the space's baselines join it). Each is trained on
Fashion-MNIST at the reference budget (``--reference-epochs`` on the whole
training split, less the tenth held out for validation) and at the cheap
budgets a search could use: one epoch on 10%, 20% and 50% of it, each with
its own one-cycle schedule. Checkpoints inside runs give the accuracies a
successive-halving rung sees: a ninth and a third of the 50% run, and a third
of an epoch of the reference run. Every accuracy is on the same validation
split; the test set is never touched. Zero-cost proxies (``evaluation.proxies``)
are scored on one mini-batch at initialisation.

Each finished (architecture, budget) is cached at once in the JSON file, so a
killed run resumes where it stopped. The summary (Spearman and Kendall rank
correlation with the reference accuracy, with bootstrap intervals, and how
many of the reference top 5 each signal's top 5 holds, for every signal and
for params and MACs alone; then what each signal knows beyond the model's size:
its Spearman minus that of params, and its partial Spearman given params, the
ranking among models of one size that a front needs) is recomputed from the
cache on every run:

    python benchmarks/fidelity.py                 # train what is missing, then summarise
    python benchmarks/fidelity.py --summary-only  # summarise the cache as it is

On 2 cores, two 1-thread shards side by side train 1.4x the images of one run:

    python benchmarks/fidelity.py --shard 0/2 --threads 1 &
    python benchmarks/fidelity.py --shard 1/2 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from evaluation import Architecture, build_model, count, planned_images, train
from evaluation.data import DataSplits, load_dataset
from evaluation.proxies import PROXIES, measure_proxies, proxy_batch
from search.commands._common import shard
from search.pareto import kendall, spearman
from search.storage.records import architecture_key
from spaces import Space, load_space, precheck, sample_architecture

from result_cache import load_cache, save_cache

RESULTS = Path(__file__).resolve().parent / "results" / "fidelity.json"
VALIDATION_SIZE = 0.1  # as search.run: a tenth of the training split validates
TOP = 5


@dataclasses.dataclass(frozen=True)
class Budget:
    """One training run of a panel member: ``epochs`` on ``fraction`` of the split, with checkpoints."""

    name: str
    epochs: int
    fraction: float
    checkpoints: tuple[tuple[str, float], ...] = ()  # (signal name, fraction of this run's images)


def budgets(reference_epochs: int) -> list[Budget]:
    """The reference run first, then the cheap runs, smallest last (it is the search's default today)."""
    return [
        Budget(f"ref_{reference_epochs}ep", reference_epochs, 1.0, (("third_epoch_of_ref", 1 / (3 * reference_epochs)),
                                                                    ("epoch1_of_ref", 1 / reference_epochs))),
        Budget("1ep_50pct", 1, 0.5, (("ninth_of_1ep_50pct", 1 / 9), ("third_of_1ep_50pct", 1 / 3))),
        Budget("1ep_20pct", 1, 0.2, (("ninth_of_1ep_20pct", 1 / 9), ("third_of_1ep_20pct", 1 / 3))),
        Budget("1ep_10pct", 1, 0.1),
    ]  # fmt: skip


def draw_panel(space: Space, size: int, seed: int, pool: int = 400) -> list[tuple[str, Architecture]]:
    """``size`` architectures: the baselines, then random ones at evenly spaced MACs quantiles of a pool."""
    panel = [(name, arch) for name, arch in space.baselines.items()]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn: dict[str, tuple[int, Architecture]] = {}
    for _ in range(pool * 3):
        if len(drawn) >= pool:
            break
        arch = sample_architecture(space, study.ask())
        if precheck(space, arch) is None:
            drawn.setdefault(
                architecture_key(arch.to_dict()), (count(arch, space.input_size, space.num_classes).macs, arch)
            )
    ordered = sorted(drawn.values(), key=lambda item: item[0])
    wanted = size - len(panel)
    picks = np.unique(np.round(np.linspace(0, len(ordered) - 1, wanted)).astype(int))
    panel += [(f"sample_{i:03d}", ordered[i][1]) for i in picks]
    return panel


def train_budget(
    arch: Architecture, space: Space, data: DataSplits, budget: Budget, seed: int, state_file: Path | None = None
) -> dict[str, Any]:
    """Train a fresh copy of ``arch`` at ``budget``: final and checkpoint validation accuracies, seconds.

    With ``state_file`` (``evaluation.train``'s), a run killed after an epoch continues from it.
    """
    config = space.training.config(epochs=budget.epochs, train_fraction=budget.fraction, seed=seed)
    total = planned_images(data, config)
    marks = {name: max(1, math.ceil(share * total)) for name, share in budget.checkpoints}
    torch.manual_seed(seed)
    model = build_model(arch, space.input_size, space.num_classes)
    started = time.perf_counter()
    result = train(model, data, config, checkpoints=sorted(marks.values()), state_file=state_file)
    reached = {c.images: c.val_accuracy for c in result.checkpoints}
    accuracy_at = {
        name: next(acc for seen, acc in sorted(reached.items()) if seen >= mark) for name, mark in marks.items()
    }
    return {
        "val_accuracy": result.val_accuracies[-1] if result.val_accuracies else None,
        "checkpoints": accuracy_at,
        "images": total,
        "seconds": time.perf_counter() - started + result.resumed_seconds,
        "diverged": result.diverged,
        "settings": {
            k: getattr(config, k) for k in ("epochs", "train_fraction", "batch_size", "lr", "schedule", "seed")
        },
    }


def proxy_scores(
    arch: Architecture, space: Space, data: DataSplits, seed: int, names: list[str] | None = None
) -> dict[str, float | None]:
    """Zero-cost proxies at initialisation (``names``: all), on the mini-batch a trial of this seed would use."""
    torch.manual_seed(seed)
    model = build_model(arch, space.input_size, space.num_classes)
    images, labels = proxy_batch(data, seed=seed)
    return measure_proxies(model, images, labels, names)[0]


# --- the summary ---------------------------------------------------------------------


def signals(entry: dict[str, Any], reference: str) -> dict[str, float]:
    """Every cheap signal of one panel member (higher is better for each), the reference excluded."""
    found: dict[str, float] = {"params (fewer is better)": -entry["params"], "macs (fewer is better)": -entry["macs"],
                               "params (more is better)": entry["params"], "macs (more is better)": entry["macs"]}  # fmt: skip
    for name, run in entry["runs"].items():
        if name != reference and run["val_accuracy"] is not None:
            found[name] = run["val_accuracy"]
        for signal, accuracy in run["checkpoints"].items():
            if accuracy is not None:
                found[signal] = accuracy
    for name, score in (entry.get("proxies") or {}).items():
        if score is not None and math.isfinite(score):
            found[f"proxy:{name}"] = score
    return found


def rank_agreement(
    signal: np.ndarray, reference: np.ndarray, params: np.ndarray, *, rounds: int, seed: int
) -> dict[str, Any]:
    """Spearman and Kendall with 95% bootstrap intervals (resampling panel members), and top-5 overlap.

    ``params`` are the same members' parameter counts: the signal's Spearman minus
    that of "more parameters is better", on the same resamples, says whether the
    signal knows more than the model's size (the bar a proxy has to clear); the
    partial Spearman given params says whether it ranks models of the same size,
    which is what a front of accuracy against cost needs.
    """
    rng = np.random.default_rng(seed)
    boot: dict[str, list[float]] = {"spearman": [], "kendall": [], "over_params": [], "given_params": []}
    for _ in range(rounds):
        pick = rng.integers(0, len(signal), len(signal))
        if min(len(np.unique(column[pick])) for column in (signal, reference, params)) > 1:
            rho = _rho(signal[pick], reference[pick])
            boot["spearman"].append(rho)
            boot["kendall"].append(_tau(signal[pick], reference[pick]))
            boot["over_params"].append(rho - _rho(params[pick], reference[pick]))
            boot["given_params"].append(partial_spearman(signal[pick], reference[pick], params[pick]))
    top = len(set(np.argsort(-signal)[:TOP]) & set(np.argsort(-reference)[:TOP]))
    rho = _rho(signal, reference)
    given = partial_spearman(signal, reference, params)
    finite = [value for value in boot["given_params"] if math.isfinite(value)]
    return {
        "spearman": rho,
        "spearman_95ci": [float(np.percentile(boot["spearman"], q)) for q in (2.5, 97.5)],
        "kendall": _tau(signal, reference),
        "kendall_95ci": [float(np.percentile(boot["kendall"], q)) for q in (2.5, 97.5)],
        "spearman_over_params": rho - _rho(params, reference),
        "spearman_over_params_95ci": [float(np.percentile(boot["over_params"], q)) for q in (2.5, 97.5)],
        "spearman_given_params": given if math.isfinite(given) else None,  # None: the signal is the size itself
        "spearman_given_params_95ci": (
            [float(np.percentile(finite, q)) for q in (2.5, 97.5)] if math.isfinite(given) else None
        ),
        f"top{TOP}_overlap": top,
        f"top{TOP}_overlap_by_chance": min(TOP, len(signal)) ** 2 / len(signal),  # a random order, on average
        "n": len(signal),
    }


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (``search.pareto.spearman``, scipy's); NaN where it has none (a side that does not vary)."""
    rho = spearman(a, b)
    return math.nan if rho is None else rho


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b (``search.pareto.kendall``, scipy's); NaN where it has none."""
    tau = kendall(a, b)
    return math.nan if tau is None else tau


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman's rho of ``x`` and ``y`` with ``z``'s ranks held fixed (the partial correlation of
    ranks); NaN when ``x`` or ``y`` is a monotone function of ``z``."""
    xy, xz, yz = (_rho(a, b) for a, b in ((x, y), (x, z), (y, z)))
    denominator = math.sqrt(max(0.0, (1 - xz**2) * (1 - yz**2)))
    return (xy - xz * yz) / denominator if denominator > 1e-6 else math.nan  # below: rounding of rho = 1


def summarise(cache: dict[str, Any], reference: str, *, rounds: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The agreement of every signal with ``reference`` over the members that have both."""
    members = [e for e in cache["panel"].values() if reference in e["runs"] and e["runs"][reference]["val_accuracy"]]
    if len(members) < 3:
        return {"reference": reference, "members": len(members), "signals": {}}
    found = [signals(e, reference) for e in members]
    names = sorted({name for f in found for name in f})
    table = {}
    for name in names:
        have = [
            (f[name], e["runs"][reference]["val_accuracy"], e["params"]) for f, e in zip(found, members) if name in f
        ]
        if len(have) >= 3:
            signal, ref, params = (np.array(column, dtype=float) for column in zip(*have))
            table[name] = rank_agreement(signal, ref, params, rounds=rounds, seed=seed)
    costs = {
        name: float(np.mean([e["runs"][name]["seconds"] for e in members if name in e["runs"]]))
        for name in {n for e in members for n in e["runs"]}
    }
    ordered = dict(sorted(table.items(), key=lambda item: -item[1]["spearman"]))
    return {"reference": reference, "members": len(members), "mean_seconds_per_run": costs, "signals": ordered}


# --- the run -------------------------------------------------------------------------


def run_panel(args: argparse.Namespace, cache: dict[str, Any], log: Callable[[str], None]) -> None:
    """Train every missing (member, budget) of this shard, member by member in a seeded order.

    The order is a seeded permutation, so a panel stopped part-way is still spread over
    the MACs range; shard ``i`` of ``n`` takes every n-th member of it. A run's training
    state is kept beside the cache after each epoch (``<out>.state/``), so a killed
    reference run resumes after its last epoch rather than from the start.
    """
    space = load_space("densenet_hybrid")
    panel = draw_panel(space, args.panel, args.seed)
    data = load_dataset(space.dataset, validation_size=VALIDATION_SIZE, seed=args.seed)
    shard, shards = args.shard
    order = np.random.default_rng(args.seed).permutation(len(panel))[shard::shards]
    for done, index in enumerate(order, start=1):
        name, arch = panel[index]
        entry = _entry(cache, name, arch, space)
        for budget in budgets(args.reference_epochs):
            if budget.name in entry["runs"]:
                continue
            log(f"[{done}/{len(order)} {budget.name}] {name}: {entry['macs'] / 1e6:.1f} M MACs ...")
            state_file = args.out.with_suffix(".state") / f"{name}-{budget.name}.pt"
            state_file.parent.mkdir(exist_ok=True)
            entry["runs"][budget.name] = run = train_budget(arch, space, data, budget, args.seed, state_file)
            log(f"    val {run['val_accuracy']:.4f} {run['checkpoints']} in {run['seconds']:.0f} s")
            save_cache(args.out, cache)
            state_file.unlink(missing_ok=True)


def add_proxies(args: argparse.Namespace, cache: dict[str, Any]) -> None:
    """Score the zero-cost proxies each member lacks (cheap: one batch, no training); a proxy
    added to ``PROXIES`` later is scored on its own, the cached scores kept."""
    space = load_space("densenet_hybrid")
    data = load_dataset(space.dataset, validation_size=VALIDATION_SIZE, seed=args.seed)
    for name, arch in draw_panel(space, args.panel, args.seed):
        entry = _entry(cache, name, arch, space)
        missing = [proxy for proxy in PROXIES if proxy not in entry.get("proxies", {})]
        if missing:
            entry["proxies"] = {**entry.get("proxies", {}), **proxy_scores(arch, space, data, args.seed, missing)}
    save_cache(args.out, cache)


def _entry(cache: dict[str, Any], name: str, arch: Architecture, space: Space) -> dict[str, Any]:
    entry = cache["panel"].setdefault(name, {"runs": {}})
    counts = count(arch, space.input_size, space.num_classes)
    entry.update(architecture=arch.to_dict(), params=counts.params, macs=counts.macs)
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", type=int, default=24, help="Architectures in the panel (default: 24).")
    parser.add_argument("--reference-epochs", type=int, default=3, help="Epochs of the reference run (default: 3).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the panel, the split and training (default: 0).")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"The cache and results (default: {RESULTS}).")
    parser.add_argument(
        "--shard",
        type=shard,
        default=(0, 1),
        metavar="I/N",
        help="Train only every N-th member, from the I-th (0-based), to run N processes side by side "
        "(with --threads 1 each: on 2 cores two 1-thread shards train 1.4x the images of one 2-thread run).",
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice).")
    parser.add_argument(
        "--summary-only", action="store_true", help="Train nothing; add missing proxy scores, summarise the cache."
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    cache = load_cache(args.out, {"panel": {}})
    cache["settings"] = {"space": "densenet_hybrid", "panel_size": args.panel, "seed": args.seed,
                         "reference_epochs": args.reference_epochs, "validation_size": VALIDATION_SIZE}  # fmt: skip
    add_proxies(args, cache)
    if not args.summary_only:
        run_panel(args, cache, log)
    save_cache(args.out, cache)
    cache = load_cache(args.out, {"panel": {}})  # with what other shards have added meanwhile
    cache["summary"] = summarise(cache, f"ref_{args.reference_epochs}ep")
    save_cache(args.out, cache)
    print(json.dumps(cache["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
