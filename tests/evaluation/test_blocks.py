import pytest
import torch

from evaluation import Architecture, ArchitectureError, Stage, Stem, Transition, build_model
from evaluation.architecture import POOLINGS
from evaluation.blocks import (
    BLOCKS,
    POOLING_LAYERS,
    CSPDenseSpec,
    DenseSpec,
    DualPathSpec,
    ResidualDenseSpec,
    ResidualSpec,
    block_family,
)
from evaluation.blocks.csp_dense import FUSIONS
from evaluation.profile import activation_bytes

# Every registered family with its default knobs, and variants the defaults miss.
STAGES = {
    **{kind: Stage(family.spec(), depth=2, stride=2 if family.downsamples else 1) for kind, family in BLOCKS.items()},
    "dense_plain": Stage(DenseSpec(growth_rate=6, bn_size=0), depth=2),
    "dense_bottleneck": Stage(DenseSpec(growth_rate=6, bn_size=2, dropout=0.1), depth=2),
    "residual_basic": Stage(ResidualSpec(unit="basic", width=8), depth=2, stride=2),
    "residual_bottleneck": Stage(ResidualSpec(unit="bottleneck", width=4), depth=2, stride=2),
    "residual_dense_r2": Stage(ResidualDenseSpec(reduction=2), depth=1),
    "dual_path_grouped": Stage(DualPathSpec(width=8, growth_rate=4, bottleneck_width=8, groups=2), depth=2, stride=2),
    **{
        f"csp_dense_{fusion}": Stage(CSPDenseSpec(split=0.25, growth_rate=4, bn_size=2, fusion=fusion), depth=2)
        for fusion in FUSIONS
    },
}


@pytest.mark.parametrize("kind", STAGES)
def test_every_parameter_receives_a_gradient(kind):
    arch = Architecture(
        stem=Stem(style="small", width=8), stages=(STAGES[kind], STAGES[kind]), transitions=(Transition(),)
    )
    model = build_model(arch, (3, 16, 16), 5)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{kind}: no gradient reaches {missing}"


@pytest.mark.parametrize("kind", BLOCKS)
def test_registry_lookup_and_spec_round_trip(kind):
    family = block_family(kind)
    assert family.kind == kind and family.spec.kind == kind, f"{kind} is registered under its spec's kind"
    stage = STAGES[kind]
    arch = Architecture(stem=Stem(style="small", width=8), stages=(stage,))
    assert Architecture.from_dict(arch.to_dict()) == arch, f"{kind}: the dict form is lossless"
    assert arch.describe().split(" | ")[1].startswith(f"{kind} x2 "), f"{kind}: described as {arch.describe()}"


def test_unknown_block_lists_the_registered_ones():
    with pytest.raises(ArchitectureError, match=f"unknown block 'inception'; known blocks: {', '.join(BLOCKS)}$"):
        block_family("inception")


def test_registered_poolings_are_the_architecture_poolings():
    assert set(POOLING_LAYERS) == set(POOLINGS), "every pooling the language allows has a layer, and no more"


def _dense_net(memory_efficient: bool) -> torch.nn.Module:
    arch = Architecture(
        stem=Stem(style="small", width=16),
        stages=(Stage(DenseSpec(growth_rate=12, bn_size=4, memory_efficient=memory_efficient), depth=6),) * 2,
        transitions=(Transition(),),
    )
    torch.manual_seed(0)
    return build_model(arch, (3, 32, 32), 10)


def test_memory_efficient_dense_layer_matches_plain_outputs_and_gradients():
    plain, efficient = _dense_net(False), _dense_net(True)
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    outputs = [model(x) for model in (plain, efficient)]
    for out in outputs:
        out.square().mean().backward()
    assert torch.allclose(outputs[0], outputs[1], atol=1e-6), "forward outputs differ"
    for (name, p), q in zip(plain.named_parameters(), efficient.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), f"gradient of {name} differs"


def test_memory_efficient_dense_layer_saves_fewer_activations():
    plain_bytes = activation_bytes(_dense_net(False), (3, 32, 32), batch_size=8)
    efficient_bytes = activation_bytes(_dense_net(True), (3, 32, 32), batch_size=8)
    assert efficient_bytes < 0.75 * plain_bytes, (
        f"checkpointing should drop the bottleneck activations: {efficient_bytes:,} vs {plain_bytes:,} bytes"
    )
