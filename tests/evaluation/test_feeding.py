"""Where training reads its images: host memory, a mapped cache, the GPU, or the GPU batch by batch.

The CUDA tests are marked ``cuda`` and skip without a device; benchmarks/gpu_check.sh runs them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from image_files import fashion_folder

from evaluation import Architecture, TrainConfig, build_model, feeding, train
from evaluation.data import load_dataset
from evaluation.feeding import HostImages, RowSubset, available_memory, batches_of, cgroup_headroom, place_images
from evaluation.images import mapping
from evaluation.images.mapping import map_images, will_need

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


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text + "\n")


def test_cgroup_headroom_reads_this_process_cgroup_and_its_ancestors_in_v1(tmp_path: Path) -> None:
    """cgroup v1 (these machines): the limit of the process's own memory cgroup, not of the mount's top."""
    unlimited = str(2**63 - 4096)
    _write(tmp_path / "memory", {"memory.limit_in_bytes": unlimited, "memory.usage_in_bytes": str(9 * 2**30)})
    _write(
        tmp_path / "memory/jobs",
        {"memory.limit_in_bytes": str(2**30), "memory.usage_in_bytes": str(100 * 2**20)},
    )
    _write(
        tmp_path / "memory/jobs/bench",
        {
            "memory.limit_in_bytes": str(512 * 2**20),
            "memory.usage_in_bytes": str(500 * 2**20),
            "memory.stat": f"cache {400 * 2**20}\ntotal_inactive_file {300 * 2**20}\ntotal_active_file 0",
        },
    )
    membership = "9:name=systemd:/\n4:memory:/jobs/bench\n1:cpu:/\n0::/"
    # 512 MiB less 200 MiB in use (500 less 300 of inactive page cache, which is reclaimed first).
    assert cgroup_headroom(tmp_path, membership) == 312 * 2**20
    _write(tmp_path / "memory/jobs", {"memory.usage_in_bytes": str(900 * 2**20)})
    assert cgroup_headroom(tmp_path, membership) == 124 * 2**20, "a parent with less room limits its children"
    assert cgroup_headroom(tmp_path, "4:memory:/elsewhere\n") is None, "an unknown path: the top, unlimited here"
    assert cgroup_headroom(tmp_path, "") is None


def test_cgroup_headroom_reads_v2_memory_max_and_current(tmp_path: Path) -> None:
    _write(tmp_path, {"cgroup.controllers": "cpu memory"})
    _write(
        tmp_path / "user/job",
        {"memory.max": str(256 * 2**20), "memory.current": str(56 * 2**20), "memory.stat": "inactive_file 0"},
    )
    _write(tmp_path / "user", {"memory.max": "max", "memory.current": str(2**30)})
    assert cgroup_headroom(tmp_path, "0::/user/job\n") == 200 * 2**20
    assert cgroup_headroom(tmp_path, "0::/user\n") is None, "memory.max 'max' is no limit"


def test_map_images_maps_a_npy_file_copy_on_write(tmp_path: Path) -> None:
    array = np.random.default_rng(4).integers(0, 256, (30, 3, 5, 7), dtype=np.uint8)
    np.save(tmp_path / "images.npy", array)
    mapped = map_images(tmp_path / "images.npy")
    assert mapped.shape == array.shape and mapped.dtype == np.uint8 and np.array_equal(mapped, array)
    mapped[0] = 0  # copy-on-write: the process's own page changes, the file does not
    assert np.array_equal(np.load(tmp_path / "images.npy"), array), "the cache file is never written through"
    tensor = torch.from_numpy(mapped)
    assert mapping._mapping_of(tensor[10:].data_ptr()) is not None, "a view of the mapping is recognised"
    assert mapping._mapping_of(torch.from_numpy(array).data_ptr()) is None, "memory is not a mapping"
    will_need(tensor[10:], torch.tensor([0, 19]))  # advice only: nothing to see but no error
    will_need(tensor, torch.tensor([10**6]))  # past the end: the gather reports it, not the advice
    will_need(torch.from_numpy(array), torch.tensor([1]))


def _storage_reads() -> int | None:
    try:
        lines = Path("/proc/self/io").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith("read_bytes:")), None)


def test_batches_from_a_cold_mapping_read_their_rows_not_the_device_read_ahead(tmp_path: Path) -> None:
    """Random batches from a mapped cache that is not in the page cache: the process reads about the rows
    it uses. Without MADV_RANDOM a fault reads ahead read_ahead_kb around it (8 MiB on some virtual disks):
    20 rows of 12 KiB would cost tens of MiB here."""
    path = tmp_path / "images.npy"
    rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(2000, 3, 64, 64))
    rows[:] = np.random.default_rng(5).integers(0, 256, rows.shape, dtype=np.uint8)
    rows.flush()
    del rows
    descriptor = os.open(path, os.O_RDONLY)
    os.fsync(descriptor)
    os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)  # this file's clean pages only
    os.close(descriptor)
    before = _storage_reads()
    if before is None:
        pytest.skip("/proc/self/io is not readable here")
    images = torch.from_numpy(map_images(path))
    indices = [torch.randperm(2000, generator=torch.Generator().manual_seed(k))[:5] for k in range(4)]
    batches = list(batches_of(images, indices))
    read = _storage_reads() - before
    used = 20 * images[0].numel()
    assert all(torch.equal(b, images[i]) for b, i in zip(batches, indices))
    assert read <= 2 * used + 64 * 1024, f"read {read:,} bytes from storage for {used:,} bytes of rows"


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


def _mapped_file(tensor: torch.Tensor) -> Path | None:
    """The file whose mapping holds ``tensor``'s memory (Linux's /proc/self/maps), None for anonymous memory."""
    address = tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        low, high = (int(part, 16) for part in fields[0].split("-"))
        if low <= address < high:
            return Path(fields[5]) if len(fields) == 6 and fields[5].startswith("/") else None
    return None


@pytest.fixture(scope="module")
def fashion_mapped(fashion, tmp_path_factory: pytest.TempPathFactory):
    """The same folder's cache, left memory-mapped as a cache larger than memory is."""
    from evaluation import data as data_module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(data_module, "HOST_SHARE", 0.0)
        return load_dataset(fashion.name, cache_dir=Path(fashion.cache).parent.parent, workers=1)


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


