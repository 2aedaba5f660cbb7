"""One image file to a square uint8 array: the toolkit's one decoding, for training and for predict.

Pillow opens the file; EXIF orientation is applied; the mode is converted to
the data set's channels (alpha composited on a grey ``background``, palette
and CMYK through RGB, 16-bit scaled by 1/257); the image is then fitted to a
``side`` x ``side`` square by a ``resize`` policy:

- ``crop`` (default): the shorter side to ``side``, then the centre square,
  exactly as torchvision's ``Resize(side)`` + ``CenterCrop(side)`` on a PIL
  image (bilinear, with Pillow's antialiasing); nothing is distorted, the
  borders of the longer side are lost;
- ``pad``: the longer side to ``side``, centred on the background; nothing is
  lost or distorted, at the cost of blank bands;
- ``stretch``: both sides to ``side``; everything kept, the aspect changed.

A JPEG much larger than needed is decoded at a reduced DCT scale (libjpeg's
draft mode), never below the size the policy needs: several times faster on
photos, with the downscale done by the decoder instead of the resize.

This module imports neither torch nor the rest of the toolkit, so decoding
processes start light. Every failure comes back as a one-line reason.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

__all__ = [
    "CHANNELS",
    "RESIZE_POLICIES",
    "Decoding",
    "Header",
    "ImageUnreadable",
    "decode_file",
    "fit_square",
    "image_extensions",
    "natural_channels",
    "read_header",
    "to_channels",
]

RESIZE_POLICIES = ("crop", "pad", "stretch")
CHANNELS = (1, 3)
# Pillow's modes of one grey channel (with or without alpha); every other mode is colour.
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_SIXTEEN_BIT = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

# A truncated file is a bad file, never a silently grey-padded image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class Decoding:
    """How a file becomes a training image: the square's side, its channels, the policy, the background."""

    side: int
    channels: int
    resize: str = "crop"
    background: int = 255  # grey level behind transparent pixels and pad bands: white, as most viewers show them

    def __post_init__(self) -> None:
        if self.side < 1:
            raise ValueError(f"side must be >= 1, got {self.side}")
        if self.channels not in CHANNELS:
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_POLICIES)}, got {self.resize!r}")
        if not 0 <= self.background <= 255:
            raise ValueError(f"background must be a grey level 0-255, got {self.background}")


@dataclass(frozen=True)
class Header:
    """What an image file says about itself before its pixels are read."""

    width: int
    height: int
    mode: str
    format: str


class ImageUnreadable(Exception):
    """A file that cannot be decoded; the message is the one-line reason kept in the skipped list."""


def image_extensions() -> frozenset[str]:
    """Lower-case extensions Pillow can open (``.jpg``, ``.png``, ...): the files a folder source lists."""
    return frozenset(ext.lower() for ext in Image.registered_extensions())


def natural_channels(mode: str) -> int:
    """1 for grey modes, 3 for every other (palettes included: a palette may hold colour)."""
    return 1 if mode in _GREY_MODES else 3


def _reason(error: BaseException) -> str:
    """``Type: message`` on one line, for the skipped-files list."""
    if isinstance(error, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"decompression bomb: {' '.join(str(error).split())}"
    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can read (cannot identify image file)"
    if isinstance(error, OSError) and error.strerror:
        return f"cannot read: {error.strerror}"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _open(path: Path) -> Image.Image:
    """``Image.open`` with Pillow's decompression-bomb warning (past MAX_IMAGE_PIXELS) raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def read_header(path: str | os.PathLike[str]) -> Header:
    """Size, mode and format from the file's header; ``ImageUnreadable`` with the reason otherwise."""
    try:
        with _open(Path(path)) as image:
            return Header(image.width, image.height, image.mode, image.format or "")
    except Exception as error:  # any failure of a user's file is a reason to skip it, never a crash
        raise ImageUnreadable(_reason(error)) from None


def to_channels(image: Image.Image, channels: int, background: int) -> Image.Image:
    """``image`` as mode L (1 channel) or RGB (3): alpha composited on ``background``, 16-bit scaled down."""
    mode = image.mode
    if mode in _SIXTEEN_BIT:
        # 16-bit grey (PNG, TIFF) spans 0-65535; 65535/257 = 255, with rounding.
        values = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        image = Image.fromarray(((values + 128) // 257).astype(np.uint8), mode="L")
    elif mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode in ("1", "F"):
        image = image.convert("L")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (background, background, background, 255))
        flat.alpha_composite(rgba)
        image = flat.convert("RGB")
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def _resized_size(width: int, height: int, side: int, resize: str) -> tuple[int, int]:
    """(width, height) before any crop or pad, as torchvision's ``Resize`` computes it for ``crop``."""
    if resize == "stretch":
        return side, side
    if resize == "crop":
        short, long = min(width, height), max(width, height)
        new_long = int(side * long / short)  # torchvision truncates, so the sizes match its
        return (side, new_long) if width <= height else (new_long, side)
    scale = side / max(width, height)
    return (side, max(1, round(height * scale))) if width >= height else (max(1, round(width * scale)), side)


def fit_square(image: Image.Image, decoding: Decoding) -> Image.Image:
    """``image`` (mode L or RGB) fitted to ``decoding.side`` squared by its resize policy."""
    side = decoding.side
    size = _resized_size(image.width, image.height, side, decoding.resize)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    if decoding.resize == "crop" and image.size != (side, side):
        # torchvision's CenterCrop: int(round(...)) of the half-difference.
        left = int(round((image.width - side) / 2.0))
        top = int(round((image.height - side) / 2.0))
        image = image.crop((left, top, left + side, top + side))
    elif decoding.resize == "pad" and image.size != (side, side):
        fill = decoding.background if image.mode == "L" else (decoding.background,) * 3
        canvas = Image.new(image.mode, (side, side), fill)
        canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        image = canvas
    return image


def _draft(image: Image.Image, decoding: Decoding) -> None:
    """Let a JPEG decode at a reduced scale that still covers what the policy needs."""
    if image.format != "JPEG":
        return
    needed = {"crop": min, "pad": max, "stretch": min}[decoding.resize](image.width, image.height)
    scale = decoding.side / needed
    if scale < 0.5:
        image.draft(image.mode, (math.ceil(image.width * scale), math.ceil(image.height * scale)))


def decode_file(path: str | os.PathLike[str], decoding: Decoding) -> np.ndarray:
    """The file as a (C, side, side) uint8 array; ``ImageUnreadable`` with the reason when it cannot be."""
    try:
        with _open(Path(path)) as image:
            _draft(image, decoding)
            oriented = ImageOps.exif_transpose(image)
            converted = to_channels(oriented, decoding.channels, decoding.background)
            square = fit_square(converted, decoding)
            pixels = np.asarray(square, dtype=np.uint8)
    except Exception as error:  # any failure of a user's file is a reason to skip it, never a crash
        raise ImageUnreadable(_reason(error)) from None
    return pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels.transpose(2, 0, 1))
