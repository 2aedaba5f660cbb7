"""Zero-cost proxies against known answers: a network blind to its input, NASWOT's kernel by hand,
the model left untouched, the time a default-space model takes."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from timing import cpu_seconds
from torch import nn

from evaluation import Architecture, ConfigError, Head, Stage, Stem, Transition, build_model, load_dataset
from evaluation.blocks import DenseSpec, ResidualSpec
from evaluation.proxies import (
    PROXIES,
    code_kernel,
    kernel_logdet,
    measure_proxies,
    naswot,
    proxy_batch,
    score_proxies,
)
from spaces import load_space

SMALL = Architecture(
    stem=Stem(style="small", width=8),
    stages=(
        Stage(DenseSpec(growth_rate=8, bn_size=2), depth=2),
        Stage(ResidualSpec(unit="basic", width=16), depth=1, stride=2),
    ),
    transitions=(Transition(compression=0.5, pooling="none"),),
    head=Head(norm=True),
)


class BlindToInput(nn.Module):
    """``network`` fed zeros whatever the image: its output is the classifier's bias, a constant."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x * 0)


class Codes(nn.Module):
    """Identity linear layer then a ReLU: an image of ±1 entries has its own sign pattern as its code."""

    def __init__(self, units: int, functional: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(units, units)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(units))
            self.linear.bias.zero_()
        self.relu = None if functional else nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        return F.relu(x) if self.relu is None else self.relu(x)


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(32, 1, 12, 12, generator=generator), torch.randint(0, 10, (32,), generator=generator)


@pytest.fixture(scope="module")
def network() -> nn.Module:
    torch.manual_seed(0)
    return build_model(SMALL, (1, 12, 12), 10)


def test_a_network_blind_to_its_input_scores_lowest_on_every_proxy(network, batch) -> None:
    images, labels = batch
    normal = score_proxies(network, images, labels)
    blind = score_proxies(BlindToInput(copy.deepcopy(network)), images, labels)
    # synflow, grad_norm and snip sum |θ ⊙ g| or |g| over weights, so 0 is their least value; NASWOT's
    # kernel of identical codes is singular: -inf.
    assert blind == {"synflow": 0.0, "naswot": -math.inf, "grad_norm": 0.0, "snip": 0.0}, blind
    for name in PROXIES:
        assert math.isfinite(normal[name]) and normal[name] > blind[name], f"{name}: {normal[name]} vs {blind[name]}"


def test_naswot_kernel_of_hand_made_codes() -> None:
    codes = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 0, 0]])
    kernel = code_kernel(codes)
    # Three units; every pair of codes differs in two: K = 3 on the diagonal, 3 - 2 = 1 off it.
    assert torch.equal(kernel, torch.tensor([[3.0, 1, 1], [1, 3, 1], [1, 1, 3]], dtype=torch.float64)), kernel
    assert kernel_logdet(kernel) == pytest.approx(math.log(20)), "det = 3(9 - 1) - (3 - 1) + (1 - 3) = 20"
    two = code_kernel(torch.tensor([[True, True], [True, False]]))
    assert torch.equal(two, torch.tensor([[2.0, 1], [1, 2]], dtype=torch.float64)) and kernel_logdet(
        two
    ) == pytest.approx(math.log(3)), two


def test_naswot_identical_codes_give_the_minimum() -> None:
    same = code_kernel(torch.tensor([[1, 0, 1, 1]] * 4))
    assert torch.equal(same, torch.full((4, 4), 4.0, dtype=torch.float64)), "every pair agrees on every unit"
    assert kernel_logdet(same) == -math.inf, "a singular kernel scores -inf, below any other"
    assert kernel_logdet(code_kernel(torch.eye(4, dtype=torch.int64))) > -math.inf, "distinct codes score more"


@pytest.mark.parametrize("functional", [False, True], ids=["nn.ReLU", "F.relu"])
def test_naswot_reads_the_codes_of_every_relu(functional: bool) -> None:
    codes = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 0, 0]])
    images = codes * 2.0 - 1  # +1 where the unit should fire, -1 where not
    assert naswot(Codes(3, functional), images) == pytest.approx(math.log(20)), "the hand-made codes' log-det"


