"""`search dashboard`: optuna-dashboard served on loopback for a study's storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from synthetic_study import make_study

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    """A dashboard subprocess on a free port; yields its base URL."""
    (tmp_path / "dash").mkdir()
    make_study(15, seed=7, storage=f"sqlite:///{tmp_path / 'dash' / 'study.db'}", name="dash")
    env = {**os.environ, "SEARCH_STUDIES_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "search", "dashboard", "dash", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()  # printed once the socket is bound
        assert "http://127.0.0.1:" in line, (
            f"no URL announced: {line!r} {process.stderr.read() if process.poll() is not None else ''}"
        )
        yield line.split(" at ")[1].split()[0].removesuffix("/dashboard")
    finally:
        process.terminate()
        process.wait(timeout=10)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=20) as response:
        return json.load(response)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port``, read from Linux's /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if int(local_port, 16) == port and state == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_dashboard_serves_the_study_on_loopback_only(dashboard: str) -> None:
    """One server checked several ways (starting one costs seconds)."""
    studies = _get(f"{dashboard}/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["dash"], f"dashboard lists {studies}"
    detail = _get(f"{dashboard}/api/studies/{studies[0]['study_id']}")
    assert detail.get("objective_names") == ["accuracy", "macs"], "metric names reach the dashboard"
    trained = next(t for t in detail["trials"] if t["state"] == "Complete")
    attrs = {a["key"]: a["value"] for a in trained["user_attrs"]}
    assert "stages" in json.loads(attrs["architecture"]), "the architecture shows as JSON"
    assert {"macs", "params", "latency_ms", "outcome"} <= set(attrs), f"recorded metrics missing: {sorted(attrs)}"

    port = int(dashboard.rsplit(":", 1)[1])
    if Path("/proc/net/tcp").exists():
        # /proc/net/tcp writes 127.0.0.1 as the little-endian hex 0100007F.
        listening = _listening_addresses(port)
        assert listening == {"0100007F"}, f"listening on {listening}, not on 127.0.0.1 only"
