"""Decoding one file: modes, EXIF orientation, resize policies, checked against torchvision and by hand."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torchvision.transforms as T
from PIL import Image

from evaluation.images.decode import Decoding, ImageUnreadable, decode_file, read_header

RNG = np.random.default_rng(0)


def _save(image: Image.Image, path: Path, **kwargs: object) -> Path:
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize("size", [(40, 30), (30, 40), (57, 23), (16, 16), (10, 90)])
def test_decode_crop_equals_torchvision_resize_and_center_crop(tmp_path: Path, size: tuple[int, int]) -> None:
    pixels = RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path = _save(Image.fromarray(pixels), tmp_path / "x.png")
    reference = T.Compose([T.Resize(24), T.CenterCrop(24)])(Image.open(path).convert("RGB"))
    decoded = decode_file(path, Decoding(side=24, channels=3))
    assert decoded.shape == (3, 24, 24) and decoded.dtype == np.uint8, (decoded.shape, decoded.dtype)
    np.testing.assert_array_equal(decoded, np.asarray(reference).transpose(2, 0, 1), err_msg=f"size {size}")


def test_decode_pad_keeps_the_whole_image_centred_on_the_background(tmp_path: Path) -> None:
    path = _save(Image.new("L", (20, 10), 0), tmp_path / "wide.png")
    decoded = decode_file(path, Decoding(side=20, channels=1, resize="pad", background=255))[0]
    assert (decoded[5:15] == 0).all(), "the image fills the middle rows"
    assert (decoded[:5] == 255).all() and (decoded[15:] == 255).all(), "pad bands take the background"


def test_decode_stretch_changes_the_aspect(tmp_path: Path) -> None:
    pixels = np.zeros((10, 40), dtype=np.uint8)
    pixels[:, 20:] = 200
    path = _save(Image.fromarray(pixels), tmp_path / "x.png")
    decoded = decode_file(path, Decoding(side=8, channels=1, resize="stretch"))[0]
    assert decoded.shape == (8, 8) and decoded[:, :3].max() == 0 and decoded[:, 5:].min() == 200, decoded


def test_decode_applies_exif_orientation(tmp_path: Path) -> None:
    pixels = np.zeros((8, 16), dtype=np.uint8)
    pixels[0, 0] = 255  # a marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = _save(Image.fromarray(pixels), tmp_path / "rotated.png", exif=exif)
    decoded = decode_file(path, Decoding(side=8, channels=1, resize="stretch"))[0]
    shown = np.rot90(pixels, k=-1)  # what a viewer shows: 16 tall, 8 wide, marker top-right
    assert shown[0, -1] == 255, "the reference rotation puts the marker top-right"
    stretched = np.asarray(Image.fromarray(shown).resize((8, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(decoded, stretched, err_msg="EXIF orientation must be applied before resizing")


def _modes(tmp_path: Path) -> dict[str, tuple[Path, int, int]]:
    """A file per mode, with the expected (grey, centre pixel of red channel) after decoding to 1 and 3 channels."""
    files: dict[str, tuple[Path, int, int]] = {}
    files["L"] = (_save(Image.new("L", (4, 4), 77), tmp_path / "l.png"), 77, 77)
    files["RGB"] = (_save(Image.new("RGB", (4, 4), (200, 10, 10)), tmp_path / "rgb.png"), 66, 200)
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # fully transparent: the white background shows
    files["RGBA"] = (_save(rgba, tmp_path / "rgba.png"), 255, 255)
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    files["P"] = (_save(palette, tmp_path / "p.png"), 66, 200)
    transparent = palette.copy()
    transparent.info["transparency"] = 1
    files["P+transparency"] = (_save(transparent, tmp_path / "pt.png", transparency=1), 255, 255)
    files["CMYK"] = (_save(Image.new("CMYK", (4, 4), (0, 0, 0, 0)), tmp_path / "cmyk.jpg", quality=100), 255, 255)
    sixteen = Image.fromarray(np.full((4, 4), 257 * 100, dtype=np.uint16))
    files["I;16"] = (_save(sixteen, tmp_path / "sixteen.png"), 100, 100)
    files["1"] = (_save(Image.new("1", (4, 4), 1), tmp_path / "bit.png"), 255, 255)
    files["LA"] = (_save(Image.new("LA", (4, 4), (0, 0)), tmp_path / "la.png"), 255, 255)
    return files


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "P+transparency", "CMYK", "I;16", "1", "LA"])
def test_decode_converts_every_mode_to_the_asked_channels(tmp_path: Path, mode: str) -> None:
    path, grey, red = _modes(tmp_path)[mode]
    one = decode_file(path, Decoding(side=4, channels=1))
    three = decode_file(path, Decoding(side=4, channels=3))
    assert one.shape == (1, 4, 4) and three.shape == (3, 4, 4), (one.shape, three.shape)
    assert abs(int(one[0, 2, 2]) - grey) <= 1, f"{mode}: grey {one[0, 2, 2]}, expected {grey}"
    assert abs(int(three[0, 2, 2]) - red) <= 1, f"{mode}: red {three[0, 2, 2]}, expected {red}"


def test_read_header_reports_size_and_mode_without_decoding(tmp_path: Path) -> None:
    header = read_header(_save(Image.new("RGB", (30, 20)), tmp_path / "x.JPG"))
    assert (header.width, header.height, header.mode, header.format) == (30, 20, "RGB", "JPEG"), header


def _truncated_jpeg(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def test_decode_reasons_for_bad_files_are_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    ghost = tmp_path / "ghost.jpg"
    ghost.symlink_to(tmp_path / "nowhere.jpg")
    bomb = _save(Image.new("1", (12_000, 12_000)), tmp_path / "bomb.png")  # 144 M pixels > Pillow's 89 M limit
    expected = {
        _truncated_jpeg(tmp_path / "cut.jpg"): "image file is truncated",
        text: "not an image Pillow can read",
        ghost: "cannot read: No such file or directory",
        bomb: "decompression bomb",
    }
    for path, reason in expected.items():
        with pytest.raises(ImageUnreadable) as caught:
            decode_file(path, Decoding(side=8, channels=1))
        message = str(caught.value)
        assert reason in message and "\n" not in message, f"{path.name}: {message!r}"
