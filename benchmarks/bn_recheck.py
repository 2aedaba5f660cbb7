"""Was the headline's 40-epoch weight averaging lost to its batch-norm pass? Recompute it in fp32 and see.

The averaging stage at lr 0.15 (``headline/final-80-epochs-swa-40/``) ended
2.7 points below the 80-epoch models. Its batch-norm statistics were
recomputed, as SWA prescribes, on one pass over the training images augmented
as in training, under bf16 autocast. This loads seed 0's averaged weights,
recomputes the statistics in fp32 on the training images without
augmentation, and tests the model once more, beside the saved model's test
accuracy at the same precision. Writes ``benchmarks/results/bn_recheck.json``.

    python benchmarks/bn_recheck.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.optim import swa_utils

from evaluation import TrainConfig, build_model, evaluate, load_architecture
from evaluation.atomic import atomic_write
from evaluation.data import BatchPipeline, load_dataset

RESULTS = Path(__file__).resolve().parent / "results" / "bn_recheck.json"
MODEL = RESULTS.parent / "headline" / "final-80-epochs-swa-40" / "trial-188" / "seed-0"
BATCH = 128  # the headline's training batch


def test_accuracy(model: torch.nn.Module, precision: str) -> float:
    data = load_dataset("fashion_mnist", validation_size=0)
    config = TrainConfig(device="cpu", precision=precision)
    return evaluate(model, *data.test, config, mean=data.mean, std=data.std)


def recompute_bn_fp32(model: torch.nn.Module) -> None:
    """BN statistics of one pass over the training images, unaugmented, in fp32 (``swa_utils.update_bn``)."""
    data = load_dataset("fashion_mnist", validation_size=0)
    pipeline = BatchPipeline(mean=data.mean, std=data.std, device=torch.device("cpu"), resize=None, channels_last=True)
    images = data.train[0]
    batches = (pipeline(images[start : start + BATCH], augment=False) for start in range(0, len(images), BATCH))
    with torch.no_grad():
        swa_utils.update_bn(batches, model)


def main() -> int:
    model = build_model(load_architecture(MODEL / "architecture.yaml"), (1, 28, 28), 10)
    model.load_state_dict(torch.load(MODEL / "weights.pt", map_location="cpu", weights_only=True))
    recorded = json.loads((MODEL / "result.json").read_text())["test_accuracy"]
    saved = {precision: test_accuracy(model, precision) for precision in ("bf16", "fp32")}
    recompute_bn_fp32(model)
    recomputed = {precision: test_accuracy(model, precision) for precision in ("bf16", "fp32")}
    result = {
        "command": "python benchmarks/bn_recheck.py",
        "model": str(MODEL.relative_to(RESULTS.parent)),
        "recorded_test_accuracy": recorded,
        "test_accuracy_as_saved": saved,
        "test_accuracy_bn_recomputed_fp32_unaugmented": recomputed,
    }
    with atomic_write(RESULTS) as temporary:
        temporary.write_text(json.dumps(result, indent=1) + "\n")
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
