import copy

import pytest
import torch

from evaluation import Architecture, DenseSpec, DualPathSpec, ResidualDenseSpec, ResidualSpec, Stage, Stem, Transition, build_model
from evaluation.blocks import POOLING_LAYERS
from evaluation.architecture import POOLINGS
from evaluation.profile import activation_bytes

BLOCKS = {
    "dense_plain": Stage(DenseSpec(growth_rate=6, bn_size=0), depth=2),
    "dense_bottleneck": Stage(DenseSpec(growth_rate=6, bn_size=2, dropout=0.1), depth=2),
    "residual_basic": Stage(ResidualSpec(unit="basic", width=8), depth=2, stride=2),
    "residual_bottleneck": Stage(ResidualSpec(unit="bottleneck", width=4), depth=2, stride=2),
    "residual_dense": Stage(ResidualDenseSpec(reduction=4), depth=2),
    "dual_path": Stage(DualPathSpec(width=8, growth_rate=4, bottleneck_width=8, groups=2), depth=2, stride=2),
}


@pytest.mark.parametrize("kind", BLOCKS)
def test_every_parameter_receives_a_gradient(kind):
    arch = Architecture(stem=Stem(style="small", width=8), stages=(BLOCKS[kind], BLOCKS[kind]), transitions=(Transition(),))
    model = build_model(arch, (3, 16, 16), 5)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{kind}: no gradient reaches {missing}"


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
