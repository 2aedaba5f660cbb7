"""Hostile YAML documents for the loaders, shared by the fuzz tests and ``benchmarks/fuzz_inputs.py``.

Three kinds of document: random nested values (non-string keys, NaN, inf,
huge integers, unicode), near-valid mutations of the built-in spaces and of
exported architecture configs (one value replaced, deleted or added), and raw
texts that YAML itself finds hard (tags that would run code, aliases that
recurse or expand, integers past CPython's digit limit, bad timestamps).
Every one must load to a valid object or end in a ``ToolkitError``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from evaluation import Architecture, ArchitectureError, load_architecture, preset
from spaces import SpaceError, builtin_space_names, load_space
from spaces.schema import BUILTIN_DIR

__all__ = ["OUTCOMES", "architecture_documents", "classify", "space_documents"]

OUTCOMES = ("valid", "SpaceError", "ArchitectureError")
# Where a fuzzed tag would write if YAML ran it; the tests check it never appears.
CANARY = "fuzz-canary-executed"

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["dense", "residual", "small", "imagenet", "avg", "none", "count", "each", "stage1", "ü\u202e"]),
)
_keys = st.one_of(
    st.text(max_size=10),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.sampled_from(["stages", "stem", "head", "transitions", "block", "depth", "width", "growth_rate", "low"]),
)
values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)

# "Billion laughs": ten levels of aliases, each repeating the one before nine times; a
# loader that expands or prints it whole runs out of time or memory.
_LAUGHS = "lol:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  {b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefghi", "bcdefghij")
)
RAW_TEXTS = (
    f"!!python/object/apply:os.system ['touch {CANARY}']",
    f"stages: !!python/object/apply:subprocess.check_output [['touch', '{CANARY}']]",
    "!!python/name:os.system",
    "a: &a [*a]",
    "&a {x: *a}",
    "stages: &s [{block: dense, depth: 1, growth_rate: *s}]",
    _LAUGHS,
    _LAUGHS + "architecture: {stages: [{block: dense, depth: *j}]}",
    _LAUGHS + "stages: {count: 1, each: {block: dense, depth: *j}}",
    "stages: {count: 1, each: {block: dual_path, depth: 1, dual_path: {groups: 2, bottleneck_width: {low: 2, high: 1000000000000}}}}",
    "stages: {count: 1, each: {block: dense, depth: {low: 1, high: 1000000000000000000000}}}",
    "stem: {width: " + "9" * 5000 + "}",
    "input: [1, " + "9" * 5000 + ", 28]",
    "when: 2001-13-45",
    "stages: [{block: dense, depth: 2001-02-30}]",
    "stages: !!binary '%%%'",
    "stages: !!float 'abc'",
    "\x00\x01\x02",
    "stages:\n\t- x",
    "[" * 2000 + "]" * 2000,
    "{a: " * 500 + "1" + "}" * 500,
    "--- 1\n--- 2",
    "stages: [{block: dense, depth: .nan}]",
    "stages: [{block: dense, depth: .inf, growth_rate: -.inf}]",
    "stem: {width: 1e400}",
)


def _builtin_space_documents() -> list[Any]:
    return [yaml.safe_load((BUILTIN_DIR / f"{name}.yaml").read_text()) for name in builtin_space_names()]


def _exported_documents() -> list[Any]:
    """Architecture configs as ``search export`` writes them: the architecture beside its metrics."""
    records = {"trial": 3, "params": 12345, "macs": 678910, "val_accuracy": 0.71}
    return [{"architecture": preset(name).to_dict(), **records} for name in ("d2l_densenet", "resnet18")] + [
        preset("densenet_residual_hybrid").to_dict()
    ]


def _paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path of keys and indices into ``document``, the root included."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, documents: list[Any]) -> Any:
    """One of ``documents`` with one to three values replaced, deleted or added."""
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            document = draw(values) if draw(st.integers(0, 9)) == 0 else document
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(_keys)] = draw(values)
        else:
            parent.insert(draw(st.integers(0, len(parent))), draw(values))
    return document


def _with_space_header(text: str) -> str:
    """A raw text under the required keys of a space, so the loader reaches its body."""
    header = "description: fuzz\ndataset: fashion_mnist\ninput: [1, 28, 28]\nnum_classes: 10\n"
    return header + "objectives: {accuracy: maximize}\n" + text if text.startswith(("stages", "stem")) else text


def _dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def space_documents() -> st.SearchStrategy[str]:
    """YAML texts aimed at ``spaces.load_space``."""
    return st.one_of(
        values.map(_dump),
        mutated(_builtin_space_documents()).map(_dump),
        st.sampled_from(RAW_TEXTS).map(_with_space_header),
    )


def architecture_documents() -> st.SearchStrategy[str]:
    """YAML texts aimed at ``evaluation.load_architecture``."""
    return st.one_of(
        values.map(_dump),
        mutated(_exported_documents()).map(_dump),
        st.sampled_from(RAW_TEXTS),
    )


def classify(loader: Callable[[Path], Any], path: Path) -> str:
    """``valid``, ``SpaceError`` or ``ArchitectureError``; any other exception propagates, as a bug."""
    try:
        result = loader(path)
    except SpaceError:
        return "SpaceError"
    except ArchitectureError:
        return "ArchitectureError"
    assert result is not None, f"{loader.__name__} returned None for {path.read_text()[:200]!r}"
    if isinstance(result, Architecture):
        Architecture.from_dict(result.to_dict())  # a valid object survives its own round trip
    return "valid"


LOADERS: dict[str, Callable[[Path], Any]] = {"space": load_space, "architecture": load_architecture}
