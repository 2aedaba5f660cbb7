"""An exported standalone file builds the same network with torch alone."""

import pytest
import torch
from torch_only import run_without_project

from evaluation import Architecture, Stage, Stem, Transition, build_model, preset
from evaluation.blocks import BLOCKS, DenseSpec, DualPathSpec, ResidualDenseSpec, ResidualSpec
from search.post.export import standalone_source

MIXED = Architecture(
    stem=Stem(style="small", width=8),
    stages=(
        Stage(DenseSpec(growth_rate=4, bn_size=2, dropout=0.1), depth=2),
        Stage(ResidualSpec(unit="bottleneck", width=4), depth=2, stride=2),
        Stage(ResidualDenseSpec(reduction=2), depth=1),
        Stage(DualPathSpec(width=8, growth_rate=4, bottleneck_width=8, groups=2), depth=2, stride=2),
    ),
    transitions=(Transition(pooling="max"), None, Transition(compression=0.5, pooling="none")),
    conv_bias=True,
)
# One stage of every registered family, with its default knobs.
EVERY_BLOCK = Architecture(
    stem=Stem(style="small", width=8),
    stages=tuple(Stage(f.spec(), depth=2, stride=2 if f.downsamples else 1) for f in BLOCKS.values()),
    transitions=(Transition(compression=0.5, pooling="none"),) * (len(BLOCKS) - 1),
)


@pytest.mark.parametrize(
    "arch",
    [MIXED, EVERY_BLOCK, preset("resnet18"), preset("d2l_densenet")],
    ids=["mixed", "every_block", "resnet18", "d2l_densenet"],
)
def test_standalone_file_reproduces_outputs_without_the_project(arch, tmp_path):
    torch.manual_seed(0)
    model = build_model(arch, (3, 32, 32), 7).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.save({"state_dict": model.state_dict(), "x": x}, tmp_path / "weights.pt")
    with torch.no_grad():
        torch.save(model(x), tmp_path / "expected.pt")
    (tmp_path / "exported.py").write_text(standalone_source(arch.to_dict(), 3, 7))
    script = (
        "import torch, exported\n"
        "saved = torch.load('weights.pt', weights_only=True)\n"
        "model = exported.build_model().eval(); model.load_state_dict(saved['state_dict'])\n"
        "with torch.no_grad(): out = model(saved['x'])\n"
        "print((out - torch.load('expected.pt', weights_only=True)).abs().max().item())\n"
    )
    done = run_without_project(script, tmp_path)
    assert done.returncode == 0, f"standalone file failed: {done.stderr[-2000:]}"
    assert float(done.stdout.strip()) <= 1e-5, f"outputs differ by {done.stdout.strip()}"
