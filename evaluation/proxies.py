"""Zero-cost proxies: scores of an untrained network on one mini-batch that may rank accuracy.

Nine proxies, after their reference definitions; four from 2019-2021:

- ``synflow`` (Tanaka et al. 2020, as Abdelfattah et al. 2021 compute it):
  every parameter made positive, an all-ones input in double precision, and
  ``R`` the sum of the outputs; the score is ``sum |θ ⊙ ∂R/∂θ|``. The
  reference code removes batch norm (``bn=False``); here batch norm runs in
  eval mode, a fixed affine map that is the identity at initialisation, so
  the two agree on the networks the search scores.
- ``naswot`` (Mellor et al. 2021): the binary code of every ReLU's output for
  each image of the batch (1 where a unit is active); ``K_H[i, j]`` is the
  number of units minus the Hamming distance between the codes of images i
  and j, and the score is ``log |det K_H|``. A singular kernel (images the
  network cannot tell apart) scores ``-inf``, the lowest possible.
- ``grad_norm`` (Abdelfattah et al. 2021): the L2 norm of the cross-entropy
  loss's gradient with respect to each layer's weight, summed over layers
  (the per-layer norms of the reference code, not one norm of all gradients).
- ``snip`` (Lee et al. 2019, as Abdelfattah et al. 2021): ``sum |θ ⊙ ∂L/∂θ|``
  of the same loss.

and five from 2023-2024:

- ``meco`` (Jiang et al. 2023, MeCo): for each layer, the smallest eigenvalue
  of the Pearson correlation matrix of its output's channels (one image, its
  positions as observations), summed over layers. As the reference code, a
  layer is every module whose output is a feature map (containers and
  in-place activations included). The paper scores one image; here the mean
  over the batch's first ``MECO_IMAGES``, forwarded together.
- ``zico`` (Li et al. 2023, ZiCo): the batch split into ``ZICO_BATCHES``
  mini-batches, each weight's cross-entropy gradient on each;
  ``sum over layers of log(sum over θ of mean|g| / std g)``, mean and
  standard deviation across the mini-batches. Each mini-batch's own gradient,
  as the paper defines it (the reference code does not zero gradients between
  batches, so its second "batch" is the sum of both).
- ``az_expressivity``, ``az_progressivity``, ``az_trainability`` (Lee & Ham
  2024, AZ-NAS's three data-dependent parts; its fourth, complexity, is the
  MACs already recorded): read at the output of each top-level module of the
  network (stem, stages, transitions): the entropy of the normalised
  eigenvalues of the channels' covariance, summed; its least increase from
  one stage to the next; and ``2 - σ - 1/σ`` of each stage's Jacobian, σ its
  largest singular value estimated with a random ±1 output gradient,
  averaged. AZ-NAS reads after every block of its space; a dense block's
  running concatenation exists only at the stage's end, hence stages here.
  AZ-NAS combines the parts by their ranks in a pool of candidates; here each
  is a score of its own.

``--screen-by vote`` ranks by the first four only (``Proxy.votes``), as it was measured.

As in the reference code, θ is the weight of each convolution and linear
layer (not biases, not batch norm). Each proxy works on a deep copy of the
model in training mode (``synflow``: eval mode), so the model's weights,
buffers, gradients and mode stay as they were, and under a forked, seeded
random state, so a score repeats and the caller's random stream is not moved.

``PROXIES`` is the table the rest of the toolkit reads: the metric table
(``evaluation.metrics``), the search's ``--screen-by`` choices and the report.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from evaluation.data import BatchPipeline, DataSplits
from evaluation.errors import ConfigError

__all__ = [
    "MECO_IMAGES",
    "PROXIES",
    "PROXY_BATCH_SIZE",
    "ZICO_BATCHES",
    "Proxy",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "code_kernel",
    "correlation_min_eigenvalues",
    "grad_norm",
    "jacobian_score",
    "kernel_logdet",
    "measure_proxies",
    "meco",
    "naswot",
    "proxy_batch",
    "score_proxies",
    "snip",
    "spectrum_entropy",
    "synflow",
    "zico",
    "zico_score",
]

# Images per scoring batch: NASWOT's kernel is batch x batch; Mellor et al. use 128,
# 64 keeps each proxy pass of a default-space model well under a second on one CPU core.
PROXY_BATCH_SIZE = 64
# MeCo's images: Jiang et al. score one image (batch size 1 in their code); the first few of
# the batch, averaged, are steadier, and batch norm in training mode needs more than one
# value per channel, which one image does not give on a 1x1 feature map.
MECO_IMAGES = 8
# ZiCo's mini-batches, the proxy batch split evenly: the reference search uses two.
ZICO_BATCHES = 2
# Calls that apply a ReLU, whether through an nn.ReLU module (which calls F.relu)
# or functionally: NASWOT reads the activation codes of every one of them.
_RELU_FUNCTIONS = frozenset({F.relu, F.relu_, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_})


@dataclass(frozen=True)
class Proxy:
    """One zero-cost proxy and how to read it; ``measure`` is the pass that scores it.

    A pass may score several proxies at once (``grad_norm`` and ``snip`` share
    one backward pass), so ``measure`` returns a mapping of names to scores.
    The vote stays the four proxies it was measured with: on the fidelity panel
    (``benchmarks/results/proxies.json``) adding the five newer ones lowered
    its Spearman with accuracy from 0.72 to 0.59.
    """

    name: str
    measure: Callable[[nn.Module, Tensor, Tensor], dict[str, float]]
    label: str  # for titles, legends and table headers
    description: str
    higher_is_better: bool = True
    log_scale: bool = False  # spans orders of magnitude: plotted on a log axis
    votes: bool = True  # counted in ``--screen-by vote``'s mean rank


def _weights(model: nn.Module) -> list[Tensor]:
    """The weights the proxies sum over: those of convolutions and linear layers."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


