"""Every torchvision preset is torchvision's model: same parameters, MACs, logits."""

import pytest
import torch
import torchvision

from evaluation import build_model, load_torchvision_state_dict, preset
from evaluation.profile import count_macs

TORCHVISION_PRESETS = ["densenet121", "densenet161", "densenet169", "densenet201", "resnet18", "resnet34", "resnet50"]
INPUT = (3, 224, 224)


@pytest.fixture(scope="module", params=TORCHVISION_PRESETS)
def pair(request):
    name = request.param
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None).eval()
    ours = build_model(preset(name), (3, 224, 224), 1000).eval()
    return name, ours, reference


def test_preset_params_equal_torchvision(pair):
    name, ours, reference = pair
    n_ours = sum(p.numel() for p in ours.parameters())
    n_reference = sum(p.numel() for p in reference.parameters())
    assert n_ours == n_reference, f"{name}: {n_ours:,} parameters, torchvision has {n_reference:,}"


def test_preset_macs_match_fvcore_on_torchvision_and_published_gflops(pair):
    name, ours, reference = pair
    macs_ours, macs_reference = count_macs(ours, INPUT), count_macs(reference, INPUT)
    assert abs(macs_ours - macs_reference) <= 0.005 * macs_reference, (
        f"{name}: {macs_ours:,} MACs, fvcore counts {macs_reference:,} on torchvision's model"
    )
    # torchvision publishes GFLOPS (meaning GMACs, conv + linear) per weight enum.
    weights = torchvision.models.get_model_weights(name).DEFAULT
    published = weights.meta["_ops"] * 1e9
    assert abs(macs_ours - published) <= 0.005 * published, (
        f"{name}: {macs_ours / 1e9:.3f} GMACs, torchvision publishes {weights.meta['_ops']}"
    )


def test_preset_loads_torchvision_state_dict_and_gives_same_logits(pair):
    name, ours, reference = pair
    # Non-trivial BN statistics, so eval-mode normalisation is exercised too.
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    load_torchvision_state_dict(ours, reference.state_dict())
    x = torch.randn(2, *INPUT, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        difference = (ours(x) - reference(x)).abs().max().item()
    assert difference <= 1e-4, f"{name}: logits differ by {difference:.2e}"
