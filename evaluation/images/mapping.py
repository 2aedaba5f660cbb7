"""A cache's images mapped from disk, and asking the kernel for a batch's rows before they are read.

Training reads the rows of a batch in random order. Left to itself, a page
fault in a file mapping reads ahead around the fault as much as the block
device says (``read_ahead_kb``: 8 MiB on some virtual disks, 50 times a 224 px
RGB image); for a cache larger than memory, what was read ahead is evicted
again before it is used, and an epoch reads the file many times over. So the
mapping is advised for random access (``MADV_RANDOM``: a fault reads the page
it needs), and the rows of the next batch are asked for in advance
(``MADV_WILLNEED``: the kernel reads them in parallel, in the background),
which reads each row once, as a whole, while the current batch trains.
"""

from __future__ import annotations

import mmap
import weakref
from pathlib import Path

import numpy as np
import torch

__all__ = ["map_images", "will_need"]

_PAGE = mmap.PAGESIZE
# Start address of each live mapping -> (its length, a weak reference to it): which tensors are mapped.
_MAPPINGS: dict[int, tuple[int, weakref.ref[mmap.mmap]]] = {}


def map_images(path: Path) -> np.ndarray:
    """The array of a .npy file, mapped copy-on-write and advised for random access."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)
        offset = handle.tell()
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    if hasattr(mapping, "madvise"):  # Linux and macOS
        mapping.madvise(mmap.MADV_RANDOM)
        start = np.frombuffer(mapping, dtype=np.uint8, count=1).ctypes.data
        _MAPPINGS[start] = (len(mapping), weakref.ref(mapping, lambda _: _MAPPINGS.pop(start, None)))
    return np.ndarray(shape, dtype=dtype, buffer=mapping, offset=offset, order="F" if fortran else "C")


def _mapping_of(address: int) -> tuple[int, mmap.mmap] | None:
    """(start address, mapping) of the live mapping holding ``address``, if any."""
    for start, (length, reference) in list(_MAPPINGS.items()):
        if start <= address < start + length:
            mapping = reference()
            return None if mapping is None else (start, mapping)
    return None


def will_need(images: torch.Tensor, index: torch.Tensor) -> None:
    """Ask the kernel to read rows ``index`` of ``images`` now, when ``images`` is a view of a mapped cache.

    A no-op for images in memory. ``index``: CPU indices along the first dimension.
    """
    if not _MAPPINGS or images.device.type != "cpu" or len(images) == 0:
        return
    found = _mapping_of(images.data_ptr())
    if found is None:
        return
    start, mapping = found
    stride = images.stride(0) * images.element_size()
    size = images[0].numel() * images.element_size()
    first = images.data_ptr() - start
    try:
        for row in index.tolist():
            begin = first + row * stride
            aligned = begin - begin % _PAGE
            mapping.madvise(mmap.MADV_WILLNEED, aligned, begin + size - aligned)
    except (ValueError, OSError):  # a mapping closed meanwhile, or an index past the end: the gather will say
        return
