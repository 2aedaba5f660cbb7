"""What each zero-cost proxy costs, and the variants the fidelity panel's table leaves out.

``benchmarks/fidelity.py`` ranks every proxy of ``evaluation.proxies`` against
the panel's reference accuracy. This adds, on the same 24 members, the same
mini-batch and the same summary (``fidelity.rank_agreement``: Spearman with a
95% bootstrap interval, minus params', partial given params):

- the CPU seconds of each proxy pass per member (one thread; the faster of
  two calls, the first paying one-off set-up): what ``--screen K`` pays K
  times per trial;
- MeCo on one image, as the paper scores it (the toolkit's ``meco`` averages
  the first ``MECO_IMAGES``);
- AZ-NAS as its authors combine it: the sum over its parts of
  ``log(rank / N)`` within the pool (expressivity, progressivity,
  trainability and complexity, the MACs), here the panel;
- the proxies' vote (mean rank) across the four proxies it had before MeCo,
  ZiCo and AZ-NAS, as ``--screen-by vote`` casts it, and across all nine.

    OMP_NUM_THREADS=1 python benchmarks/proxies.py   # writes results/proxies.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import fidelity
import numpy as np
import torch
from scipy import stats

from evaluation import Architecture, build_model
from evaluation.data import load_dataset
from evaluation.proxies import MECO_IMAGES, PROXIES, meco, proxy_batch
from spaces import load_space

RESULTS = Path(__file__).resolve().parent / "results"
FIRST_FOUR = ("synflow", "naswot", "grad_norm", "snip")
AZ_PARTS = ("az_expressivity", "az_progressivity", "az_trainability")


def _cpu_seconds(run: Any) -> float:
    times = []
    for _ in range(2):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def member_costs_and_meco(entry: dict[str, Any], space: Any, data: Any, seed: int) -> dict[str, Any]:
    """CPU seconds of each proxy pass on one member, and MeCo on the batch's first image alone."""
    torch.manual_seed(seed)
    model = build_model(Architecture.from_dict(entry["architecture"]), space.input_size, space.num_classes)
    images, labels = proxy_batch(data, seed=seed)
    passes: dict[Any, list[str]] = {}
    for name, proxy in PROXIES.items():
        passes.setdefault(proxy.measure, []).append(name)
    seconds = {
        "+".join(names): _cpu_seconds(lambda m=measure: m(model, images, labels)) for measure, names in passes.items()
    }
    try:
        one_image: float | None = meco(model, images[:1])
    except (RuntimeError, ValueError) as error:  # batch norm in training mode on a 1x1 map of one image
        print(f"    MeCo on one image: {error}", file=sys.stderr)
        one_image = None
    return {"seconds": seconds, "meco_one_image": one_image}


def _ranks(values: np.ndarray) -> np.ndarray:
    """1 for the lowest, N for the highest (ties share their mean rank)."""
    return stats.rankdata(values)


def panel_signals(members: list[dict[str, Any]], extra: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The variants' scores, one per member (higher is better)."""
    n = len(members)
    # A proxy that failed ranks last, as the screening vote ranks it.
    score = {
        name: np.array([-np.inf if m["proxies"][name] is None else m["proxies"][name] for m in members])
        for name in PROXIES
    }
    macs = np.array([m["macs"] for m in members], dtype=float)
    signals = {
        f"meco on one image (paper; toolkit: mean of {MECO_IMAGES})": np.array(
            [math.nan if e["meco_one_image"] is None else e["meco_one_image"] for e in extra]
        ),
        # Lee & Ham 2024, eq. 9: every part ranked in the pool, higher is better for each, log(rank / N) summed.
        "az_nas (rank aggregate of the three parts and MACs)": sum(
            np.log(_ranks(values) / n) for values in (*(score[p] for p in AZ_PARTS), macs)
        ),
        "az_nas without MACs (the three parts)": sum(np.log(_ranks(score[p]) / n) for p in AZ_PARTS),
        "vote of all nine proxies": -np.mean([n + 1 - _ranks(score[p]) for p in PROXIES], axis=0),
        "vote of the first four (--screen-by vote)": -np.mean([n + 1 - _ranks(score[p]) for p in FIRST_FOUR], axis=0),
    }
    return signals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", type=Path, default=fidelity.RESULTS, help="fidelity.py's cache and summary.")
    parser.add_argument("--out", type=Path, default=RESULTS / "proxies.json", help="The results file.")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    cache = json.loads(args.panel.read_text())
    reference = f"ref_{cache['settings']['reference_epochs']}ep"
    seed = cache["settings"]["seed"]
    space = load_space(cache["settings"]["space"])
    data = load_dataset(space.dataset, validation_size=cache["settings"]["validation_size"], seed=seed)
    names = sorted(n for n, e in cache["panel"].items() if e["runs"].get(reference, {}).get("val_accuracy"))
    members = [cache["panel"][n] for n in names]
    missing = [n for n, m in zip(names, members) if set(PROXIES) - set(m.get("proxies") or {})]
    if missing:
        raise SystemExit(f"{args.panel}: {missing} lack proxies; run benchmarks/fidelity.py --summary-only first")
    extra = []
    for done, (name, entry) in enumerate(zip(names, members), start=1):
        extra.append(member_costs_and_meco(entry, space, data, seed))
        print(f"[{done}/{len(names)}] {name}: {extra[-1]['seconds']}", file=sys.stderr, flush=True)

    accuracy = np.array([m["runs"][reference]["val_accuracy"] for m in members])
    params = np.array([m["params"] for m in members], dtype=float)
    table = {}
    for name, signal in panel_signals(members, extra).items():
        have = ~np.isnan(signal)
        table[name] = fidelity.rank_agreement(signal[have], accuracy[have], params[have], rounds=2000, seed=0)
    passes = extra[0]["seconds"].keys()
    costs = {
        name: {
            "median": statistics.median(e["seconds"][name] for e in extra),
            "max": max(e["seconds"][name] for e in extra),
        }
        for name in passes
    }
    result = {
        "settings": {"panel": str(args.panel.name), "reference": reference, "threads": 1, "members": len(names)},
        "cpu_seconds_per_pass": costs,
        "signals": table,
        "members": {n: e for n, e in zip(names, extra)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"cpu_seconds_per_pass": costs, "signals": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
