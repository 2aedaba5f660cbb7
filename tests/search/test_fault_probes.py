"""Faults under a command end in a clean stop: a torn journal resumes, a full disk and a broken
storage give one line and exit 2, and nothing half-written is read back later.

Each probe runs ``python -m search`` as a user would, in its own process, on real files: a
journal cut by 40 bytes, a disk that really fills (a small tmpfs where this process may mount
one, else a file size limit on the command, RLIMIT_FSIZE), SQLite files of random bytes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from synthetic_study import make_study

from evaluation.errors import DiskFullError
from search.cli import main
from search.storage.backends import JournalFile

ROOT = Path(__file__).resolve().parents[2]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# What the kernel, SQLite and Python call a write that found no room, by mechanism.
NO_ROOM_WORDS = ("No space left on device", "File too large", "database or disk is full", "disk I/O error")


def search(*args: str, env: dict[str, str], fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m search ARGS`` in a process of its own; with ``fsize``, no file it writes may
    grow past that many bytes (RLIMIT_FSIZE, with SIGXFSZ ignored so a write fails with EFBIG)."""
    command = [sys.executable, "-m", "search", *args]
    if fsize is not None:
        limit = (
            "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, resource.RLIM_INFINITY)); "
            "os.execv(sys.executable, sys.argv[1:])"
        )
        command = [sys.executable, "-c", limit, *command]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def environment(studies: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "SEARCH_STUDIES_DIR": str(studies)}


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The command exited 2 with its last stderr line an ``error:`` line, and no traceback; that line."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr and lines and lines[-1].startswith("error: "), (
        f"expected exit 2 and one error line, got exit {done.returncode}:\n{done.stderr[-3000:]}"
    )
    for fragment in fragments:
        assert fragment in lines[-1], f"{fragment!r} not in {lines[-1]!r}"
    return lines[-1]


def finished_numbers(study: optuna.Study) -> set[int]:
    return {t.number for t in study.get_trials(deepcopy=False, states=FINISHED)}


# --- a journal torn by a crash mid-append -----------------------------------------------------


def test_journal_torn_mid_append_resumes_and_keeps_every_finished_trial(
    tiny_space_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(tmp_path / "studies"))
    env = environment(tmp_path / "studies")
    journal = tmp_path / "torn.log"
    run = ["run", "--space", str(tiny_space_file), "--study", "torn", "--storage", f"journal:{journal}", "--no-report"]
    assert main([*run, "--trials", "3"]) == 0, "the study before the crash"
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-40])  # a crash in the middle of the last append
    torn_part = whole[whole.rfind(b"\n", 0, len(whole) - 40) + 1 : -40]
    kept = finished_numbers(
        optuna.load_study(study_name="torn", storage=JournalStorage(JournalFileBackend(str(journal))))
    )

    show = search("show", "torn", "--storage", f"journal:{journal}", env=env)
    assert show.returncode == 0 and "Traceback" not in show.stderr, show.stderr[-3000:]
    resumed = search(*run, "--trials", "5", env=env)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]

    notes = [line for line in resumed.stderr.splitlines() if "cut short" in line]
    assert len(notes) == 1 and str(journal) in notes[0], f"one line says the journal was repaired: {resumed.stderr}"
    (aside,) = tmp_path.glob("torn.log.torn-*")
    assert aside.read_bytes() == torn_part, "the torn record is kept beside the journal, byte for byte"
    study = optuna.load_study(study_name="torn", storage=JournalStorage(JournalFileBackend(str(journal))))
    assert kept <= finished_numbers(study), f"finished trials {sorted(kept)} lost: {sorted(finished_numbers(study))}"
    assert len(finished_numbers(study)) == 5, "the resumed run tops the study up to 5 finished trials"
    assert not study.get_trials(states=(TrialState.RUNNING,)), "nothing is left RUNNING"
    assert journal.read_bytes().endswith(b"\n"), "the journal ends in a whole record"


def test_journal_of_garbage_is_refused_without_being_changed(tmp_path: Path) -> None:
    journal = tmp_path / "studies" / "noise" / "journal.log"
    journal.parent.mkdir(parents=True)
    garbage = b'{"op_code":0,"worker_id":"w","study_name":"noise","directions":[1]}\n' + os.urandom(3000)
    journal.write_bytes(garbage)
    done = search(
        "run", "--space", "densenet", "--study", "noise", "--trials", "1", env=environment(tmp_path / "studies")
    )
    assert_one_line_error(done, str(journal), "not an Optuna journal", "line 2")
    assert journal.read_bytes() == garbage, "a file that is no journal is left as it was"
    assert list(journal.parent.iterdir()) == [journal], "nothing is written beside it"


