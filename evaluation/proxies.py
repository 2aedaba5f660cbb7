"""Zero-cost proxies: scores of an untrained network on one mini-batch that may rank accuracy.

Four proxies, after their reference definitions:

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
    "PROXIES",
    "PROXY_BATCH_SIZE",
    "Proxy",
    "code_kernel",
    "grad_norm",
    "kernel_logdet",
    "measure_proxies",
    "naswot",
    "proxy_batch",
    "score_proxies",
    "snip",
    "synflow",
]

# Images per scoring batch: NASWOT's kernel is batch x batch; Mellor et al. use 128,
# 64 keeps a default-space model's four proxies well under a second on one CPU core.
PROXY_BATCH_SIZE = 64
# Calls that apply a ReLU, whether through an nn.ReLU module (which calls F.relu)
# or functionally: NASWOT reads the activation codes of every one of them.
_RELU_FUNCTIONS = frozenset({F.relu, F.relu_, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_})


@dataclass(frozen=True)
class Proxy:
    """One zero-cost proxy and how to read it; ``measure`` is the pass that scores it.

    A pass may score several proxies at once (``grad_norm`` and ``snip`` share
    one backward pass), so ``measure`` returns a mapping of names to scores.
    """

    name: str
    measure: Callable[[nn.Module, Tensor, Tensor], dict[str, float]]
    label: str  # for titles, legends and table headers
    description: str
    higher_is_better: bool = True
    log_scale: bool = False  # spans orders of magnitude: plotted on a log axis


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
        weights = [w for w in _weights(net) if w.grad is not None]
        with torch.no_grad():
            return {
                "grad_norm": float(sum(w.grad.norm() for w in weights)),
                "snip": float(sum((w * w.grad).abs().sum() for w in weights)),
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
