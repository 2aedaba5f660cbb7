"""``search list``: the built-in search spaces, with their descriptions and sizes."""

from __future__ import annotations

import argparse
import textwrap

from spaces import builtin_space_names, load_space


class ListCommand:
    help = "List the built-in search spaces with their descriptions and sizes."
    description = (
        "List the built-in search spaces: name, data set and input, number of\n"
        "distinct architectures, and description. Pass a name to 'search run --space',\n"
        "or a path to your own YAML file (see spaces/README.md)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        for name in builtin_space_names():
            space = load_space(name)
            size = f"{space.size():,}" if space.size_is_exact else f"about {space.size():.1e}"
            shape = "x".join(map(str, space.input_size))
            print(f"{name}  ({space.dataset}, {shape}, {space.num_classes} classes; {size} architectures)")
            print(textwrap.indent(textwrap.fill(space.description, width=76), "    "))
        return 0