def test_journal_append_that_finds_no_room_is_taken_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    storage = JournalStorage(JournalFile(path))
    study = optuna.create_study(storage=storage, study_name="full")
    study.set_user_attr("small", 1)
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100, hard))  # Python ignores SIGXFSZ: EFBIG instead
    try:
        with pytest.raises(DiskFullError, match=f"cannot write {path}: File too large"):
            study.set_user_attr("large", "x" * 1000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert path.read_bytes() == before, "the part of the record that fitted is cut back off"
    study.set_user_attr("after", 2)
    reread = optuna.load_study(study_name="full", storage=JournalStorage(JournalFileBackend(str(path))))
    assert reread.user_attrs == {"small": 1, "after": 2}, reread.user_attrs


# --- a full disk under the study folder ------------------------------------------------------


class SmallDisk:
    """A folder where writes really run out of room.

    A tmpfs of a few pages where this process may mount one (root with
    CAP_SYS_ADMIN); otherwise the folder stays on the usual disk and each
    command run there gets a file size limit (RLIMIT_FSIZE), which every
    process may set. ``limit(room)`` leaves ``room`` bytes: free on the tmpfs,
    or of growth past the largest file there under the size limit.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        mounted = os.geteuid() == 0 and shutil.which("mount") is not None and self._mount("size=64m")
        self.mechanism = "tmpfs" if mounted else "RLIMIT_FSIZE"
        self.fsize: int | None = None

    def _mount(self, options: str, *, remount: bool = False) -> bool:
        command = ["mount", "-o", f"remount,{options}", str(self.folder)] if remount else []
        command = command or ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.folder)]
        return subprocess.run(command, capture_output=True).returncode == 0

    def limit(self, room: int) -> None:
        if self.mechanism == "tmpfs":
            stat = os.statvfs(self.folder)
            used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
            assert self._mount(f"size={used + room}", remount=True), "a tmpfs shrinks to what it holds and more"
        else:
            largest = max((p.stat().st_size for p in self.folder.rglob("*") if p.is_file()), default=0)
            self.fsize = largest + room

    def make_room(self) -> None:
        if self.mechanism == "tmpfs":
            assert self._mount("size=64m", remount=True), "a tmpfs grows on remount"
        self.fsize = None

    def run(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return search(*args, env=env, fsize=self.fsize)

    def unmount(self) -> None:
        if self.mechanism == "tmpfs":
            subprocess.run(["umount", "--lazy", str(self.folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "disk")
    try:
        yield disk
    finally:
        disk.unmount()


def test_disk_full_mid_search_stops_in_one_line_and_leaves_the_study_whole(
    small_disk: SmallDisk, tiny_space_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default storage, SQLite: one line, and every finished trial and file reads back whole."""
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(small_disk.folder))
    run = ["run", "--space", str(tiny_space_file), "--study", "full", "--no-report"]
    assert main([*run, "--trials", "2"]) == 0, "the study before the disk fills"
    small_disk.limit(8 * 1024)  # a trial or two of records
    full = small_disk.run(*run, "--trials", "60", env=environment(small_disk.folder))
    line = assert_one_line_error(full)
    assert any(words in line for words in NO_ROOM_WORDS), f"{small_disk.mechanism}: {line!r} says no room"

    small_disk.make_room()
    assert main(["show", "full"]) == 0, "the study reads back"
    study = optuna.load_study(study_name="full", storage=f"sqlite:///{small_disk.folder / 'full' / 'study.db'}")
    assert len(finished_numbers(study)) >= 2, f"{small_disk.mechanism}: the trials finished before are kept"
    settings = yaml.safe_load((small_disk.folder / "full" / "settings.yaml").read_text())
    assert settings["trials"] in (2, 60), "settings.yaml is whole: the first start's, or the second's"
    assert not list(small_disk.folder.rglob(".*")), "no temporary file is left behind"


