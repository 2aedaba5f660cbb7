"""The closed-form training memory: above autograd's saved tensors, and a refusal before anything is built."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_builder_property import architectures
from timing import cpu_seconds

from evaluation import Architecture, ArchitectureError, Stage, build_model, count, preset
from evaluation.blocks import DenseSpec
from evaluation.memory import MemoryRefused, check_memory, estimate_memory, machine_memory_bytes
from evaluation.presets import PRESETS
from evaluation.profile import activation_bytes


def measured_ratio(arch: Architecture, input_size: tuple[int, int, int], batch_size: int) -> float:
    estimate = estimate_memory(arch, input_size, 10, batch_size=batch_size)
    saved = activation_bytes(build_model(arch, input_size, 10), input_size, batch_size=batch_size)
    return estimate.activations / saved


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_estimate_memory_bounds_saved_activations_of_presets(name: str) -> None:
    ratio = measured_ratio(preset(name), (3, 32, 32), 2)
    assert 1.0 <= ratio <= 2.5, f"{name}: estimate / autograd's saved tensors = {ratio:.2f}, expected in [1, 2.5]"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=architectures(), side=st.integers(4, 20))
def test_estimate_memory_bounds_saved_activations_of_random_architectures(arch: Architecture, side: int) -> None:
    try:
        count(arch, (3, side, side), 10)
    except ArchitectureError:
        assume(False)
    ratio = measured_ratio(arch, (3, side, side), 2)
    assert ratio >= 1.0, f"the estimate must not be below the measured activations: {ratio:.2f} for {arch}"


def test_estimate_memory_counts_parameters_as_the_closed_form() -> None:
    arch = preset("resnet18")
    estimate = estimate_memory(arch, (3, 224, 224), 1000, batch_size=1)
    assert estimate.params == count(arch, (3, 224, 224), 1000).params == 11_689_512, estimate
    assert estimate.state == 16 * estimate.params, "weights, gradients and two optimizer slots, 4 bytes each"


HUGE_DEPTH = 5000


def huge_dense(depth: int = HUGE_DEPTH) -> Architecture:
    """The model that grew `search profile` to 22.7 GB before the kernel killed it (at depth 5000)."""
    return Architecture(stages=(Stage(DenseSpec(growth_rate=4096), depth=depth),))


def test_check_memory_refuses_at_once_naming_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused from the closed form, nothing built: at most linear in depth, so refusing 5000 layers
    costs at most 5000 refusals of one (measured: 25 to 35 times as much)."""
    built = []
    monkeypatch.setattr(torch.nn.Module, "__init__", lambda *a, **k: built.append(1))
    errors: list[MemoryRefused] = []

    def refuse(depth: int, limit_bytes: float) -> None:
        with pytest.raises(MemoryRefused, match="--memory-limit") as error:
            check_memory(huge_dense(depth), (3, 224, 224), 1000, batch_size=16, limit_bytes=limit_bytes)
        errors.append(error.value)

    one_layer = cpu_seconds(lambda: refuse(1, 1e9), rounds=5)  # 57 GB for one layer: over 1 GB
    seconds = cpu_seconds(lambda: refuse(HUGE_DEPTH, 64e9), rounds=5)
    assert built == [], f"{len(built)} modules built"
    assert seconds < HUGE_DEPTH * one_layer, (
        f"refusing {HUGE_DEPTH} layers took {seconds * 1e3:.2f} ms of CPU, one layer {one_layer * 1e3:.3f} ms: "
        f"{seconds / one_layer:.0f}x, more than linear in depth"
    )
    message = str(errors[-1])
    assert "GB limit" in message and "\n" not in message, message


def test_architecture_refuses_an_absurd_depth_before_any_count() -> None:
    with pytest.raises(ArchitectureError, match="depth must be <= 10,000, got 1000000000000"):
        Stage(DenseSpec(growth_rate=1), depth=10**12).validate("stages[0]")


def test_check_memory_lets_a_small_model_through_under_the_machines_memory() -> None:
    estimate = check_memory(preset("d2l_densenet"), (1, 96, 96), 10, batch_size=64)
    assert 0 < estimate.total < machine_memory_bytes(), estimate
