"""Shared helpers for the spaces tests: writing small space files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

HEADER = """\
description: a small space for tests
dataset: fashion_mnist
input: [1, 28, 28]
num_classes: 10
objectives: {accuracy: maximize, macs: minimize}
"""


@pytest.fixture
def write_space(tmp_path: Path) -> Callable[[str], Path]:
    """Write ``body`` after the usual header into ``mine.yaml``; return its path."""

    def write(body: str, *, header: str = HEADER) -> Path:
        path = tmp_path / "mine.yaml"
        path.write_text(header + body)
        return path

    return write
