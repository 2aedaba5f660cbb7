"""How far onnxruntime's logits are from PyTorch's for exported networks.

``evaluation.export_onnx`` checks every file it writes against a tolerance
(``atol 1e-4 + rtol 1e-4 x |logit|``); this records how much room is left:
the largest difference ``evaluation.onnx_discrepancy`` finds (seeded random
batches of 1 and 3 images) and the largest logit, for the d2l book's DenseNet
at 96 px as initialised with seed 0, and for the headline's trained 80-epoch
model (seed 0's weights.pt, 28 px). Writes
``benchmarks/results/onnx_discrepancy.json``.

    python benchmarks/onnx_discrepancy.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from torch import nn

from evaluation import build_model, export_onnx, load_architecture, onnx_discrepancy, preset
from evaluation.atomic import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "onnx_discrepancy.json"
HEADLINE_MODEL = RESULTS.parent / "headline" / "final-80-epochs" / "trial-188" / "seed-0"


def untrained_d2l() -> tuple[nn.Module, tuple[int, int, int]]:
    torch.manual_seed(0)
    return build_model(preset("d2l_densenet"), (1, 96, 96), 10), (1, 96, 96)


def headline_model() -> tuple[nn.Module, tuple[int, int, int]]:
    model = build_model(load_architecture(HEADLINE_MODEL / "architecture.yaml"), (1, 28, 28), 10)
    model.load_state_dict(torch.load(HEADLINE_MODEL / "weights.pt", map_location="cpu", weights_only=True))
    return model, (1, 28, 28)


def measure(model: nn.Module, shape: tuple[int, int, int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(model, Path(folder) / "model.onnx", shape)
        difference = onnx_discrepancy(path, model, shape)
    with torch.no_grad():
        largest_logit = model.eval()(torch.randn(3, *shape, generator=torch.Generator().manual_seed(0))).abs().max()
    return {"input": list(shape), "largest_difference": difference, "largest_logit": float(largest_logit)}


def main() -> int:
    result = {
        "command": "python benchmarks/onnx_discrepancy.py",
        "d2l_densenet, untrained (seed 0)": measure(*untrained_d2l()),
        f"headline {HEADLINE_MODEL.relative_to(RESULTS.parent)}": measure(*headline_model()),
    }
    with atomic_write(RESULTS) as temporary:
        temporary.write_text(json.dumps(result, indent=1) + "\n")
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
