"""Peak training memory of DenseNet-121 with plain vs memory-efficient dense layers.

Two measures, printed as JSON: the activations saved for backward (exact,
counted with autograd's saved-tensor hooks), and the peak resident memory of a
fresh process that runs one training step (ru_maxrss, so each variant runs in
its own subprocess). Usage: python benchmarks/memory_efficient.py [--batch-size 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys

import torch

from evaluation import build_model, preset
from evaluation.blocks import DenseSpec
from evaluation.profile import activation_bytes

INPUT = (3, 224, 224)
# A fixed mmap threshold makes glibc map every large tensor separately and
# unmap it when freed, so peak RSS follows the live tensors rather than the
# heap's high-water mark (the default threshold adapts and keeps freed blocks).
CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 16)}


def densenet121(memory_efficient: bool):
    arch = preset("densenet121")
    stages = tuple(
        dataclasses.replace(s, block=dataclasses.replace(s.block, memory_efficient=memory_efficient))
        for s in arch.stages
        if isinstance(s.block, DenseSpec)
    )
    return dataclasses.replace(arch, stages=stages)


def one_step(memory_efficient: bool, batch_size: int) -> float:
    """Peak RSS in MiB of this process after one forward and backward pass."""
    model = build_model(densenet121(memory_efficient), (3, 224, 224), 1000)
    model(torch.randn(batch_size, *INPUT)).sum().backward()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--child", choices=("plain", "efficient"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(one_step(args.child == "efficient", args.batch_size))
        return
    result = {"model": "densenet121", "input": list(INPUT), "batch_size": args.batch_size}
    # Children first: Linux keeps ru_maxrss across fork and exec, so a child
    # started after this process grew would report this process's peak.
    for variant in ("plain", "efficient"):
        child = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--batch-size", str(args.batch_size)],
            capture_output=True,
            text=True,
            check=True,
            env=CHILD_ENV,
        )
        result[f"{variant}_peak_rss_mib"] = float(child.stdout.strip().splitlines()[-1])
    for variant in ("plain", "efficient"):
        model = build_model(densenet121(variant == "efficient"), (3, 224, 224), 1000)
        result[f"{variant}_saved_activations_mib"] = activation_bytes(model, INPUT, batch_size=args.batch_size) / 2**20
    result["saved_activations_ratio"] = (
        result["efficient_saved_activations_mib"] / result["plain_saved_activations_mib"]
    )
    result["peak_rss_ratio"] = result["efficient_peak_rss_mib"] / result["plain_peak_rss_mib"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