def test_a_row_subset_reads_its_rows_when_asked_directly_or_through_host_batches() -> None:
    images = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (40, 2, 3, 3), dtype=np.uint8))
    rows = torch.tensor([1, 4, 5, 9, 20, 33, 39])
    subset = RowSubset(images, rows)
    assert len(subset) == 7 and subset.shape == (7, 2, 3, 3) and subset.dtype == torch.uint8
    copied = images[rows]
    assert torch.equal(subset[torch.tensor([6, 0, 3])], copied[[6, 0, 3]]) and torch.equal(subset[2:5], copied[2:5])
    assert place_images(subset, torch.device("cpu")) is subset, "on the CPU the subset stays a view"
    host = HostImages(subset, torch.device("cpu"))
    indices = [torch.tensor([0, 6]), torch.tensor([5, 1, 2])]
    assert all(torch.equal(b, copied[i]) for b, i in zip(host.batches(indices), indices)), "prefetched batches"
    assert torch.equal(host[1:4], copied[1:4]), "a sliced batch"


def test_a_training_subset_of_a_mapped_cache_is_never_copied_and_trains_as_a_copy_would(
    fashion_mapped, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train_fraction < 1 on a cache left on disk: the subset indexes the mapping batch by batch, and the
    run is the one the former copy (``images[subset]``) gave, to the bit."""
    from evaluation import training

    cache_file = Path(fashion_mapped.cache) / "images.npy"
    assert _mapped_file(fashion_mapped.train[0]) == cache_file, "the fixture's images are a mapping of the cache"
    images, _ = training._training_images(fashion_mapped, 0.5, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert isinstance(images, RowSubset) and len(images) == len(fashion_mapped.train[1]) // 2, type(images)
    assert _mapped_file(images.images) == cache_file, "the subset's rows are read from the mapping itself"
    config = TrainConfig(epochs=1, batch_size=16, precision="fp32", lr=0.05, train_fraction=0.5)
    runs = []
    for copied in (False, True):
        if copied:
            monkeypatch.setattr(training, "RowSubset", lambda images, rows: images[rows])
        torch.manual_seed(0)
        model = build_model(Architecture.from_dict(TINY), fashion_mapped.input_size, fashion_mapped.num_classes)
        result = train(model, fashion_mapped, config)
        runs.append((result.val_accuracies, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0], f"validation accuracies {runs[0][0]} and {runs[1][0]}"
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1])), "the same weights from either subset"


@pytest.mark.cuda
@cuda
def test_a_row_subset_moves_to_the_device_or_streams_from_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    images = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (100, 1, 6, 6), dtype=np.uint8))
    rows = torch.arange(0, 100, 3)
    placed = place_images(RowSubset(images, rows), torch.device("cuda"))
    assert isinstance(placed, torch.Tensor) and placed.is_cuda and torch.equal(placed.cpu(), images[rows])
    monkeypatch.setattr(feeding, "DEVICE_SHARE", 0.0)
    streamed = place_images(RowSubset(images, rows), torch.device("cuda"))
    assert isinstance(streamed, HostImages), type(streamed)
    indices = [torch.randperm(len(rows))[:8] for _ in range(5)]
    for index, batch in zip(indices, streamed.batches(indices)):
        assert batch.is_cuda and torch.equal(batch.cpu(), images[rows[index]]), "prefetched subset batches"


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
