"""The report in a real browser: headless Chromium opens report.html from disk.

One Chromium run per page dumps the DOM after the page's scripts ran, takes a
screenshot, logs the console to stderr and records every request in a NetLog.
The page marks ``<body data-rendered>`` when every plot has rendered, with the
number of points drawn in the first Pareto plot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from synthetic_study import make_study

from search.pareto import front_trials
from search.report import write_report

ROOT = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Chromium's own notes about software WebGL (the parallel-coordinates plot
# draws with WebGL); they come from the GPU process, not from the page's code.
BROWSER_NOTES = ("GL Driver Message",)


def _find_chromium() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium's path; installed from Debian when missing and we may (root, apt-get).

    Without one the tests skip, which under CI=true is a failure naming the reason (tests/conftest.py).
    """
    path = _find_chromium()
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure_chromium.sh")], check=False, timeout=900)
        path = _find_chromium()
    if path is None:
        pytest.skip("Chromium is not installed and cannot be installed here (needs root and apt-get)")
    return path


@dataclass
class Visit:
    body: dict[str, str]  # data-* attributes of <body> after the scripts ran
    console: list[str]  # console messages of the page
    requests: list[str]  # URLs the page asked the network for
    screenshot: Path
    seconds: float


def _visit(chromium: str, page: Path, out: Path) -> Visit:
    out.mkdir(parents=True, exist_ok=True)
    netlog, screenshot = out / "netlog.json", out / "report.png"
    started = time.perf_counter()
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={out / 'profile'}",
            "--enable-unsafe-swiftshader",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={netlog}",
            "--window-size=1400,3000",
            "--virtual-time-budget=20000",
            f"--screenshot={screenshot}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    seconds = time.perf_counter() - started
    body = re.search(r"<body([^>]*)>", result.stdout)
    assert body, f"no DOM dumped; chromium said: {result.stderr[-2000:]}"
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    console = [
        message
        for message, source in re.findall(r':CONSOLE[:(]\d+\)?\] "(.*)", source: (\S*)', result.stderr)
        if source.startswith(page.resolve().as_uri())
    ]
    return Visit(attributes, console, _page_requests(netlog), screenshot, seconds)


def _page_requests(netlog: Path) -> list[str]:
    """URLs requested on behalf of file:// pages (Chromium's own background calls excluded)."""
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and event["params"].get("network_isolation_key", "").startswith("file://")
        and not event["params"]["url"].startswith(("file:", "data:", "blob:"))
    ]


def test_report_browser_renders_report_from_disk(chromium: str, tmp_path: Path) -> None:
    """One Chromium visit checked several ways (a visit costs seconds, so it is not repeated)."""
    study = make_study(80, seed=11, storage=f"sqlite:///{tmp_path / 'study.db'}", name="browser")
    front = sorted(t.number for t in front_trials(study))
    seen = _visit(chromium, write_report(study, tmp_path / "report.html"), tmp_path / "chromium")
    print(f"screenshot: {seen.screenshot}")

    assert "render-error" not in seen.body, f"plotly failed: {seen.body['render-error']}"
    assert seen.body.get("rendered") == "true", f"plots did not finish rendering: {seen.body}"
    assert int(seen.body["front-points"]) == len(front), (
        f"front plot draws {seen.body['front-points']} points, the study's front has {len(front)}"
    )
    drawn = sorted(int(n) for n in seen.body["front-trials"].split(","))
    assert drawn == front, f"front plot shows trials {drawn}, the front is {front}"
    messages = [m for m in seen.console if not any(note in m for note in BROWSER_NOTES)]
    assert messages == [], f"console messages from the report: {messages}"
    assert seen.requests == [], f"the report fetched {seen.requests}"
    assert seen.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "the screenshot is a PNG"
    assert seen.screenshot.stat().st_size > 50_000, f"screenshot {seen.screenshot} looks empty"


def test_report_browser_thousand_trials_render(chromium: str, tmp_path: Path) -> None:
    """Timed against Chromium opening a 10-trial report in the same test (wall time: Chromium's work
    is spread over its own processes): 1000 trials may take 8 times as long (measured 2 to 3)."""
    small = make_study(10, seed=12)
    baseline = _visit(chromium, write_report(small, tmp_path / "small.html"), tmp_path / "chromium-small")
    study = make_study(1000, seed=12)
    page = write_report(study, tmp_path / "report.html")
    seen = _visit(chromium, page, tmp_path / "chromium")
    print(
        f"1000-trial report: Chromium loaded and rendered it in {seen.seconds:.1f} s wall time, "
        f"a 10-trial one in {baseline.seconds:.1f} s"
    )
    assert baseline.body.get("rendered") == "true", f"10-trial report did not render: {baseline.body}"
    assert seen.body.get("rendered") == "true", f"1000-trial report did not render: {seen.body}"
    assert int(seen.body["front-points"]) == len(front_trials(study)), "front plot matches with 1000 trials"
    assert seen.seconds < 8 * baseline.seconds, (
        f"Chromium took {seen.seconds:.1f} s to open the 1000-trial report, {baseline.seconds:.1f} s "
        f"for 10 trials: {seen.seconds / baseline.seconds:.1f} times as long, over 8"
    )
