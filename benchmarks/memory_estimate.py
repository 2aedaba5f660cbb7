"""The closed-form training-memory estimate against the peak RSS of real training steps.

``evaluation.memory.estimate_memory`` is meant as an upper bound of one fp32
training step. For each case (a preset, an input size, a batch), a fresh
process records its peak RSS after imports and a random batch, then builds the
model and runs two SGD steps with momentum in fp32; the growth of its peak RSS
is what the step cost. Each case runs under glibc's default allocator (which
keeps freed blocks, so RSS is its high-water mark) and with a fixed mmap
threshold (every large tensor mapped and unmapped on its own, so RSS follows
the live tensors). Writes ``benchmarks/results/memory_estimate.json``: per
case and allocator the estimate, the growth, and their ratio (above 1: the
estimate is the larger, as it should be).

    python benchmarks/memory_estimate.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch

from evaluation import build_model, preset
from evaluation.atomic import atomic_write
from evaluation.memory import estimate_memory

RESULTS = Path(__file__).resolve().parent / "results" / "memory_estimate.json"
NUM_CLASSES = 10
# (preset, (C, H, W), batch): small to large activations against weights.
CASES = (
    ("resnet18", (3, 64, 64), 32),
    ("resnet50", (3, 128, 128), 8),
    ("densenet121", (3, 64, 64), 16),
    ("d2l_densenet", (1, 96, 96), 64),
)
# As benchmarks/memory_efficient.py for "mmap": glibc maps every large tensor on its own and
# unmaps it when freed, so peak RSS follows the live tensors, not the heap's high-water mark.
ALLOCATORS = {
    "glibc default": {**os.environ, "OMP_NUM_THREADS": "1"},
    "mmap threshold 64 KiB": {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": str(1 << 16)},
}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def two_steps(name: str, shape: tuple[int, int, int], batch_size: int) -> float:
    """MiB the peak RSS of this process grew by to build ``name`` and train it two steps."""
    torch.manual_seed(0)
    images, labels = torch.randn(batch_size, *shape), torch.randint(0, NUM_CLASSES, (batch_size,))
    before = peak_mib()
    model = build_model(preset(name), shape, NUM_CLASSES)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(2):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    return peak_mib() - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(two_steps(*CASES[args.child]))
        return 0
    cases = []
    for index, (name, shape, batch_size) in enumerate(CASES):
        estimate = estimate_memory(preset(name), shape, NUM_CLASSES, batch_size=batch_size).total / 2**20
        for allocator, env in ALLOCATORS.items():
            command = [sys.executable, __file__, "--child", str(index)]
            child = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            growth = float(child.stdout.strip().splitlines()[-1])
            cases.append({"model": name, "input": list(shape), "batch_size": batch_size, "allocator": allocator,
                          "estimate_mib": estimate, "peak_rss_growth_mib": growth, "ratio": estimate / growth})  # fmt: skip
    ratios = {a: [c["ratio"] for c in cases if c["allocator"] == a] for a in ALLOCATORS}
    result = {"command": "python benchmarks/memory_estimate.py", "cases": cases,
              "ratio_range": {a: [min(r), max(r)] for a, r in ratios.items()}}  # fmt: skip
    with atomic_write(RESULTS) as temporary:
        temporary.write_text(json.dumps(result, indent=1) + "\n")
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
