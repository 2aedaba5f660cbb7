import uuid
from contextlib import ExitStack

import pytest

from evaluation.data import load_dataset
from search.testing.postgres import PostgresUnavailable, throwaway_server
from spaces import load_space

TINY_SPACE = """\
description: A tiny space on scikit-learn's 8x8 digits, for tests.
dataset: digits
input: [1, 8, 8]
num_classes: 10
objectives: {accuracy: maximize, macs: minimize}
constraints: {max_params: 20000}
training: {epochs: 1, train_fraction: 1.0, batch_size: 64, lr: 0.05, schedule: onecycle}
stem: {style: small, width: {choice: [4, 8]}}
stages:
  count: 1
  each:
    block: dense
    depth: {low: 1, high: 2}
    dense: {growth_rate: {choice: [4, 64]}, bn_size: 0}
head: {norm: true}
"""


@pytest.fixture(scope="session")
def tiny_space_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spaces") / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return path


@pytest.fixture(scope="session")
def tiny_space(tiny_space_file):
    return load_space(tiny_space_file)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits", validation_size=300, seed=0)


@pytest.fixture
def studies_dir(tmp_path, monkeypatch):
    """Studies of this test go to a fresh folder."""
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(tmp_path / "studies"))
    return tmp_path / "studies"


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on loopback for this test session.

    When none starts the test skips with the reason, which under CI=true is a failure (tests/conftest.py).
    """
    with ExitStack() as stack:
        try:
            server = stack.enter_context(throwaway_server())
        except PostgresUnavailable as error:
            pytest.skip(f"no PostgreSQL server: {error}")
        yield server


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh database on the session's server, one per test."""
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
