"""A throwaway PostgreSQL server on loopback, for the tests and the scaling benchmark.

Many machines share a study through one PostgreSQL database; the tests and
``benchmarks/scaling.py`` need such a server without an administrator. This
starts one from the installed binaries (Debian's ``postgresql`` package, see
``scripts/ensure_postgres.sh``) in a temporary folder, trusting loopback
connections, and removes it afterwards. PostgreSQL refuses to run as root, so
as root the server runs as the ``postgres`` OS user.

    with throwaway_server() as server:
        url = server.create_database("search")  # postgresql+psycopg2://postgres@127.0.0.1:PORT/search
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bin_dir", "throwaway_server"]

SERVER_USER = "postgres"
# Durability is not what a throwaway server is for; these make it start and commit faster.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresUnavailable(RuntimeError):
    """No server could be started here (binaries missing, no user to run it as); says why."""


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its folder, binaries and loopback port."""

    root: Path
    bin_dir: Path
    port: int
    as_user: str | None  # the OS user the server runs as; None for the current one

    def url(self, database: str) -> str:
        """The SQLAlchemy URL Optuna takes for ``database`` on this server."""
        return f"postgresql+psycopg2://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        _check_run([str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SERVER_USER, name])
        return self.url(name)


def find_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``, or ``$POSTGRES_BIN_DIR``."""
    configured = os.environ.get("POSTGRES_BIN_DIR")
    candidates = [Path(configured)] if configured else sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version)
    for bin_dir in reversed(candidates):
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file():
            return bin_dir
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or $POSTGRES_BIN_DIR; "
        "install them with scripts/ensure_postgres.sh"
    )


@contextmanager
def throwaway_server(bin_dir: Path | None = None) -> Iterator[PostgresServer]:
    """Start a server in a temporary folder, yield it, then stop it and delete the folder."""
    bin_dir = bin_dir or find_bin_dir()
    as_user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="search-postgres-"))
    try:
        if as_user is not None:
            shutil.chown(root, user=as_user)
        server = PostgresServer(root=root, bin_dir=bin_dir, port=_free_port(), as_user=as_user)
        _initdb(server)
        _start(server)
        try:
            yield server
        finally:
            _stop(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _version(bin_dir: Path) -> tuple[int, ...]:
    """``15`` of ``/usr/lib/postgresql/15/bin``, as a sortable tuple."""
    return tuple(int(part) for part in bin_dir.parent.name.split(".") if part.isdigit())


def _server_user() -> str | None:
    """Who runs the server: ``postgres`` when we are root (the server refuses root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no {SERVER_USER!r} OS user to run the server as"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root and runuser is missing: cannot run the server as another user")
    return SERVER_USER


def _free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _initdb(server: PostgresServer) -> None:
    """A new cluster in ``root/data`` whose superuser is ``postgres``, trusted on local connections."""
    _run_as_server(
        server,
        [str(server.bin_dir / "initdb"), "-D", str(server.root / "data"), "-U", SERVER_USER, "-A", "trust"]
        + ["-E", "UTF8", "--no-locale", "--no-sync"],
    )


def _start(server: PostgresServer) -> None:
    """Start the server on loopback only, its socket in ``root``, and wait until it accepts connections."""
    options = ["-c listen_addresses=127.0.0.1", f"-p {server.port}", f"-k {server.root}"]
    options += [f"-c {setting}" for setting in FAST_SETTINGS]
    _run_as_server(
        server,
        [str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"), "-l", str(server.root / "server.log")]
        + ["-w", "-t", "60", "-o", " ".join(options), "start"],
    )


def _stop(server: PostgresServer) -> None:
    """Stop at once: nothing on a throwaway server is worth a clean shutdown."""
    _run_as_server(server, [str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "immediate", "stop"])


def _run_as_server(server: PostgresServer, command: Sequence[str]) -> None:
    """Run a server-side binary as the server's OS user; its log's tail explains a failure."""
    prefix = ["runuser", "-u", server.as_user, "--"] if server.as_user else []
    try:
        _check_run([*prefix, *command])
    except PostgresUnavailable as error:
        log = server.root / "server.log"
        tail = log.read_text()[-2000:] if log.is_file() else ""
        raise PostgresUnavailable(f"{error}\n{tail}".strip()) from None


def _check_run(command: Sequence[str]) -> None:
    """Run ``command`` quietly; raise ``PostgresUnavailable`` with its output when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{' '.join(command)} exited {done.returncode}: {(done.stderr or done.stdout)[-2000:]}"
        )
