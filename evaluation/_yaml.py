"""Reading a user's YAML file: safe tags only, and every failure one ``ValueError``.

``yaml.safe_load`` builds plain data only (a ``!!python/object`` tag is a
``ConstructorError``), but it also lets through errors that are not
``YAMLError``: ``int()`` past CPython's 4300-digit limit and impossible dates
raise ``ValueError``, deep nesting ``RecursionError``. Both loaders
(architectures and spaces) read through here and turn the message into their
own error type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["UnreadableYaml", "read_yaml"]

# libyaml's parser where PyYAML was built with it (its wheels are): the pure-Python
# one took 14 s to read a space with a 200,000-value choice list, libyaml 1.3 s.
# The constructor, and so what a tag or scalar becomes, is the same safe one.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UnreadableYaml(ValueError):
    """The file cannot be read or is not YAML; the message says where and why, in one line."""


def read_yaml(path: Path) -> Any:
    """The document in ``path``, as plain data (dicts, lists, scalars)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableYaml(f"cannot be read as UTF-8 text: {error}") from None
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "cannot be parsed"
        if "maximum nesting depth" in problem:  # libyaml's limit of 1000 levels, where Python's recursion stops
            problem = "nested too deeply"
        raise UnreadableYaml(f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise UnreadableYaml("not valid YAML: nested too deeply") from None
    except ValueError as error:  # a scalar YAML accepts but Python cannot hold (huge int, bad date)
        raise UnreadableYaml(f"not valid YAML: {_first_line(str(error))}") from None


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "a value cannot be converted"
