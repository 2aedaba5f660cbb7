"""How often each built-in space's samples are refused before training, and why.

Samples every built-in space with Optuna's random sampler (several seeds) and
runs ``spaces.precheck`` on each sample; a space whose samples are mostly
refused wastes the search's time. Prints JSON per space: its size, the share
refused, the reasons counted by rule, and the median and 90th percentile MACs
of the accepted samples. Usage: python benchmarks/space_rejection.py [--samples 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter

import optuna

from evaluation import count
from spaces import builtin_space_names, load_space, precheck, sample_architecture


def measure(name: str, samples: int, seeds: int) -> dict:
    space = load_space(name)
    reasons: Counter[str] = Counter()
    macs = []
    for seed in range(seeds):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for _ in range(samples // seeds):
            trial = study.ask()
            arch = sample_architecture(space, trial)
            reason = precheck(space, arch)
            if reason is None:
                macs.append(count(arch, space.input_size, space.num_classes).macs)
            else:
                # "MACs 71,234,000 > max_macs 60,000,000" counts as "max_macs".
                reasons[reason.split()[-2] if " > max_" in reason else reason] += 1
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    total = samples // seeds * seeds
    macs.sort()
    return {
        "size": space.size(),
        "size_is_exact": space.size_is_exact,
        "samples": total,
        "rejected": round(sum(reasons.values()) / total, 3),
        "reasons": dict(reasons.most_common()),
        "accepted_macs_median": statistics.median(macs),
        "accepted_macs_p90": macs[int(0.9 * len(macs))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="Samples per space (default: 2000).")
    parser.add_argument("--seeds", type=int, default=10, help="Random-sampler seeds to spread them over (default: 10).")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(json.dumps({name: measure(name, args.samples, args.seeds) for name in builtin_space_names()}, indent=2))


if __name__ == "__main__":
    main()