def test_disk_full_mid_search_on_a_journal_resumes_with_room(
    small_disk: SmallDisk, tiny_space_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal (what --workers uses): its records stay whole, and the search resumes once there is room."""
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(small_disk.folder))
    env = environment(small_disk.folder)
    journal = small_disk.folder / "full" / "journal.log"
    run = ["run", "--space", str(tiny_space_file), "--study", "full", "--storage", f"journal:{journal}"]
    run += ["--no-report", "--heartbeat-interval", "1", "--grace-period", "2"]  # the cut trial is reaped at once
    assert main([*run, "--trials", "2"]) == 0, "the study before the disk fills"
    small_disk.limit(8 * 1024)  # a trial or two of records
    full = small_disk.run(*run, "--trials", "60", env=env)
    assert_one_line_error(full, f"cannot write {journal}")
    records = journal.read_bytes().splitlines(keepends=True)
    assert all(record.endswith(b"\n") and json.loads(record) for record in records), "every record is whole"

    small_disk.make_room()
    kept = finished_numbers(optuna.load_study(study_name="full", storage=JournalStorage(JournalFile(journal))))
    assert len(kept) >= 2, f"{small_disk.mechanism}: the trials finished before the disk filled are kept: {kept}"
    resumed = small_disk.run(*run, "--trials", str(len(kept) + 1), env=env)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
    study = optuna.load_study(study_name="full", storage=JournalStorage(JournalFile(journal)))
    assert kept < finished_numbers(study), "the resumed run adds a trial and loses none"
    assert not study.get_trials(states=(TrialState.RUNNING,)), "nothing is left RUNNING"
    assert not list(small_disk.folder.rglob(".*")), "no temporary file is left behind"


def test_disk_full_report_keeps_the_old_page_and_names_the_file(small_disk: SmallDisk, tmp_path: Path) -> None:
    database = tmp_path / "elsewhere.db"
    make_study(12, seed=3, storage=f"sqlite:///{database}", name="paged")
    page = small_disk.folder / "paged" / "report.html"
    page.parent.mkdir()
    page.write_text("<p>the last whole report</p>\n")
    small_disk.limit(256 * 1024)  # the page, with its plots, is megabytes
    done = small_disk.run("report", "paged", "--storage", f"sqlite:///{database}", env=environment(small_disk.folder))
    assert_one_line_error(done, f"cannot write {page}")
    assert page.read_text() == "<p>the last whole report</p>\n", "the old report is left whole"
    assert [p.name for p in page.parent.iterdir()] == ["report.html"], "no temporary file is left"


def test_disk_full_export_leaves_only_whole_files(small_disk: SmallDisk, tmp_path: Path) -> None:
    database = tmp_path / "elsewhere.db"
    make_study(40, seed=5, storage=f"sqlite:///{database}", name="exported")
    out = small_disk.folder / "out"
    out.mkdir()
    small_disk.limit(6 * 1024)  # a couple of YAML files, not the tables
    done = small_disk.run(
        "export", "exported", "--storage", f"sqlite:///{database}", "--out", str(out), "--format", "python",
        env=environment(small_disk.folder),
    )  # fmt: skip
    line = assert_one_line_error(done, f"{out}/")
    assert any(words in line for words in NO_ROOM_WORDS), line
    small_disk.make_room()
    for path in out.iterdir():
        assert not path.name.startswith("."), f"temporary file {path.name} left behind"
        if path.suffix == ".yaml":
            assert "architecture" in yaml.safe_load(path.read_text()), f"{path.name} is whole"
        elif path.suffix == ".csv":
            rows = list(csv.DictReader(path.open()))
            assert rows and all(None not in row for row in rows), f"{path.name} is whole"
        elif path.suffix == ".py":
            compile(path.read_text(), str(path), "exec")


def test_disk_full_training_leaves_no_partial_weights(small_disk: SmallDisk, tmp_path: Path) -> None:
    """``search train``: its state, weights and result.json are each written whole or not at all."""
    config = tmp_path / "wide.yaml"
    config.write_text("stem: {style: small, width: 64}\nstages:\n  - {block: residual, depth: 2}\ntransitions: []\n")
    out = small_disk.folder / "run"
    out.mkdir()
    small_disk.limit(64 * 1024)  # the model's weights alone are 600 kB
    argv = ["train", str(config), "--dataset", "digits", "--epochs", "1", "--train-fraction", "0.2"]
    argv += ["--device", "cpu", "--out", str(out)]
    done = small_disk.run(*argv, env=environment(tmp_path / "studies"))
    line = assert_one_line_error(done, f"cannot write {out}/")
    assert any(words in line for words in NO_ROOM_WORDS), line
    small_disk.make_room()
    assert not list(out.glob(".*")), "no temporary file is left"
    assert not (out / "result.json").exists(), "a training that could not save is not marked finished"
    for weights in out.glob("*.pt"):
        torch.load(weights, weights_only=True)  # a state or weights file present is whole


# --- a storage that cannot be opened, or holds no study -----------------------------------------


def _random_bytes(folder: Path) -> None:
    (folder / "study.db").write_bytes(os.urandom(8192))


def _text_file(folder: Path) -> None:
    (folder / "study.db").write_text("name,accuracy\nmine,0.9\n")


def _truncated(folder: Path) -> None:
    url = f"sqlite:///{folder / 'study.db'}"
    make_study(8, seed=1, storage=url, name=folder.name)
    data = (folder / "study.db").read_bytes()
    (folder / "study.db").write_bytes(data[: len(data) // 2])


def _empty_sqlite(folder: Path) -> None:
    (folder / "study.db").touch()


def _journal_of_garbage(folder: Path) -> None:
    (folder / "journal.log").write_bytes(b"\x89PNG\r\n" + os.urandom(4000) + b"\n")


def _journal_of_other_json(folder: Path) -> None:
    (folder / "journal.log").write_text('{"name": "not an operation"}\n[1, 2, 3]\n')


BROKEN = {
    "random bytes": (_random_bytes, "cannot be read as a study's SQLite database"),
    "a text file": (_text_file, "cannot be read as a study's SQLite database"),
    "truncated": (_truncated, "cannot be read as a study's SQLite database"),
    "empty SQLite file": (_empty_sqlite, "no study"),
    "journal of garbage": (_journal_of_garbage, "not an Optuna journal"),
    "journal of other JSON": (_journal_of_other_json, "not an Optuna journal"),
}
COMMANDS: dict[str, Sequence[str]] = {
    "show": ["show", "{study}"],
    "report": ["report", "{study}"],
    "export": ["export", "{study}"],
    "finalize": ["finalize", "{study}", "--device", "cpu"],
    "dashboard": ["dashboard", "{study}", "--port", "0"],
    "run": ["run", "--space", "{space}", "--study", "{study}", "--trials", "1", "--no-report"],
}


@pytest.mark.parametrize(
    ("kind", "command"),
    # An empty file is SQLite's empty database, where run makes its study as in a new file.
    [(kind, command) for kind in BROKEN for command in COMMANDS if (kind, command) != ("empty SQLite file", "run")],
)
def test_broken_storage_is_one_line_and_exit_2_for_every_command(
    kind: str,
    command: str,
    studies_dir: Path,
    tiny_space_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make, fragment = BROKEN[kind]
    study = f"broken-{uuid.uuid4().hex[:6]}"
    (studies_dir / study).mkdir(parents=True)
    make(studies_dir / study)
    before = {p.name: p.read_bytes() for p in (studies_dir / study).iterdir()}
    argv = [part.format(study=study, space=tiny_space_file) for part in COMMANDS[command]]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and fragment in err, (
        f"{command} on {kind}: exit {code}, {err!r}"
    )
    if kind != "empty SQLite file":  # Optuna makes its tables in an empty file, as in a new one
        after = {p.name: p.read_bytes() for p in (studies_dir / study).iterdir()}
        assert after == before, f"{command} on {kind} changed the folder"


def test_corrupt_study_db_is_one_line_from_a_real_process(tmp_path: Path) -> None:
    studies = tmp_path / "studies"
    (studies / "wrecked").mkdir(parents=True)
    _random_bytes(studies / "wrecked")
    for argv in (["show", "wrecked"], ["run", "--space", "densenet", "--study", "wrecked", "--trials", "1"]):
        done = search(*argv, env=environment(studies))
        assert_one_line_error(done, str(studies / "wrecked" / "study.db"), "file is not a database")


def test_dashboard_serves_a_journal_study_from_its_journal(tmp_path: Path) -> None:
    """A study of --workers lives in journal.log; the dashboard reads it there (it used to open an empty study.db)."""
    studies = tmp_path / "studies"
    (studies / "shared").mkdir(parents=True)
    make_study(6, seed=2, storage=JournalStorage(JournalFile(studies / "shared" / "journal.log")), name="shared")
    command = [sys.executable, "-m", "search", "dashboard", "shared", "--port", "0"]
    process = subprocess.Popen(command, cwd=ROOT, env=environment(studies), stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert " at http://127.0.0.1:" in line, f"no URL announced: {line!r}"
        base = line.split(" at ")[1].split()[0].removesuffix("/dashboard")
        with urllib.request.urlopen(f"{base}/api/studies", timeout=20) as response:
            summaries = json.load(response)["study_summaries"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert [s["study_name"] for s in summaries] == ["shared"], summaries
    assert not (studies / "shared" / "study.db").exists(), "no empty SQLite study is made beside the journal"


# --- numbers and devices on the command line ------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "-5"])
def test_run_refuses_a_timeout_that_is_not_a_positive_number(value: str, tmp_path: Path) -> None:
    done = search("run", "--space", "densenet", "--trials", "1", "--timeout", value, env=environment(tmp_path))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, f"--timeout {value}: exit {done.returncode}"
    assert lines[-1].endswith(f"argument --timeout: expected a positive number, got {value!r}"), lines[-1]
    assert not (tmp_path / "densenet").exists(), "no study is created"


@pytest.mark.parametrize("value", ["0", "inf", "1e999"])
def test_run_refuses_a_zero_or_endless_timeout(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--timeout", value])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 2 and err.endswith(f"expected a positive number, got {value!r}"), err


def _typed_options() -> Iterator[tuple[str, str, Callable[[str], object]]]:
    """(command, flag, type) of every option of every command that converts its value."""
    from search.cli import build_parser

    (subparsers,) = [a for a in build_parser()._actions if isinstance(a.choices, dict)]
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.type is not None and action.option_strings:
                yield name, action.option_strings[0], action.type


def test_every_number_flag_goes_through_checked_number() -> None:
    """A bare ``int`` or ``float`` takes nan, inf or -5 for a count, a time or a rate; none is left,
    and every flag ``checked_number`` parses refuses nan, inf and -inf."""
    options = list(_typed_options())
    bare = [f"{command} {flag}" for command, flag, kind in options if kind in (int, float)]
    assert not bare, f"flags parsed by a bare int or float: {bare}"
    checked = {
        (command, flag): kind
        for command, flag, kind in options
        if getattr(kind, "__qualname__", "") == "checked_number.<locals>.parse"
    }
    for flag in ("--timeout", "--seed", "--retry-failed", "--train-fraction", "--min-rung", "--memory-limit"):
        assert ("run", flag) in checked, f"run {flag} is not a checked number"
    for command, flag in [("onnx", "--opset"), ("dashboard", "--port"), ("train", "--seed"), ("finalize", "--lr")]:
        assert (command, flag) in checked, f"{command} {flag} is not a checked number"
    for (command, flag), kind in checked.items():
        for text in ("nan", "inf", "-inf", "1/0"):
            with pytest.raises(argparse.ArgumentTypeError, match=f"got {text!r}"):
                kind(text)
                pytest.fail(f"{command} {flag} took {text!r}")


TRAINING_COMMANDS = {
    "train": ["train", "resnet18", "--dataset", "digits"],
    "finalize": ["finalize", "anything"],
    "ablate": ["ablate", "resnet18", "--vary", "stem.width=8,16", "--dataset", "digits"],
}


@pytest.mark.parametrize("command", list(TRAINING_COMMANDS))
def test_training_commands_refuse_a_gpu_index_beyond_those_present(command: str, tmp_path: Path) -> None:
    import torch

    beyond = torch.cuda.device_count()  # cuda:0 on a machine without CUDA
    argv = [*TRAINING_COMMANDS[command], "--device", f"cuda:{beyond}", "--out" if command != "finalize" else "--top"]
    argv.append(str(tmp_path / "out") if command != "finalize" else "1")
    done = search(*argv, env=environment(tmp_path / "studies"))
    assert_one_line_error(done, f"device cuda:{beyond}: torch finds {beyond} CUDA devices")
    assert not (tmp_path / "out").exists(), "nothing is trained or written"


@pytest.mark.parametrize("command", list(TRAINING_COMMANDS))
def test_training_commands_take_cuda_n_as_run_does(command: str) -> None:
    from search.cli import build_parser

    parser = build_parser()
    for device in ("auto", "cpu", "cuda", "cuda:0", "cuda:3"):
        assert parser.parse_args([*TRAINING_COMMANDS[command], "--device", device]).device == device
    run_device = parser.parse_args(["run", "--device", "cuda:1"]).device
    assert run_device == "cuda:1", "run takes cuda:N as before"


def test_train_on_cpu_still_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("stem: {style: small, width: 8}\nstages:\n  - {block: residual, depth: 1}\ntransitions: []\n")
    out = tmp_path / "out"
    argv = ["train", str(config), "--dataset", "digits", "--epochs", "1", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert result["device"] == "cpu", result["device"]
