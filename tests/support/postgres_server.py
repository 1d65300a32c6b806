"""A scratch PostgreSQL cluster for tests: ``initdb`` into a temp dir, ``postgres`` on a free port.

Production MLflow keeps its registry on RDS PostgreSQL, so the registry's server tests also run
against a real one. :func:`start_postgres_server` initialises a throw-away cluster (trust auth,
one superuser, fsync off: the data is deleted afterwards), starts ``postgres`` through
:class:`~tests.support.server_process.ServerProcess` listening on 127.0.0.1 only (its unix
socket in the temp dir, not ``/var/run/postgresql``), waits until it accepts connections and
creates one database. ``stop()`` shuts it down and removes the temp dir.

``initdb`` and ``postgres`` refuse to run as root. Run as root (CI containers), the launcher runs
them as the ``postgres`` system user (``nobody`` if there is none) through ``runuser`` and gives
that user the temp dir, which therefore lives in the system temp folder, not under pytest's
0700 ``tmp_path``. The binaries are looked up on PATH, then under ``/usr/lib/postgresql/*/bin``
(where Debian's ``postgresql`` package puts them); missing, the error says what to install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server_process import ServerProcess, free_port

SUPERUSER = "churn"
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, postgres, pg_ctl) are required by the registry's server "
    "tests; install them with: apt-get update && apt-get install -y --no-install-recommends "
    "postgresql (or run `make system-tools`)"
)


class PostgresMissingError(RuntimeError):
    """The PostgreSQL server binaries are not on this machine; the message says how to install them."""


def postgres_bin_dir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``: PATH first, then Debian's layout."""
    on_path = shutil.which("initdb")
    candidates = [Path(os.path.realpath(on_path)).parent] if on_path else []
    # newest major first: /usr/lib/postgresql/15/bin before /usr/lib/postgresql/13/bin
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(d) for d in sorted(debian, key=lambda d: int(Path(d).parent.name), reverse=True)]
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise PostgresMissingError(INSTALL_HINT)


def run_as_user() -> str | None:
    """The account the server runs as when we are root (initdb refuses root), else None (as we are)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    raise PostgresMissingError("running as root and neither a 'postgres' nor a 'nobody' account exists")


def as_user(command: list[str], user: str | None) -> list[str]:
    """``command`` run as ``user`` (``runuser`` keeps the environment), or unchanged for None."""
    return ["runuser", "-u", user, "--", *command] if user else command


@dataclass
class PostgresServer:
    """One scratch cluster; :attr:`uri` is the SQLAlchemy URI of its database for ``mlflow server``."""

    database: str = "mlflow"
    port: int = 0
    root: Path = field(init=False)
    bin_dir: Path = field(init=False)
    user: str | None = field(init=False)
    server: ServerProcess = field(init=False)

    def __post_init__(self) -> None:
        self.bin_dir, self.user = postgres_bin_dir(), run_as_user()
        # short path: the unix socket's full path must stay under 107 characters
        self.root = Path(tempfile.mkdtemp(prefix="churn-pg-"))
        self.server = ServerProcess("postgres", self.root / "postgres.log")

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def uri(self) -> str:
        """``postgresql+psycopg://churn@127.0.0.1:PORT/DATABASE`` (trust auth: no password)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    def log(self) -> str:
        return self.server.log()

    def _run(self, tool: str, *args: str) -> None:
        command = as_user([str(self.bin_dir / tool), *args], self.user)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def _connect(self, dbname: str):
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=dbname, autocommit=True,
            connect_timeout=2,
        )  # fmt: skip

    def _accepts_connections(self) -> bool:
        with self._connect("postgres") as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    def start(self, timeout: float = 60) -> PostgresServer:
        """``initdb`` (once), start ``postgres``, wait until it answers, create :attr:`database`."""
        self.socket_dir.mkdir(exist_ok=True)
        if self.user:
            for path in (self.root, self.socket_dir):
                shutil.chown(path, user=self.user)
        first = not self.data_dir.exists()
        if first:
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "--no-sync",
                "-E", "UTF8", "--locale=C.UTF-8",
            )  # fmt: skip
        self.port = self.port or free_port()
        command = [
            str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1",
            # scratch data: durability off makes MLflow's ~60 migrations take seconds, not tens
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        self.server.launch(
            as_user(command, self.user), self._accepts_connections, timeout=timeout,
            what="accepting connections", grace_s=10,
        )  # fmt: skip
        if first:
            with self._connect("postgres") as conn:
                conn.execute(f'CREATE DATABASE "{self.database}"')
        return self

    def stop(self) -> None:
        """Fast shutdown (ends open sessions: SIGTERM would wait for them), then stop the group."""
        if self.server.process is not None and self.server.process.poll() is None:
            # the group is killed below whatever pg_ctl managed
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "10")
        self.server.stop(grace_s=5)

    def remove(self) -> None:
        """Stop the server and delete its temp dir (data, socket, log)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def start_postgres_server(database: str = "mlflow", timeout: float = 60) -> PostgresServer:
    """A running scratch cluster with ``database`` created; :meth:`PostgresServer.remove` ends it."""
    server = PostgresServer(database)
    try:
        return server.start(timeout)
    except BaseException:
        server.remove()
        raise
