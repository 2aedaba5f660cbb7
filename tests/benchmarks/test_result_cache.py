"""benchmarks/result_cache.py: processes side by side add to one cache and none loses another's results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from result_cache import merge_into, save_cache  # noqa: E402

WRITER = """
import sys
sys.path.insert(0, {benchmarks!r})
from pathlib import Path
from result_cache import load_cache, save_cache
path, who = Path(sys.argv[1]), sys.argv[2]
cache = load_cache(path, {{"runs": {{}}}})
for unit in range(40):
    cache["runs"].setdefault(who, {{}})[str(unit)] = {{"accuracy": unit / 40}}
    save_cache(path, cache)
"""


def test_merge_keeps_what_either_side_holds_and_the_callers_value_on_a_tie() -> None:
    mine = {"panel": {"a": {"runs": {"ref": 1, "cheap": 2}}}, "summary": "new"}
    theirs = {"panel": {"a": {"runs": {"ref": 9, "other": 3}}, "b": {"runs": {}}}, "summary": "old"}
    merge_into(mine, theirs)
    assert mine == {"panel": {"a": {"runs": {"ref": 1, "cheap": 2, "other": 3}}, "b": {"runs": {}}}, "summary": "new"}


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    script = WRITER.format(benchmarks=str(BENCHMARKS))
    writers = [subprocess.Popen([sys.executable, "-c", script, str(path), who]) for who in ("left", "right")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    runs = json.loads(path.read_text())["runs"]
    assert {who: len(units) for who, units in runs.items()} == {"left": 40, "right": 40}
    assert not list(tmp_path.glob("*.partial*")), "no temporary file is left behind"


def test_a_save_adds_the_files_entries_to_the_callers_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text(json.dumps({"runs": {"theirs": {"0": 1}}}))
    cache = {"runs": {"mine": {"0": 2}}}
    save_cache(path, cache)
    assert cache == json.loads(path.read_text()) == {"runs": {"mine": {"0": 2}, "theirs": {"0": 1}}}
