"""A study whose first trial runs out of memory for real: run in a subprocess by test_objective_faults.

Usage: python oom_study.py SPACE.yaml MB. After the imports and the data, the address space
is limited to MB more than it holds, so the 6000-channel stem's training step fails to allocate.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import optuna
import torch

from evaluation import Architecture, Head, Stage, Stem, TrainConfig
from evaluation.blocks import DenseSpec
from evaluation.data import load_dataset
from search.execution.objective import TrialObjective
from spaces import enqueue_architecture, load_space

torch.set_num_threads(1)

space = load_space(Path(sys.argv[1]))
data = load_dataset("digits", validation_size=300, seed=0)
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.create_study(directions=["maximize", "minimize"])
for width in (6000, 8):
    arch = Architecture(
        stem=Stem(style="small", width=width),
        stages=(Stage(DenseSpec(growth_rate=4, bn_size=0), depth=1),),
        head=Head(norm=True),
    )
    study.enqueue_trial(enqueue_architecture(space, arch))
objective = TrialObjective(
    space=space,
    data=data,
    config=TrainConfig(epochs=1, batch_size=64, device="cpu", precision="fp32"),
    latency_repeats=1,
)
status = Path("/proc/self/status").read_text().splitlines()
vm = int(next(line for line in status if line.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + int(sys.argv[2]) * 2**20, resource.RLIM_INFINITY))
study.optimize(objective, n_trials=2, catch=(Exception,))
print(json.dumps([[t.state.name, t.user_attrs.get("outcome"), t.user_attrs.get("reason")] for t in study.trials]))
