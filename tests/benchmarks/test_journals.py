"""benchmarks/result_cache.py's journals: committed gzipped, read and resumed as Optuna journal files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from result_cache import journal_to_read, pack_journal, packed, unpacked_journal  # noqa: E402


def _storage(path: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def _study(path: Path, values: list[float]) -> None:
    study = optuna.create_study(study_name="s", storage=_storage(path), load_if_exists=True)
    for value in values:
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=value))


def _values(path: Path) -> list[float]:
    return [t.value for t in optuna.load_study(study_name="s", storage=_storage(path)).trials]


def test_a_packed_journal_reads_back_as_the_study_it_held(tmp_path: Path) -> None:
    journal = tmp_path / "x.log"
    _study(journal, [0.1, 0.2])
    archive = pack_journal(journal)
    assert archive == packed(journal) == tmp_path / "x.log.gz"
    assert archive.stat().st_size < journal.stat().st_size, "gzip must make the committed form smaller"
    journal.unlink()  # a fresh clone holds only the .gz
    with journal_to_read(journal) as path:
        assert path != journal and _values(path) == [0.1, 0.2]
    assert not path.exists(), "the temporary copy is removed after reading"
    assert not journal.exists(), "reading leaves no unpacked journal behind"


def test_packing_an_unchanged_journal_gives_the_same_bytes(tmp_path: Path) -> None:
    journal = tmp_path / "x.log"
    _study(journal, [0.5])
    first = pack_journal(journal).read_bytes()
    os.utime(journal, (1, 1))  # another time and the same content: no diff to commit
    assert pack_journal(journal).read_bytes() == first


def test_a_study_resumes_from_the_packed_journal_and_packs_what_it_added(tmp_path: Path) -> None:
    journal = tmp_path / "x.log"
    _study(journal, [0.1])
    pack_journal(journal)
    journal.unlink()
    _study(unpacked_journal(journal), [0.3])
    pack_journal(journal)
    journal.unlink()
    with journal_to_read(journal) as path:
        assert _values(path) == [0.1, 0.3]


def test_an_unpacked_journal_newer_than_its_archive_is_kept_and_an_older_one_replaced(tmp_path: Path) -> None:
    journal = tmp_path / "x.log"
    _study(journal, [0.1])
    pack_journal(journal)
    _study(journal, [0.2])  # a run cut short before packing: the .log holds more
    assert _values(unpacked_journal(journal)) == [0.1, 0.2]
    with journal_to_read(journal) as path:
        assert path == journal
    archive = packed(journal)
    os.utime(journal, (archive.stat().st_mtime - 10,) * 2)  # a checkout brought a newer archive
    assert _values(unpacked_journal(journal)) == [0.1]


def test_no_journal_at_all_is_an_error_to_read_and_nothing_to_pack(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no journal"), journal_to_read(tmp_path / "x.log"):
        pass
    assert pack_journal(tmp_path / "x.log") is None
