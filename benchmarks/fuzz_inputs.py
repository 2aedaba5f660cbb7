"""How hostile space files and architecture configs end: counts per outcome.

Runs the fuzz tests' strategies (``tests/fuzz_documents.py``) for N examples
per loader, writes each document to a file and loads it through
``spaces.load_space`` or ``evaluation.load_architecture``. Every document must
end as a valid object or a ``SpaceError`` / ``ArchitectureError``; anything
else is counted as ``other: <type>`` with one example, so a crash shows up in
the figures instead of stopping the count. Prints JSON.
Usage: python benchmarks/fuzz_inputs.py [--examples 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_documents import CANARY, LOADERS, architecture_documents, classify, space_documents  # noqa: E402

STRATEGIES = {"space": space_documents, "architecture": architecture_documents}


def measure(kind: str, examples: int, folder: Path) -> dict:
    counts: Counter[str] = Counter()
    crashes: dict[str, str] = {}
    path = folder / f"{kind}.yaml"

    @settings(
        max_examples=examples,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        text = data.draw(STRATEGIES[kind]())
        path.write_text(text)
        try:
            counts[classify(LOADERS[kind], path)] += 1
        except Exception as error:  # noqa: BLE001 - counted: this is what the benchmark looks for
            name = f"other: {type(error).__name__}"
            counts[name] += 1
            crashes.setdefault(name, f"{error}"[:200] + f" <- {text[:200]!r}")

    started = time.perf_counter()
    run()
    return {
        "tried": sum(counts.values()),
        "outcomes": dict(counts.most_common()),
        "crashes": crashes,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="Documents per loader (default: 2000).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {kind: measure(kind, args.examples, Path(folder)) for kind in STRATEGIES}
        results["code_executed"] = (Path(folder) / CANARY).exists() or Path(CANARY).exists()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
