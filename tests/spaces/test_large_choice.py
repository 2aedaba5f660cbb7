"""A long choice list: refused in one line past MAX_CHOICES, and read in time linear in its length.

A 200,000-value list used to give no answer after a minute: the duplicate check
compared each value with all before it, and PyYAML's pure-Python parser read the
file. The timings here are against a baseline measured in the same test.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spaces import SpaceError, load_space
from spaces.knobs import MAX_CHOICES, KnobType, parse_knob

ROOT = Path(__file__).resolve().parents[2]
SPACE = """\
description: Widths from a long list.
dataset: digits
input: [1, 8, 8]
num_classes: 10
objectives: {{accuracy: maximize, macs: minimize}}
training: {{epochs: 1}}
stem: {{style: small, width: {{choice: [{widths}]}}}}
stages:
  count: 1
  each: {{block: residual, depth: 1}}
"""


def space_file(folder: Path, values: int) -> Path:
    path = folder / f"widths-{values}.yaml"
    path.write_text(SPACE.format(widths=", ".join(str(4 + i) for i in range(values))))
    return path


def fastest(action: Callable[[], object], repeats: int) -> float:
    """The least CPU time of ``repeats`` runs of ``action``, in seconds, with the garbage of
    earlier tests collected first: the cost of the algorithm, not of the machine's other load."""
    gc.collect()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return min(times)


def test_a_choice_list_at_the_limit_loads_and_samples_every_value(tmp_path: Path) -> None:
    space = load_space(space_file(tmp_path, MAX_CHOICES))
    assert space.size() == MAX_CHOICES, f"{MAX_CHOICES:,} widths make {MAX_CHOICES:,} architectures, got {space.size()}"


def test_a_choice_list_past_the_limit_is_refused_in_one_line_from_a_real_process(tmp_path: Path) -> None:
    path = space_file(tmp_path, 200_000)
    at_limit = space_file(tmp_path, MAX_CHOICES)
    baseline = fastest(lambda: load_space(at_limit), repeats=3)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEARCH_STUDIES_DIR": str(tmp_path / "studies")}
    command = [sys.executable, "-m", "search", "run", "--space", str(path), "--trials", "1"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    err = done.stderr.strip()
    assert done.returncode == 2 and "\n" not in err and "Traceback" not in err, f"exit {done.returncode}: {err[-2000:]}"
    assert f"stem.width: choice lists 200,000 values, at most {MAX_CHOICES:,}" in err, err
    assert not (tmp_path / "studies").exists(), "a refused space creates no study"

    def refuse() -> None:
        with pytest.raises(SpaceError, match="choice lists 200,000 values"):
            load_space(path)

    refused = fastest(refuse, repeats=1)
    # 20x the values of the baseline: ~20x its time when reading is linear (measured 36x: more
    # objects, more garbage collection); anything quadratic in the length takes 400x or more.
    assert refused < 150 * baseline, (
        f"refused after {refused:.2f} s, over 150x the {MAX_CHOICES:,}-value list's {baseline:.4f} s"
    )


def test_duplicate_check_is_linear_in_the_list_length() -> None:
    knob = KnobType(int, minimum=1)
    small = fastest(lambda: parse_knob({"choice": list(range(1, 1_001))}, knob), repeats=7)
    large = fastest(lambda: parse_knob({"choice": list(range(1, MAX_CHOICES + 1))}, knob), repeats=5)
    # 10x the values: ~10x the time when linear, ~100x when each value is compared with all before it.
    assert large < 40 * small, f"{MAX_CHOICES:,} values took {large:.4f} s, 1,000 took {small:.4f} s"


def test_duplicates_are_still_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="choice lists 5 twice"):
        parse_knob({"choice": [*range(1, 3000), 5]}, KnobType(int, minimum=1))
    with pytest.raises(ValueError, match="choice lists 1.0 twice"):
        parse_knob({"choice": [1, 1.0]}, KnobType(float))
