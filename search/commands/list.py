"""``search list``: the built-in search spaces, and the block types a space may use."""

from __future__ import annotations

import argparse
import inspect
import textwrap

from evaluation.blocks import BLOCKS, BlockFamily, Bounds, field_bounds, field_types
from spaces import Space, builtin_space_names, load_space


class ListCommand:
    help = "List the built-in search spaces and the block types with their knobs."
    description = (
        "List the built-in search spaces: name, data set and input, number of\n"
        "distinct architectures, and description. Pass a name to 'search run --space',\n"
        "or a path to your own YAML file (see spaces/README.md). Then list the block\n"
        "types a stage may use, each with its knobs, their defaults and their rules,\n"
        "as the space language and exported architectures name them."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        for name in builtin_space_names():
            space = load_space(name)
            size = f"{space.size():,}" if space.size_is_exact else f"about {space.size():.1e}"
            print(f"{name}  ({_data_of(space)}; {size} architectures)")
            print(textwrap.indent(textwrap.fill(space.description, width=76), "    "))
        print("\nblocks (stages.each.block), with each knob's type, default and rule:")
        for family in BLOCKS.values():
            print(_describe_family(family))
        return 0


def _data_of(space: Space) -> str:
    """The data set, input and classes a space states; what it leaves to the data, said so."""
    dataset = space.dataset or "your images: --data SOURCE"
    if space.input_size is None or space.num_classes is None:
        return f"{dataset}, input and classes from the data"
    return f"{dataset}, {'x'.join(map(str, space.input_size))}, {space.num_classes} classes"


def _describe_family(family: BlockFamily) -> str:
    """The block's name and the first sentence of its spec's docstring, then its knobs."""
    doc = inspect.getdoc(family.spec) or ""
    summary = doc.replace("``", "").replace("\n", " ").split(". ")[0].rstrip(".") + "."
    default, bounds = family.spec(), field_bounds(family.spec)
    knobs = [
        f"{name}: {kind.__name__} = {getattr(default, name)!r}"
        + ("" if bounds[name] == Bounds() else f", {bounds[name].rule()}")
        for name, kind in field_types(family.spec).items()
    ]
    if family.downsamples:
        knobs.append("stride: 1 or 2 (the first unit downsamples)")
    lines = textwrap.wrap(f"{family.kind}: {summary}", width=76, subsequent_indent="    ")
    lines += textwrap.wrap("; ".join(knobs), width=76, initial_indent="    ", subsequent_indent="    ")
    return textwrap.indent("\n".join(lines), "  ")