@contextmanager
def _scratch_copy(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """A deep copy of ``model`` on ``device`` without gradients, under a forked random state seeded 0."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(0)
        net = copy.deepcopy(model).to(device)
        net.zero_grad(set_to_none=True)
        yield net


def _channels_last(net: nn.Module, images: Tensor) -> Tensor:
    """``net`` and a batch of images in channels-last memory, as training runs them (faster
    convolutions on CPUs); other inputs as they are."""
    if images.dim() != 4:
        return images
    net.to(memory_format=torch.channels_last)
    return images.contiguous(memory_format=torch.channels_last)


def _synflow_pass(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> dict[str, float]:
    with _scratch_copy(model, images.device) as net:
        net.double().eval()  # batch norm as a fixed affine map, no dropout
        with torch.no_grad():
            for tensor in net.state_dict().values():
                if tensor.is_floating_point():
                    tensor.abs_()
        ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
        net(ones).sum().backward()
        with torch.no_grad():
            return {"synflow": float(sum((w * w.grad).abs().sum() for w in _weights(net) if w.grad is not None))}


def _loss_gradient_pass(model: nn.Module, images: Tensor, labels: Tensor) -> dict[str, float]:
    with _scratch_copy(model, images.device) as net:
        net.train()
        F.cross_entropy(net(_channels_last(net, images)), labels).backward()
        graded = [(w, w.grad) for w in _weights(net) if w.grad is not None]
        with torch.no_grad():
            return {
                "grad_norm": float(sum(grad.norm() for _, grad in graded)),
                "snip": float(sum((w * grad).abs().sum() for w, grad in graded)),
            }


def synflow(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> float:
    """``sum |θ ⊙ ∂R/∂θ|`` with every parameter positive and ``R`` the output's sum for an all-ones
    input, in double precision; data-free: ``images`` gives only the input's shape and device."""
    return _synflow_pass(model, images)["synflow"]


def grad_norm(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """The L2 norm of ``∂L/∂θ`` per layer, summed over layers (L: cross-entropy on the batch)."""
    return _loss_gradient_pass(model, images, labels)["grad_norm"]


def snip(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """``sum |θ ⊙ ∂L/∂θ|`` (L: cross-entropy on the batch): the loss's sensitivity to removing each weight."""
    return _loss_gradient_pass(model, images, labels)["snip"]


def code_kernel(codes: Tensor) -> Tensor:
    """NASWOT's kernel of binary activation codes, one row per image: units minus Hamming distance.

    ``K[i, j] = c_i·c_j + (1 - c_i)·(1 - c_j)``, the units on which images i and
    j agree, computed as ``2 c_i·c_j - |c_i| - |c_j| + units`` (one product).
    Returned in double precision, so kernels of many layers add up exactly.
    """
    if codes.dim() == 4 and codes.is_contiguous(memory_format=torch.channels_last):
        codes = codes.permute(0, 2, 3, 1)  # the order of units does not matter; this one needs no copy
    codes = codes.reshape(len(codes), -1).float()
    active = codes.sum(1)
    both = codes @ codes.T
    return (2 * both - active[:, None] - active[None, :] + codes.shape[1]).double()


def kernel_logdet(kernel: Tensor) -> float:
    """``log |det K|``, NASWOT's score; ``-inf`` for a singular kernel (the kernel is positive
    semi-definite, so a determinant that is not positive is a numerically singular one)."""
    sign, logdet = torch.linalg.slogdet(kernel.double().cpu())
    return float(logdet) if sign > 0 else -math.inf


class _ActivationKernel(TorchFunctionMode):
    """Adds the code kernel of every ReLU applied while it is active (modules and functional calls)."""

    def __init__(self, batch: int, device: torch.device) -> None:
        super().__init__()
        self.kernel = torch.zeros(batch, batch, dtype=torch.float64, device=device)

    def __torch_function__(
        self, func: Callable[..., Any], types: Sequence[type], args: Sequence[Any] = (), kwargs: Any = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in _RELU_FUNCTIONS:
            self.kernel += code_kernel(out.sign())  # a ReLU's output is >= 0: its sign is the binary code
        return out


def _naswot_pass(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> dict[str, float]:
    with _scratch_copy(model, images.device) as net, torch.no_grad():
        net.train()
        with _ActivationKernel(len(images), images.device) as activations:
            net(_channels_last(net, images))
        return {"naswot": kernel_logdet(activations.kernel)}


def naswot(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> float:
    """``log |det K_H|`` of the batch's ReLU codes (Mellor et al. 2021); ``-inf`` when singular,
    also for a network without ReLUs. ``labels`` are not used."""
    return _naswot_pass(model, images)["naswot"]


# --- MeCo (Jiang et al. 2023) -----------------------------------------------------------


def correlation_min_eigenvalues(features: Tensor) -> Tensor:
    """MeCo's per-layer value for each image: the smallest eigenvalue of the Pearson correlation
    matrix of its channels, the feature map's positions being the observations.

    ``features`` (N, C, H, W) gives N values. A channel constant over the map has
    no correlation with anything (0/0): its row and column are 0, as the
    reference code sets NaN and inf to 0. In double precision; the matrix is
    symmetric, so ``eigvalsh`` (the reference's general ``eig`` gives the same).
    """
    x = features.detach().reshape(features.shape[0], features.shape[1], -1).double()
    x = x - x.mean(dim=2, keepdim=True)
    covariance = x @ x.transpose(1, 2)
    scale = covariance.diagonal(dim1=1, dim2=2).sqrt()
    correlation = torch.nan_to_num(
        covariance / (scale[:, :, None] * scale[:, None, :]), nan=0.0, posinf=0.0, neginf=0.0
    )
    return torch.linalg.eigvalsh(correlation.clamp(-1.0, 1.0))[:, 0]


def _meco_pass(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> dict[str, float]:
    totals = torch.zeros(min(MECO_IMAGES, len(images)), dtype=torch.float64, device=images.device)

    def add(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal totals
        if isinstance(output, Tensor) and output.dim() == 4:  # a 2-D output (logits) adds 0 in the reference too
            totals = totals + correlation_min_eigenvalues(output)

    with _scratch_copy(model, images.device) as net, torch.no_grad():
        net.train()
        handles = [module.register_forward_hook(add) for module in net.modules()]
        try:
            net(images[: len(totals)])
        finally:
            for handle in handles:
                handle.remove()
    return {"meco": float(totals.mean())}


def meco(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> float:
    """``sum over layers of λ_min(corr(feature map))`` (Jiang et al. 2023), averaged over the first
    ``MECO_IMAGES`` images of the batch, forwarded together in one pass. ``labels`` are not used."""
    return _meco_pass(model, images)["meco"]


# --- ZiCo (Li et al. 2023) --------------------------------------------------------------


def zico_score(gradients: Sequence[Tensor]) -> float:
    """ZiCo of per-batch gradients: ``sum over layers of log(sum over θ of mean|g_θ| / std g_θ)``.

    ``gradients`` holds one tensor per layer, (batches, weights of the layer);
    the mean and the (population) standard deviation run over the batches, as
    numpy's in the reference code. Weights whose gradient does not vary have no
    ratio; a layer with none is left out (the reference's rule), so a network
    whose gradients are all zero scores 0.
    """
    score = 0.0
    for layer in gradients:
        layer = layer.double()
        spread = layer.std(dim=0, correction=0)
        varies = spread > 0
        ratio_sum = float((layer.abs().mean(dim=0)[varies] / spread[varies]).sum())
        if ratio_sum > 0:
            score += math.log(ratio_sum)
    return score


def _zico_pass(model: nn.Module, images: Tensor, labels: Tensor) -> dict[str, float]:
    with _scratch_copy(model, images.device) as net:
        net.train()
        weights = _weights(net)
        per_batch: list[list[Tensor | None]] = []
        for batch_images, batch_labels in zip(images.tensor_split(ZICO_BATCHES), labels.tensor_split(ZICO_BATCHES)):
            net.zero_grad(set_to_none=True)  # each batch's own gradient (the reference code accumulates them)
            F.cross_entropy(net(_channels_last(net, batch_images)), batch_labels).backward()
            per_batch.append([None if w.grad is None else w.grad.detach().flatten() for w in weights])
        layers = [torch.stack(grads) for grads in zip(*per_batch) if all(g is not None for g in grads)]
        return {"zico": zico_score(layers)}


def zico(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """ZiCo (Li et al. 2023) of the cross-entropy gradients of ``ZICO_BATCHES`` equal parts of the batch."""
    return _zico_pass(model, images, labels)["zico"]


# --- AZ-NAS (Lee & Ham 2024): expressivity, progressivity, trainability -----------------


def _stage_modules(net: nn.Module) -> list[nn.Module]:
    """The modules whose outputs AZ-NAS reads: the network's top-level modules (stem, stages,
    transitions, head), looking through wrappers of a single module."""
    children = list(net.children())
    while len(children) == 1:
        children = list(children[0].children())
    return children


def spectrum_entropy(features: Tensor) -> float:
    """AZ-NAS's expressivity of one feature map: the entropy of the normalised eigenvalues of the
    channels' covariance over every position of every image; ``log C`` when the channels are
    uncorrelated with equal variance, 0 when one direction holds all the variance.

    Eigenvalues below 0 are rounding (a covariance is positive semi-definite) and
    count as 0; a map without variance has no directions and scores 0 (the
    reference returns NaN, which voids the whole score).
    """
    x = features.detach().permute(0, 2, 3, 1).reshape(-1, features.shape[1]).float()
    x = x - x.mean(dim=0, keepdim=True)
    eigenvalues = torch.linalg.eigvalsh((x.T @ x / len(x)).double()).clamp(min=0.0)
    if float(eigenvalues.sum()) <= 0:
        return 0.0
    p = eigenvalues / eigenvalues.sum()
    return float(-(p * torch.log(p + 1e-8)).sum())  # 1e-8 as the reference, for p = 0


def jacobian_score(f_in: Tensor, f_out: Tensor) -> float | None:
    """AZ-NAS's trainability of one stage ``f_in -> f_out``: ``2 - σ - 1/σ`` (0 at best, when the
    stage keeps gradients at their scale), σ the largest singular value of the stage's
    channel Jacobian, estimated as the mean over positions of ``(J^T g) g^T`` for a random ±1
    output gradient ``g`` (``E[g g^T] = I``).

    A stage that strides has its input gradient folded into channels (pixel
    unshuffle) so positions match; None when ``f_out`` does not depend on
    ``f_in``; ``-inf`` for an identity stage (the reference's rule).
    """
    g_out = torch.randint_like(f_out, 2) * 2 - 1
    (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, allow_unused=True)
    if g_in is None:
        return None
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf
    out_h, out_w = g_out.shape[2:]
    stride = g_in.shape[2] // out_h
    if stride > 1 or g_in.shape[2:] != g_out.shape[2:]:
        g_in = F.pixel_unshuffle(g_in[:, :, : out_h * stride, : out_w * stride], stride)
    g_out = g_out.permute(0, 2, 3, 1).reshape(-1, g_out.shape[1]).float()
    g_in = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1]).float()
    sigma = float(torch.linalg.svdvals((g_in.T @ g_out / len(g_out)).double()).max())
    return 2 - sigma - 1 / (sigma + 1e-6)


def _az_pass(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> dict[str, float]:
    features: list[Tensor] = []

    def keep(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, Tensor) and output.dim() == 4:
            features.append(output)

    with _scratch_copy(model, images.device) as net:
        net.train()
        handles = [module.register_forward_hook(keep) for module in _stage_modules(net)]
        try:
            net(images)
        finally:
            for handle in handles:
                handle.remove()
        entropies = [spectrum_entropy(f) for f in features]
        steps = [b - a for a, b in zip(entropies, entropies[1:])]
        # Last stage first, as the reference: each call frees the graph of its own stage.
        scores = [jacobian_score(f_in, f_out) for f_in, f_out in reversed(list(zip(features, features[1:])))]
        jacobians = [j for j in scores if j is not None]
    return {
        "az_expressivity": float(sum(entropies)),
        "az_progressivity": min(steps) if steps else -math.inf,
        "az_trainability": sum(jacobians) / len(jacobians) if jacobians else -math.inf,
    }


def az_expressivity(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> float:
    """AZ-NAS's expressivity: ``spectrum_entropy`` of each stage's output, summed."""
    return _az_pass(model, images)["az_expressivity"]


def az_progressivity(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> float:
    """AZ-NAS's progressivity: the least gain of expressivity from one stage to the next
    (``-inf`` with fewer than two stages)."""
    return _az_pass(model, images)["az_progressivity"]


def az_trainability(model: nn.Module, images: Tensor, labels: Tensor | None = None) -> float:
    """AZ-NAS's trainability: ``jacobian_score`` of each stage, averaged (``-inf`` with none)."""
    return _az_pass(model, images)["az_trainability"]


PROXIES: dict[str, Proxy] = {
    proxy.name: proxy
    for proxy in (
        Proxy(
            "synflow",
            _synflow_pass,
            label="synflow",
            description="synaptic flow: sum |θ ⊙ ∂R/∂θ|, positive weights, all-ones input",
            log_scale=True,
        ),
        Proxy(
            "naswot",
            _naswot_pass,
            label="NASWOT",
            description="log-determinant of the ReLU activation-code kernel over the batch",
        ),
        Proxy(
            "grad_norm",
            _loss_gradient_pass,
            label="grad norm",
            description="per-layer L2 norms of the loss gradient, summed",
            log_scale=True,
        ),
        Proxy(
            "snip",
            _loss_gradient_pass,
            label="SNIP",
            description="sum |θ ⊙ ∂L/∂θ|: the loss's sensitivity to each weight",
            log_scale=True,
        ),
        Proxy(
            "meco",
            _meco_pass,
            label="MeCo",
            description="least eigenvalue of each layer's channel correlation, summed over layers",
            votes=False,
        ),
        Proxy(
            "zico",
            _zico_pass,
            label="ZiCo",
            description="sum over layers of log(sum of mean |∂L/∂θ| / std ∂L/∂θ across mini-batches)",
            votes=False,
        ),
        Proxy(
            "az_expressivity",
            _az_pass,
            label="AZ expressivity",
            description="entropy of each stage's channel-covariance spectrum, summed over stages",
            votes=False,
        ),
        Proxy(
            "az_progressivity",
            _az_pass,
            label="AZ progressivity",
            description="least gain of that entropy from one stage to the next",
            votes=False,
        ),
        Proxy(
            "az_trainability",
            _az_pass,
            label="AZ trainability",
            description="2 - σ - 1/σ of each stage's Jacobian (σ its largest singular value), averaged",
            votes=False,
        ),
    )
}


def _known(names: Sequence[str] | None) -> list[str]:
    names = list(PROXIES) if names is None else list(names)
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ConfigError(f"unknown proxy {unknown[0]!r}; known proxies: {', '.join(PROXIES)}")
    return names


def score_proxies(
    model: nn.Module, images: Tensor, labels: Tensor, names: Sequence[str] | None = None
) -> dict[str, float]:
    """Each proxy's score of ``model`` on the batch (``names``: all of ``PROXIES`` when None).

    The model is left exactly as it was (weights, buffers, gradients, mode);
    a score may be ``-inf`` (NASWOT's singular kernel) or NaN (a network whose
    output already overflows). Runs on ``images.device``; proxies that share a
    pass (``grad_norm``, ``snip``) share its cost.
    """
    names = _known(names)
    scores: dict[str, float] = {}
    for name in names:
        if name not in scores:
            scores.update(PROXIES[name].measure(model, images, labels))
    return {name: scores[name] for name in names}


def measure_proxies(
    model: nn.Module, images: Tensor, labels: Tensor, names: Sequence[str] | None = None
) -> tuple[dict[str, float | None], dict[str, str]]:
    """``score_proxies`` for the record: a score that is not finite, or one whose pass raised, is
    None, and the second mapping says why. Running out of memory is not caught: training would too."""
    names = _known(names)
    scores: dict[str, float | None] = {}
    failures: dict[str, str] = {}
    for name in names:
        if name in scores or name in failures:
            continue
        try:
            scores.update(PROXIES[name].measure(model, images, labels))
        except RuntimeError as error:
            if isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error):
                raise
            reason = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
            failures.update({other: reason for other in names if PROXIES[other].measure is PROXIES[name].measure})
    values: dict[str, float | None] = {}
    for name in names:
        value = scores.get(name)
        if value is not None and not math.isfinite(value):
            failures[name] = f"not finite ({value})" + (": singular kernel" if name == "naswot" else "")
            value = None
        values[name] = value
    return values, failures


def proxy_batch(
    data: DataSplits,
    *,
    seed: int,
    size: int = PROXY_BATCH_SIZE,
    resize: int | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """``size`` images of the training split drawn with ``seed``, as the network sees them
    (resized as training resizes, normalised, not augmented), and their labels."""
    images, labels = data.train
    chosen = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[: max(2, size)]
    device = torch.device(device)
    pipeline = BatchPipeline(mean=data.mean, std=data.std, device=device, resize=resize, channels_last=False)
    return pipeline(images[chosen].to(device), augment=False), labels[chosen].to(device)
