"""Every registered block type can be searched, exported and rebuilt with torch alone."""

import pytest
from optuna.trial import TrialState
from torch_only import run_without_project

from evaluation import load_architecture
from evaluation.blocks import BLOCKS
from search.cli import main
from search.storage.studies import open_study

SPACE = """\
description: Only {kind} stages, on scikit-learn's 8x8 digits.
dataset: digits
input: [1, 8, 8]
num_classes: 10
objectives: {{accuracy: maximize, macs: minimize}}
training: {{epochs: 1, train_fraction: 1.0, batch_size: 64, lr: 0.05, schedule: onecycle}}
stem: {{style: small, width: 8}}
stages:
  count: 2
  each: {{block: {kind}, depth: {{low: 1, high: 2}}}}
transitions:
  each: {{compression: 0.5, pooling: {{choice: [avg, none]}}}}
"""

RUN_EXPORTED = "import torch, best_1\nprint(tuple(best_1.build_model().eval()(torch.zeros(2, 1, 8, 8)).shape))\n"


@pytest.mark.parametrize("kind", BLOCKS)
def test_two_trial_search_exports_a_standalone_file(kind, tmp_path, studies_dir):
    space = tmp_path / f"{kind}.yaml"
    space.write_text(SPACE.format(kind=kind))
    assert main(["run", "--space", str(space), "--study", kind, "--trials", "2", "--no-report"]) == 0, "run"
    trials = open_study(kind).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, [
        (t.state, t.user_attrs.get("reason")) for t in trials
    ]
    assert all(t.user_attrs["outcome"] in ("trained", "duplicate") for t in trials), [t.user_attrs for t in trials]

    out = tmp_path / "export"
    assert main(["export", kind, "--out", str(out), "--top", "1", "--format", "python"]) == 0, "export"
    arch = load_architecture(out / "best-1.yaml")
    assert {stage.block.kind for stage in arch.stages} == {kind}, arch
    (out / "best_1.py").write_text((out / "best-1.py").read_text())  # an importable module name
    done = run_without_project(RUN_EXPORTED, out)
    assert done.returncode == 0, f"{kind}: exported file failed: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "(2, 10)", f"{kind}: exported model output shape {done.stdout}"
