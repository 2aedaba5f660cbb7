"""Where training reads its images: host memory, a mapped cache, the GPU, or the GPU batch by batch.

The CUDA tests are marked ``cuda`` and skip without a device; benchmarks/gpu_check.sh runs them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from image_files import fashion_folder

from evaluation import Architecture, TrainConfig, build_model, feeding, train
from evaluation.data import load_dataset
from evaluation.feeding import HostImages, available_memory, batches_of, place_images

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
TINY = {
    "stem": {"style": "small", "width": 8},
    "stages": [{"block": "dense", "depth": 1, "growth_rate": 8, "bn_size": 0}],
}


def test_available_memory_is_at_most_the_ram_available() -> None:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    ram = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    available = available_memory()
    assert 0 < available <= ram * 1.05, f"{available} bytes available, the RAM says {ram}"


def test_on_the_cpu_images_stay_where_they_are_and_batches_are_gathers() -> None:
    images = torch.randint(0, 256, (20, 1, 4, 4), dtype=torch.uint8)
    assert place_images(images, torch.device("cpu")) is images, "no copy on the CPU"
    indices = [torch.tensor([3, 1]), torch.tensor([0, 19, 7])]
    for index, batch in zip(indices, batches_of(images, indices)):
        assert torch.equal(batch, images[index]), f"batch at {index.tolist()}"


def test_host_images_prefetch_in_order_and_stop_with_their_loop() -> None:
    """The prefetching logic, on the CPU (where nothing is pinned); the CUDA test below repeats it on a GPU."""
    images = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (50, 1, 3, 3), dtype=np.uint8))
    host = HostImages(images, torch.device("cpu"), prefetch=2)
    indices = [torch.randperm(50)[:8] for _ in range(20)]
    threads = threading.active_count()
    served = list(batches_of(host, indices))
    assert len(served) == 20 and all(torch.equal(b, images[i]) for b, i in zip(served, indices)), (
        "every batch, in order"
    )
    stream = host.batches(indices)
    next(stream)
    stream.close()
    assert threading.active_count() == threads, "the prefetching thread ends when its loop is left"
    failing = HostImages(images, torch.device("cpu"))
    with pytest.raises(IndexError):
        list(failing.batches([torch.tensor([0]), torch.tensor([99])]))  # the thread's error reaches the loop
    assert threading.active_count() == threads, "and the thread is gone after an error too"


@pytest.fixture(scope="module")
def fashion(tmp_path_factory: pytest.TempPathFactory):
    root = fashion_folder(tmp_path_factory.mktemp("feeding") / "png", per_class=40)
    return load_dataset(f"folder:{root}", cache_dir=root.parent / "cache", workers=1)


def test_training_through_host_batches_matches_the_plain_path(fashion, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer's streaming path (CPU indices, prefetched batches), run on the CPU: the same run to the bit."""
    from evaluation import training

    config = TrainConfig(epochs=1, batch_size=32, precision="fp32", lr=0.05)
    runs = []
    for streamed in (False, True):
        if streamed:
            monkeypatch.setattr(training, "place_images", lambda images, device: HostImages(images, device))
        torch.manual_seed(0)
        model = build_model(Architecture.from_dict(TINY), fashion.input_size, fashion.num_classes)
        result = train(model, fashion, config)
        runs.append((result.val_accuracies, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0], f"validation accuracies {runs[0][0]} and {runs[1][0]}"
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1])), "the same weights from either path"


@pytest.mark.cuda
@cuda
def test_a_set_that_fits_moves_to_the_device_whole() -> None:
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    placed = place_images(images, torch.device("cuda"))
    assert isinstance(placed, torch.Tensor) and placed.is_cuda, type(placed)
    assert torch.equal(placed.cpu(), images), "the same images on the device"


@pytest.mark.cuda
@cuda
def test_a_set_too_large_streams_through_pinned_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeding, "DEVICE_SHARE", 0.0)
    array = np.random.default_rng(0).integers(0, 256, (100, 1, 6, 6), dtype=np.uint8)
    images = torch.from_numpy(array)
    placed = place_images(images, torch.device("cuda"))
    assert isinstance(placed, HostImages) and len(placed) == 100, type(placed)
    assert torch.equal(placed[torch.tensor([5, 2, 99])].cpu(), images[[5, 2, 99]]), "an indexed batch"
    assert torch.equal(placed[10:20].cpu(), images[10:20]), "a sliced batch"
    indices = [torch.randperm(100)[:16] for _ in range(12)]
    threads = threading.active_count()
    for index, batch in zip(indices, placed.batches(indices)):
        assert batch.is_cuda and torch.equal(batch.cpu(), images[index]), "prefetched batches in order"
    stream = placed.batches(indices)
    next(stream)
    stream.close()  # a loop left early (a pruned trial)
    assert threading.active_count() == threads, "the prefetching thread ends with its loop"


@pytest.mark.cuda
@cuda
def test_training_from_the_host_matches_training_from_the_device(fashion, monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainConfig(epochs=1, batch_size=32, precision="fp32", device="cuda", lr=0.05)
    accuracies = []
    for share in (feeding.DEVICE_SHARE, 0.0):
        monkeypatch.setattr(feeding, "DEVICE_SHARE", share)
        torch.manual_seed(0)
        model = build_model(Architecture.from_dict(TINY), fashion.input_size, fashion.num_classes)
        result = train(model, fashion, config)
        accuracies.append(result.val_accuracies[-1])
    assert abs(accuracies[0] - accuracies[1]) <= 2 / len(fashion.val[1]), (
        f"the same batches from the device and from the host: {accuracies}"
    )
