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

A subset of the training images (``train_fraction`` below 1) is a ``RowSubset``:
the rows are looked up when a batch asks for them, never copied out at once,
so a subset of a mapped cache larger than memory pages as the whole set does.
Batches read from a mapped cache ask the kernel for the next batch's rows
while the current one trains (``evaluation.images.mapping.will_need``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

import torch

from evaluation.images.mapping import will_need

__all__ = [
    "DEVICE_SHARE",
    "HOST_SHARE",
    "HostImages",
    "RowSubset",
    "available_memory",
    "batches_of",
    "cgroup_headroom",
    "place_images",
]

# The share of free device memory the images may take: the rest is for the
# model, its activations and cuDNN's workspaces.
DEVICE_SHARE = 0.4
# The share of available host memory a cached data set may take in memory; past it, it stays mapped.
HOST_SHARE = 0.5
_COPY_BLOCK = 256 * 2**20  # bytes per block when a set moves to the device: no whole-set staging copy


class RowSubset:
    """The rows ``rows`` of ``images``, read when a batch asks for them.

    ``subset[index]`` is ``images[rows[index]]``, the same pixels as indexing a
    copy ``images[rows]``, without that copy: for a memory-mapped cache it would
    read the whole subset into memory at once, which a cache larger than
    memory cannot afford. (Reading each batch's rows in file order was tried
    and measured no faster from a cold mapping, so the rows are read as asked.)
    """

    def __init__(self, images: torch.Tensor, rows: torch.Tensor) -> None:
        self.images = images
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.images.shape[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return self.images.dtype

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        return self.images[self.rows[index]]

    def will_need(self, index: torch.Tensor) -> None:
        will_need(self.images, self.rows[index])


def _row_bytes(images: torch.Tensor | RowSubset) -> int:
    return images.shape[1:].numel() * torch.empty((), dtype=images.dtype).element_size()


class HostImages:
    """uint8 images kept on the host (in memory or memory-mapped), served to ``device`` batch by batch."""

    def __init__(self, images: torch.Tensor | RowSubset, device: torch.device, *, prefetch: int = 3) -> None:
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
        images = self.images
        if isinstance(images, RowSubset):  # gather straight from the whole set: one copy, into pinned memory
            index = images.rows[index]
            images = images.images
        if isinstance(index, slice):
            rows = images[index]
            return torch.empty(rows.shape, dtype=rows.dtype, pin_memory=pinned).copy_(rows)
        index = index.cpu()
        staged = torch.empty((len(index), *images.shape[1:]), dtype=images.dtype, pin_memory=pinned)
        return torch.index_select(images, 0, index, out=staged)

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
                for k, index in enumerate(indices):
                    _ask_ahead(self.images, indices, k)
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


def place_images(images: torch.Tensor | RowSubset, device: torch.device) -> torch.Tensor | RowSubset | HostImages:
    """``images`` where training reads them: as they are on the CPU; on CUDA, on the device when they fit."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    if len(images) * _row_bytes(images) > DEVICE_SHARE * free:
        return HostImages(images, device)
    placed = torch.empty(images.shape, dtype=images.dtype, device=device)
    rows = max(1, _COPY_BLOCK // max(1, _row_bytes(images)))
    for start in range(0, len(images), rows):
        placed[start : start + rows].copy_(images[start : start + rows])
    return placed


def batches_of(
    images: torch.Tensor | RowSubset | HostImages, indices: Sequence[torch.Tensor]
) -> Generator[torch.Tensor, None, None]:
    """The batches of ``images`` at each of ``indices``, on the images' device (prefetched for ``HostImages``)."""
    if isinstance(images, HostImages):
        yield from images.batches(indices)
        return
    for k, index in enumerate(indices):
        _ask_ahead(images, indices, k)
        yield images[index]


def _ask_ahead(images: torch.Tensor | RowSubset, indices: Sequence[torch.Tensor], k: int) -> None:
    """Before batch ``k`` is read from a mapped cache: ask for its rows (the first) and the next batch's.

    The next batch's rows are then read from disk while batch ``k`` trains.
    """
    for ahead in (k, k + 1) if k == 0 else (k + 1,):
        if ahead < len(indices) and indices[ahead].device.type == "cpu":
            if isinstance(images, RowSubset):
                images.will_need(indices[ahead])
            else:
                will_need(images, indices[ahead])


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _inactive_file(folder: Path) -> int:
    """Page cache in ``folder``'s cgroup that the kernel would reclaim first (v1 and v2 name it differently)."""
    try:
        lines = (folder / "memory.stat").read_text().splitlines()
    except OSError:
        return 0
    fields = dict(line.split(maxsplit=1) for line in lines if " " in line)
    value = fields.get("total_inactive_file", fields.get("inactive_file", "0"))
    return int(value) if value.isdigit() else 0


def _own_cgroups(membership: str) -> dict[str, str]:
    """This process's memory cgroup path per version ("v1", "v2"), from /proc/self/cgroup's lines."""
    found = {}
    for line in membership.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            found["v2"] = path
        elif "memory" in controllers.split(","):
            found["v1"] = path
    return found


def cgroup_headroom(root: Path, membership: str) -> int | None:
    """Bytes this process's memory cgroups (its own and every ancestor's) still allow; None when none limits it.

    ``root``: where cgroups are mounted (/sys/fs/cgroup); ``membership``: the
    text of /proc/self/cgroup. Both versions: v2's memory.max and
    memory.current under ``root`` (or ``root``/unified), v1's
    memory.limit_in_bytes and memory.usage_in_bytes under ``root``/memory (a
    limit near 2**63 is none). The usage counts page cache, of which the
    inactive part is reclaimed before anything is killed, so it is left out:
    a process that has read a mapped file is not thereby short of memory.
    A cgroup path that is not there (another cgroup namespace) falls back to
    the mount's top.
    """
    paths = _own_cgroups(membership)
    v2_root = root if (root / "cgroup.controllers").is_file() else root / "unified"
    mounts = {
        "v2": (v2_root, "memory.max", "memory.current"),
        "v1": (root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"),
    }
    headroom = None
    for version, (top, limit_name, usage_name) in mounts.items():
        own = top / paths.get(version, "/").lstrip("/")
        folder = own if own.is_dir() else top
        for level in (folder, *folder.parents):
            limit, usage = _read_int(level / limit_name), _read_int(level / usage_name)
            if limit is not None and usage is not None and limit < 2**60:
                room = max(0, limit - max(0, usage - _inactive_file(level)))
                headroom = room if headroom is None else min(headroom, room)
            if level == top:
                break
    return headroom


def available_memory() -> int:
    """Bytes this process may still fill: the RAM's available memory, less where a cgroup limits it lower."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        available = next(int(line.split()[1]) * 1024 for line in lines if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        import os

        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    try:
        membership = Path("/proc/self/cgroup").read_text()
    except OSError:
        membership = ""
    headroom = cgroup_headroom(Path("/sys/fs/cgroup"), membership)
    return available if headroom is None else min(available, headroom)
