"""``search data``: what it prints, one line and exit 2 per layout mistake, and a Ctrl-C that resumes."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from image_files import CLASSES, fashion_folder
from PIL import Image

from evaluation.images import SourceOptions, list_source, open_cache
from search.cli import main

CACHE_FILES = ("images.npy", "labels.npy", "meta.json", "rows.csv", "skipped.csv")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["data", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_data_command_describes_a_folder_with_a_bad_file(tmp_path: Path, capsys) -> None:
    root = fashion_folder(tmp_path / "fashion", per_class=10)
    (root / CLASSES[0] / "notes.png").write_text("not an image")
    code, out, err = _run(capsys, f"folder:{root}", "--cache-dir", str(tmp_path / "cache"), "--resolution", "32")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"folder:{root}: 100 images in 10 classes", lines[0]
    for expected in (
        "  split: carved from each class",
        "  total             70       10       20",
        "  sizes: 28x28 (100)",
        "  modes: L (100)",
        "  resolution: 32 px (asked); resize: crop",
        "  channels: 1 (100 of 100 images are grey)",
        "  skipped: 1 files that cannot be decoded",
        f"    {CLASSES[0]}/notes.png: not an image Pillow can read (cannot identify image file)",
        "  cache: ",
        "  fingerprint: ",
    ):
        assert any(line.startswith(expected) for line in lines), f"{expected!r} not in:\n{out}"
    for name in sorted(CLASSES):
        assert any(line.startswith(f"  {name} ") for line in lines), f"class {name} not listed:\n{out}"


def test_data_command_describes_a_builtin(capsys) -> None:
    code, out, err = _run(capsys, "digits")
    assert code == 0, err
    assert out.startswith("digits: built-in, 1,797 images in 10 classes"), out
    assert "  images: 8x8, 1 channel" in out, out


def _folder(layout: dict[str, int]) -> Callable[[Path], str]:
    def make(tmp_path: Path) -> str:
        for name, count in layout.items():
            (tmp_path / "data" / name).mkdir(parents=True)
            for i in range(count):
                Image.new("L", (8, 8), i * 20).save(tmp_path / "data" / name / f"{i}.png")
        return f"folder:{tmp_path / 'data'}"

    return make


def _manifest(text: str) -> Callable[[Path], str]:
    def make(tmp_path: Path) -> str:
        root = fashion_folder(tmp_path / "data", per_class=4)
        manifest = root / "labels.csv"
        manifest.write_text(text)
        return f"csv:{manifest}"

    return make


def _manifest_rows(header: str, extra: str) -> Callable[[Path], str]:
    """A manifest of real files, ``extra`` appended: the one bad row."""

    def make(tmp_path: Path) -> str:
        root = fashion_folder(tmp_path / "data", per_class=4)
        split = ",train" if "split" in header else ""
        rows = [f"{p.relative_to(root).as_posix()},{p.parent.name}{split}" for p in sorted(root.rglob("*.png"))]
        manifest = root / "labels.csv"
        manifest.write_text(header + "\n" + "\n".join(rows) + "\n" + extra)
        return f"csv:{manifest}"

    return make


def _truncated_fashion_mnist(tmp_path: Path) -> str:
    root = tmp_path / "fmnist"
    root.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        whole = gzip.compress(bytes([0, 0, 8, 1]) + (20).to_bytes(4, "big") + bytes(20))
        (root / f"{name}.gz").write_bytes(whole)
    cut = root / "train-images-idx3-ubyte.gz"
    cut.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + np.array([60000, 28, 28], ">u4").tobytes() + bytes(5000))[:-20])
    return str(root)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_folder({"cats": 3, "dogs": 0}), "dogs: class folder holds no images (0 other files)"),
        (_folder({"cats": 5}), ": 1 class (cats); a classifier needs at least 2"),
        (_folder({"cats": 5, "dogs": 2}), "class 'dogs' has 2 usable training images; the split needs at least 3"),
        (
            _manifest("file,kind\na.png,cat\n"),
            "labels.csv: no label column; expected one named label or class or target",
        ),
        (
            _manifest_rows("path,label,split", f"{CLASSES[0]}/x.png,zebra,test\n"),
            "label 'zebra' is not in the class list",
        ),
        (_manifest_rows("path,label", f"../../outside.png,{CLASSES[0]}\n"), "escapes the manifest's folder"),
        (_manifest_rows("path,label", f"/etc/passwd,{CLASSES[0]}\n"), "escapes the manifest's folder"),
        (
            _manifest_rows("path,label,split", f"{CLASSES[0]}/y.png,{CLASSES[0]},holdout\n"),
            "split 'holdout' is not one of",
        ),
    ],
    ids=[
        "empty-class",
        "single-class",
        "class-too-small",
        "csv-missing-column",
        "csv-unknown-label",
        "csv-path-escapes",
        "csv-absolute-path",
        "csv-unknown-split",
    ],
)
def test_layout_mistakes_are_one_line_exit_2_and_write_nothing(tmp_path: Path, capsys, make, message: str) -> None:
    source = make(tmp_path)
    code, out, err = _run(capsys, source, "--cache-dir", str(tmp_path / "cache"))
    assert code == 2, f"exit {code}: {err}"
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert "Traceback" not in err + out
    assert not (tmp_path / "cache").exists(), "nothing written for a refused data set"


def test_truncated_fashion_mnist_under_data_root_is_one_line(tmp_path: Path, capsys) -> None:
    root = _truncated_fashion_mnist(tmp_path)
    for command in (["data", "fashion_mnist", "--data-root", root], ["train", "d2l_densenet", "--data-root", root]):
        code = main(command)
        out, err = capsys.readouterr()
        assert code == 2, f"{command[0]}: exit {code}: {err}"
        assert err.count("\n") == 1 and "train-images-idx3-ubyte.gz" in err and "IDX file" in err, err
        assert "Traceback" not in err + out and "EOFError" not in out


def _build_command(source: str, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "search",
        "data",
        source,
        "--cache-dir",
        str(cache),
        "--workers",
        "2",
        "--resolution",
        "64",
    ]


def test_ctrl_c_during_decoding_resumes_to_the_same_cache(tmp_path: Path) -> None:
    root = fashion_folder(tmp_path / "fashion", per_class=250)  # 2,500 files, 10 chunks of 256
    source = f"folder:{root}"
    options = SourceOptions(resolution=64)
    open_cache(list_source(source, options), options, cache_dir=tmp_path / "whole", workers=2)  # uninterrupted

    cache = tmp_path / "interrupted"
    process = subprocess.Popen(_build_command(source, cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while (
        time.monotonic() < deadline and process.poll() is None and not list(cache.glob("*/.build-*/chunks/chunk-*.npy"))
    ):
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    saved = list(cache.glob("*/.build-*/chunks/chunk-*.npy"))
    assert process.returncode == 130, f"Ctrl-C exits 130, got {process.returncode}: {err}"
    assert "decoding interrupted" in err and "Traceback" not in err, err
    assert 0 < len(saved) < 10, f"some chunks saved, not all: {len(saved)}"
    assert not list(cache.glob("*/*/meta.json")), "an interrupted build publishes nothing"

    resumed = subprocess.run(_build_command(source, cache), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    (first,) = (tmp_path / "whole").glob("*/*/meta.json")
    (second,) = cache.glob("*/*/meta.json")
    for name in CACHE_FILES:
        assert (first.parent / name).read_bytes() == (second.parent / name).read_bytes(), (
            f"{name} differs after resuming"
        )
    assert not list(cache.glob("*/.build-*")), "the build folder is gone once published"
    assert os.path.getsize(first.parent / "images.npy") > 2500 * 64 * 64, "the cache holds every image"
