"""Architectures to and from YAML files, and lookup by preset name or path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from evaluation._yaml import UnreadableYaml, read_yaml
from evaluation.architecture import Architecture, ArchitectureError
from evaluation.atomic import write_text
from evaluation.presets import PRESETS, preset

__all__ = ["load_architecture", "save_architecture"]


def load_architecture(name_or_path: str | Path) -> Architecture:
    """A preset by name, or the Architecture in a YAML file.

    The file holds either the architecture mapping itself or, as exported
    configs do, a mapping with an ``architecture`` key beside other records.
    Errors are ``ArchitectureError``s that start with the file name.
    """
    if str(name_or_path) in PRESETS:
        return preset(str(name_or_path))
    path = Path(name_or_path)
    if not path.is_file():
        raise ArchitectureError(f"{name_or_path}: neither a preset nor a file; presets: {', '.join(sorted(PRESETS))}")
    try:
        data = read_yaml(path)
    except UnreadableYaml as error:
        raise ArchitectureError(f"{path}: {error}") from None
    if isinstance(data, Mapping) and "architecture" in data:
        data = data["architecture"]
    try:
        return Architecture.from_dict(data)
    except ArchitectureError as error:
        raise ArchitectureError(f"{path}: {error}") from None


def save_architecture(arch: Architecture, path: str | Path, **records: Any) -> None:
    """Write ``arch`` as YAML; ``records`` (metrics, provenance) go beside it."""
    document = {"architecture": arch.to_dict(), **records} if records else arch.to_dict()
    write_text(Path(path), yaml.safe_dump(document, sort_keys=False))
