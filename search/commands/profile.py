"""``search profile``: params, MACs, latency and memory of a preset or YAML config."""

from __future__ import annotations

import argparse
import json

from evaluation import build_model, count, load_architecture, profile_model
from evaluation.memory import check_memory
from search.commands._common import add_memory_limit_argument, input_size, positive_int


class ProfileCommand:
    help = "Profile a preset or an architecture YAML: params, MACs, latency, memory."
    description = (
        "Profile a preset (e.g. densenet121) or an exported architecture YAML.\n\n"
        "MACs are multiply-accumulates of convolutions and linear layers (fvcore's\n"
        "convention and torchvision's published GFLOPS); batch norm, activations,\n"
        "pooling, adds and concatenation are not counted. 'macs' is fvcore's count,\n"
        "'macs_torch' torch's FlopCounterMode count halved, 'macs_formula' the\n"
        "closed form from the architecture alone. Latency is the median of repeated\n"
        "forward passes in eval mode on the CPU."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("architecture", metavar="NAME_OR_YAML", help="A preset name or a YAML file.")
        parser.add_argument(
            "--input",
            type=input_size,
            default=(3, 224, 224),
            metavar="C,H,W",
            help="Input shape of one image (default: 3,224,224).",
        )
        parser.add_argument(
            "--num-classes", type=positive_int, default=1000, help="Classifier outputs (default: 1000)."
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=16,
            help="Batch for the batched latency and the activation memory (default: 16).",
        )
        parser.add_argument("--repeats", type=positive_int, default=10, help="Timed forward passes (default: 10).")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        add_memory_limit_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        arch = load_architecture(args.architecture)
        check_memory(arch, args.input, args.num_classes, batch_size=args.batch_size, limit_bytes=args.memory_limit)
        formula = count(arch, args.input, args.num_classes)
        model = build_model(arch, args.input, args.num_classes)
        profile = profile_model(model, args.input, batch_size=args.batch_size, repeats=args.repeats)
        result = {**profile.to_dict(), "macs_formula": formula.macs, "params_formula": formula.params}
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            _print_table(args.architecture, args.input, result)
        return 0


def _print_table(name: str, shape: tuple[int, int, int], result: dict) -> None:
    peak = result["peak_train_mb"]
    rows = [
        ("params", f"{result['params']:,}"),
        ("MACs (fvcore)", f"{result['macs']:,}  ({result['macs'] / 1e9:.3f} G)"),
        ("MACs (torch FlopCounterMode / 2)", f"{result['macs_torch']:,}"),
        ("MACs (closed form)", f"{result['macs_formula']:,}"),
        ("latency, batch 1", f"{result['latency_ms']:.2f} ms"),
        (f"latency, batch {result['latency_batch_size']}", f"{result['latency_batch_ms']:.2f} ms"),
        (f"activations saved for backward, batch {result['latency_batch_size']}", f"{result['activation_mb']:.1f} MiB"),
        ("peak training memory (CUDA)", "n/a on CPU" if peak is None else f"{peak:.1f} MiB"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{name} at {'x'.join(map(str, shape))}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