def test_proxies_leave_the_model_as_they_found_it(network, batch) -> None:
    images, labels = batch
    for mode in (True, False):
        network.train(mode)
        state = copy.deepcopy(network.state_dict())
        rng = torch.get_rng_state()
        first = score_proxies(network, images, labels)
        assert score_proxies(network, images, labels) == first, "the same model and batch score the same"
        assert all(torch.equal(state[k], v) for k, v in network.state_dict().items()), "weights and BN stats kept"
        assert all(m.training == mode for m in network.modules()), f"every module still in training={mode}"
        assert all(p.grad is None for p in network.parameters()), "no gradients left on the model"
        assert torch.equal(torch.get_rng_state(), rng), "the caller's random stream is not moved"
    network.train()


def test_measure_proxies_records_none_and_why(network, batch) -> None:
    images, labels = batch
    values, failures = measure_proxies(BlindToInput(copy.deepcopy(network)), images, labels)
    assert values["naswot"] is None and failures == {"naswot": "not finite (-inf): singular kernel"}, failures
    assert values["synflow"] == 0.0, "a score of 0 is a score"
    broken = copy.deepcopy(network)
    with torch.no_grad():
        broken.head.classifier.weight.fill_(math.nan)
    values, failures = measure_proxies(broken, images, labels, names=["grad_norm", "snip"])
    assert values == {"grad_norm": None, "snip": None} and set(failures) == {"grad_norm", "snip"}, failures
    assert all(reason.startswith("not finite (nan)") for reason in failures.values()), failures


def test_unknown_proxy_names_the_known_ones(network, batch) -> None:
    with pytest.raises(ConfigError, match="unknown proxy 'zen'; known proxies: synflow, naswot, grad_norm, snip"):
        score_proxies(network, *batch, names=["zen"])


def test_proxy_batch_is_drawn_with_its_seed() -> None:
    data = load_dataset("digits", validation_size=300, seed=0)
    images, labels = proxy_batch(data, seed=3, size=16)
    again, same_labels = proxy_batch(data, seed=3, size=16)
    other, _ = proxy_batch(data, seed=4, size=16)
    assert images.shape == (16, 1, 8, 8) and images.dtype == torch.float32 and labels.shape == (16,)
    assert torch.equal(images, again) and torch.equal(labels, same_labels), "the same seed, the same batch"
    assert not torch.equal(images, other), "another seed, another batch"
    assert abs(float(images.mean())) < 1.0, "normalised as training normalises"
    resized, _ = proxy_batch(data, seed=3, size=16, resize=16)
    assert resized.shape == (16, 1, 16, 16), "resized as training resizes"


def test_each_proxy_costs_about_one_training_step_on_a_default_space_model() -> None:
    """A zero-cost proxy is one pass over one batch: each may cost 3 training steps of the same model
    on the same batch (forward, loss, backward), timed in the same test (today at most 0.8 of one)."""
    space = load_space("densenet_hybrid")
    torch.manual_seed(0)
    model = build_model(space.baseline("small_dense"), space.input_size, space.num_classes)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(64, *space.input_size, generator=generator)
    labels = torch.randint(0, space.num_classes, (64,), generator=generator)
    learner = copy.deepcopy(model)  # the training step's gradients and BN statistics stay off the proxies' model

    def training_step() -> None:
        learner.zero_grad()
        F.cross_entropy(learner(images), labels).backward()

    passes: dict = {}
    for name, proxy in PROXIES.items():  # grad_norm and snip share one pass
        passes.setdefault(proxy.measure, []).append(name)
    step = cpu_seconds(training_step)
    seconds = {
        "+".join(names): cpu_seconds(lambda m=measure: m(model, images, labels)) for measure, names in passes.items()
    }
    print(
        f"proxy CPU seconds, small_dense, 28x28, batch 64, {torch.get_num_threads()} thread(s): "
        f"{ {name: round(value, 3) for name, value in seconds.items()} }; one training step {step:.3f}"
    )
    assert all(s < 3 * step for s in seconds.values()), (
        f"each proxy under 3 training steps of {step:.3f} s of CPU: {seconds}"
    )
