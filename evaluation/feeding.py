"""Training images on the training device: all at once when they fit, else batch by batch.

On the host a cached data set is read into memory when it takes at most
``HOST_SHARE`` of the memory this process may still use (``available_memory``:
the RAM's, or its cgroup's), and stays memory-mapped otherwise, paged in as
batches touch it. On the CPU the images are then used where they are. On CUDA a set that fits in
``DEVICE_SHARE`` of the free device memory is copied there once, so a batch
is a gather on the device; a larger one stays on the host as ``HostImages``,
whose batches are gathered into pinned memory by a background thread a few
batches ahead and copied with ``non_blocking=True``, so the copy overlaps the
model's work instead of stalling it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

__all__ = ["DEVICE_SHARE", "HOST_SHARE", "HostImages", "available_memory", "batches_of", "place_images"]

# The share of free device memory the images may take: the rest is for the
# model, its activations and cuDNN's workspaces.
DEVICE_SHARE = 0.4
# The share of available host memory a cached data set may take in memory; past it, it stays mapped.
HOST_SHARE = 0.5
_COPY_BLOCK = 256 * 2**20  # bytes per block when a set moves to the device: no whole-set staging copy


class HostImages:
    """uint8 images kept on the host (in memory or memory-mapped), served to ``device`` batch by batch."""

    def __init__(self, images: torch.Tensor, device: torch.device, *, prefetch: int = 3) -> None:
        self.images = images
        self.device = device
        self.prefetch = prefetch

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> torch.Size:
        return self.images.shape

    def _staged(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The rows at ``index`` gathered into pinned memory (for CUDA), ready for an asynchronous copy."""
        pinned = self.device.type == "cuda"
        if isinstance(index, slice):
            rows = self.images[index]
            return torch.empty(rows.shape, dtype=rows.dtype, pin_memory=pinned).copy_(rows)
        index = index.cpu()
        staged = torch.empty((len(index), *self.images.shape[1:]), dtype=self.images.dtype, pin_memory=pinned)
        return torch.index_select(self.images, 0, index, out=staged)

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        return self._staged(index).to(self.device, non_blocking=True)

    def batches(self, indices: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
        """The batches at ``indices`` on the device, gathered ``prefetch`` ahead by a background thread."""
        ready: queue.Queue[torch.Tensor | BaseException | None] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item: torch.Tensor | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def gather() -> None:
            try:
                for index in indices:
                    if not put(self._staged(index)):
                        return
            except BaseException as error:  # handed to the consumer, which raises it
                put(error)
                return
            put(None)

        worker = threading.Thread(target=gather, name="batch-prefetch", daemon=True)
        worker.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item.to(self.device, non_blocking=True)
        finally:
            stop.set()
            worker.join()


def place_images(images: torch.Tensor, device: torch.device) -> torch.Tensor | HostImages:
    """``images`` where training reads them: as they are on the CPU; on CUDA, on the device when they fit."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    if images.numel() * images.element_size() > DEVICE_SHARE * free:
        return HostImages(images, device)
    placed = torch.empty(images.shape, dtype=images.dtype, device=device)
    rows = max(1, _COPY_BLOCK // max(1, images[:1].numel() * images.element_size()))
    for start in range(0, len(images), rows):
        placed[start : start + rows].copy_(images[start : start + rows])
    return placed


def batches_of(images: torch.Tensor | HostImages, indices: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
    """The batches of ``images`` at each of ``indices``, on the images' device (prefetched for ``HostImages``)."""
    if isinstance(images, HostImages):
        yield from images.batches(indices)
        return
    for index in indices:
        yield images[index]


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int:
    """Bytes this process may still fill: the RAM's available memory, less where a cgroup limits it lower.

    Both cgroup versions: v2's memory.max and memory.current, v1's
    memory.limit_in_bytes and memory.usage_in_bytes (a limit near 2**63 is none).
    """
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        available = next(int(line.split()[1]) * 1024 for line in lines if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        import os

        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:
            available = min(available, max(0, limit - usage))
    return available
