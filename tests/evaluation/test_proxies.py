"""Zero-cost proxies against known answers: a network blind to its input, NASWOT's kernel by hand,
the model left untouched, the time a default-space model takes."""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timing import cpu_seconds
from torch import nn

from evaluation import Architecture, ConfigError, Head, Stage, Stem, Transition, build_model, load_dataset
from evaluation.blocks import DenseSpec, ResidualSpec
from evaluation.proxies import (
    MECO_IMAGES,
    PROXIES,
    ZICO_BATCHES,
    code_kernel,
    correlation_min_eigenvalues,
    jacobian_score,
    kernel_logdet,
    measure_proxies,
    meco,
    naswot,
    proxy_batch,
    score_proxies,
    spectrum_entropy,
    zico,
    zico_score,
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
    first_four = ["synflow", "naswot", "grad_norm", "snip"]  # the newer ones: test_newer_proxies_of_a_network_blind...
    normal = score_proxies(network, images, labels, names=first_four)
    blind = score_proxies(BlindToInput(copy.deepcopy(network)), images, labels, names=first_four)
    # synflow, grad_norm and snip sum |θ ⊙ g| or |g| over weights, so 0 is their least value; NASWOT's
    # kernel of identical codes is singular: -inf.
    assert blind == {"synflow": 0.0, "naswot": -math.inf, "grad_norm": 0.0, "snip": 0.0}, blind
    for name in first_four:
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


# --- MeCo, ZiCo and AZ-NAS's parts against hand arithmetic and numpy ---------------------


def test_meco_layer_value_of_hand_made_channels() -> None:
    a, b = [1.0, 2, 3, 4], [1.0, 3, 2, 4]  # corr(a, b) = 4 / 5: eigenvalues 1 ± 0.8
    first = torch.tensor([a, b, [5.0] * 4]).reshape(1, 3, 2, 2)  # a constant channel: its row and column are 0
    second = torch.tensor([a, [2 * v + 1 for v in a], b]).reshape(1, 3, 2, 2)  # two channels perfectly correlated
    values = correlation_min_eigenvalues(torch.cat([first, second]))
    assert values[0] == pytest.approx(0.0, abs=1e-12), f"[[1, .8, 0], [.8, 1, 0], [0, 0, 0]] has λ_min 0: {values}"
    assert values[1] == pytest.approx(0.0, abs=1e-12), f"a channel and an affine copy: λ_min 0: {values}"
    assert correlation_min_eigenvalues(first[:, :2])[0] == pytest.approx(0.2), "corr 0.8: λ_min 1 - 0.8"


def _numpy_meco_layer(feature_map: np.ndarray) -> float:
    """The reference's per-layer value, with numpy: corrcoef over channels, NaN to 0, least eigenvalue."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a 1x1 map (after global pooling): one observation, NaN
        correlation = np.corrcoef(feature_map.reshape(feature_map.shape[0], -1))
    return float(np.linalg.eigvalsh(np.nan_to_num(correlation, nan=0.0, posinf=0.0, neginf=0.0)).min())


def test_meco_matches_numpy_on_every_layer_of_a_small_network(network, batch) -> None:
    images, labels = batch
    outputs: list[np.ndarray] = []
    reference = copy.deepcopy(network).train()
    for module in reference.modules():  # every module, as the reference code; copied before in-place ReLUs act
        module.register_forward_hook(
            lambda m, i, out: outputs.append(out.detach().clone().numpy()) if out.dim() == 4 else None
        )
    with torch.no_grad():
        reference(images[:MECO_IMAGES])
    assert len(outputs) > 10, f"the network's layers were read: {len(outputs)}"
    expected = np.mean([sum(_numpy_meco_layer(out[i]) for out in outputs) for i in range(MECO_IMAGES)])
    assert meco(network, images, labels) == pytest.approx(expected, rel=1e-9), "summed over layers, mean over images"


def test_zico_of_hand_made_gradients() -> None:
    # One layer: std over the two batches is (1, 0), mean |g| is (2, 2): only the first weight varies, 2 / 1.
    # A layer whose gradient never varies is left out.
    layers = [torch.tensor([[1.0, 2.0], [3.0, 2.0]]), torch.zeros(2, 3)]
    assert zico_score(layers) == pytest.approx(math.log(2)), "log(2 / 1), the still layer left out"
    assert zico_score([torch.zeros(2, 5)]) == 0.0, "no gradient varies: 0"


def test_zico_matches_gradients_worked_out_with_numpy() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    generator = torch.Generator().manual_seed(1)
    images, labels = torch.randn(6, 4, generator=generator), torch.tensor([0, 1, 2, 2, 1, 0])
    w, b = model.weight.detach().double().numpy(), model.bias.detach().double().numpy()
    gradients = []
    for x, y in zip(np.split(images.double().numpy(), 2), np.split(labels.numpy(), 2)):
        logits = x @ w.T + b
        softmax = np.exp(logits - logits.max(1, keepdims=True))
        softmax /= softmax.sum(1, keepdims=True)
        # d mean cross-entropy / dW = (softmax - one-hot)^T x / n
        gradients.append(((softmax - np.eye(3)[y]).T @ x / len(x)).ravel())
    gradients = np.array(gradients)
    expected = math.log(np.sum(np.abs(gradients).mean(0) / gradients.std(0)))
    assert ZICO_BATCHES == 2, "the hand computation splits the batch in two"
    assert zico(model, images, labels) == pytest.approx(expected, rel=1e-5), "each half's own gradient, not their sum"


def test_spectrum_entropy_of_hand_made_feature_maps() -> None:
    hadamard = torch.tensor([[1.0]])
    for _ in range(3):
        hadamard = torch.cat([torch.cat([hadamard, hadamard], 1), torch.cat([hadamard, -hadamard], 1)])
    # Rows 1-4 of the 8x8 Hadamard matrix: centred, orthogonal, equal norms: the covariance is a multiple of I.
    even = hadamard[1:5].reshape(1, 4, 2, 4)
    assert spectrum_entropy(even) == pytest.approx(math.log(4), abs=1e-6), "four equal eigenvalues: log 4"
    rank_one = (hadamard[1] * torch.tensor([1.0, -2, 3, 0.5])[:, None]).reshape(1, 4, 2, 4)
    assert spectrum_entropy(rank_one) == pytest.approx(0.0, abs=1e-6), "one direction holds all the variance"
    assert spectrum_entropy(torch.zeros(2, 3, 4, 4)) == 0.0, "no variance, no directions"


def test_jacobian_score_of_hand_made_stages() -> None:
    torch.manual_seed(0)
    f_in = torch.randn(4, 1, 6, 6, requires_grad=True)
    # One channel: the ±1 gradient squares to 1, so σ is the stage's gain exactly; 2 - σ - 1/σ.
    assert jacobian_score(f_in, 2 * f_in) == pytest.approx(-0.5, abs=1e-5), "σ = 2: 2 - 2 - 1/2"
    assert jacobian_score(f_in, 1 * f_in) == -math.inf, "an identity stage: the reference's -inf"
    # 2x2 average pooling: each input position gets g / 4; unshuffled, 4 channels of 1/4: σ = sqrt(4 / 16).
    assert jacobian_score(f_in, F.avg_pool2d(f_in, 2)) == pytest.approx(-0.5, abs=1e-5), "σ = 1/2: 2 - 1/2 - 2"
    odd = torch.randn(4, 1, 7, 7, requires_grad=True)
    assert jacobian_score(odd, F.avg_pool2d(odd, 2)) == pytest.approx(-0.5, abs=1e-5), "7x7 -> 3x3: the rest cropped"
    assert jacobian_score(f_in, torch.randn(4, 1, 6, 6, requires_grad=True) * 2) is None, "no path from f_in"


def _numpy_entropy(feature_map: np.ndarray) -> float:
    x = feature_map.transpose(0, 2, 3, 1).reshape(-1, feature_map.shape[1]).astype(np.float64)
    eigenvalues = np.clip(np.linalg.eigvalsh(np.cov(x, rowvar=False, bias=True)), 0, None)
    p = eigenvalues / eigenvalues.sum()
    return float(-(p * np.log(p + 1e-8)).sum())


def test_az_expressivity_and_progressivity_match_numpy_on_the_stages(network, batch) -> None:
    images, labels = batch
    stages = []
    x = images
    with torch.no_grad():
        for module in copy.deepcopy(network).train().children():  # stem, stage1, transition1, stage2, head
            x = module(x)
            if x.dim() == 4:
                stages.append(x.numpy().copy())
    assert len(stages) == 4, f"stem, stage1, transition1, stage2: {len(stages)}"
    entropies = [_numpy_entropy(s) for s in stages]
    scores = score_proxies(network, images, labels, names=["az_expressivity", "az_progressivity"])
    assert scores["az_expressivity"] == pytest.approx(sum(entropies), rel=1e-5), (scores, entropies)
    assert scores["az_progressivity"] == pytest.approx(min(np.diff(entropies)), rel=1e-4, abs=1e-6), (scores, entropies)


def test_newer_proxies_of_a_network_blind_to_its_input(network, batch) -> None:
    images, labels = batch
    newer = ["meco", "zico", "az_expressivity", "az_progressivity", "az_trainability"]
    normal = score_proxies(network, images, labels, names=newer)
    blind = score_proxies(BlindToInput(copy.deepcopy(network)), images, labels, names=newer)
    # All-zero feature maps: no correlation (MeCo 0), no variance (expressivity 0, no stage gains: progressivity 0);
    # all-zero weight gradients: no layer varies (ZiCo 0); batch norm of a constant blows gradients up (trainability).
    assert {k: blind[k] for k in newer[:4]} == {k: 0.0 for k in newer[:4]}, blind
    for name in ("meco", "zico", "az_expressivity", "az_trainability"):
        assert math.isfinite(normal[name]) and normal[name] > blind[name], f"{name}: {normal[name]} vs {blind[name]}"
    assert blind["az_trainability"] < -1e3, f"a gain of 1/sqrt(eps) per stage: {blind['az_trainability']}"


def test_the_vote_is_cast_by_the_four_proxies_it_was_measured_with() -> None:
    from search.execution.screening import Candidate, choose

    voters = [name for name, proxy in PROXIES.items() if proxy.votes]
    assert voters == ["synflow", "naswot", "grad_norm", "snip"], voters
    newer = [name for name in PROXIES if name not in voters]
    # The first candidate wins on every newer proxy, the second on the four that vote: across all nine
    # the first would have the lower mean rank (13 / 9 against 14 / 9); across the four it is the second.
    first = Candidate("sampler", {}, None, scores={**dict.fromkeys(voters, 1.0), **dict.fromkeys(newer, 9.0)})
    second = Candidate("random", {}, None, scores={**dict.fromkeys(voters, 2.0), **dict.fromkeys(newer, 0.0)})
    assert choose([first, second], "vote") == 1, "the newer proxies do not vote"
    assert choose([first, second], "meco") == 0, "each can still screen on its own"
