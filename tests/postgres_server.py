"""A real PostgreSQL server on a free loopback port, for the tests that need one.

One server per test session (starting one costs about a second and a half);
each test gets its own empty database in it, so tests never see each
other's rows. Debian's ``postgresql`` package provides the binaries;
``initdb`` and ``postgres`` refuse to run as root, so both run as the
``postgres`` user the package creates (started as that user directly, so
that signals reach postgres itself), in a folder that user owns.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import pytest

# Debian installs its PostgreSQL binaries outside PATH, by major version.
_DEBIAN_BINARIES = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_binaries() -> Path:
    """The newest Debian PostgreSQL bin folder; a test is skipped (or fails
    under CI, which installs it) where there is none."""
    found = sorted(_DEBIAN_BINARIES.glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not found:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs PostgreSQL (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1].parent


class PostgresServer:
    """``postgres`` on one loopback port, trusting loopback connections
    (the tests' server holds nothing worth a password)."""

    def __init__(self, *, durable: bool = False) -> None:
        self.bin = postgres_binaries()
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are root's alone (0700)
        # and the postgres user must reach its data directory.
        self.directory = Path(tempfile.mkdtemp(prefix="gortc-pg-"))
        shutil.chown(self.directory, SERVICE_USER, SERVICE_USER)
        # Tests throw their data away: skipping fsync makes them several
        # times faster. Benchmarks ask for a durable server.
        self._durable = durable
        self._process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        data = self.directory / "data"
        self._as_service_user(
            str(self.bin / "initdb"),
            "--pgdata",
            str(data),
            "--username",
            SERVICE_USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C.UTF-8",
        )
        settings = [
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"port={self.port}",
            "-c", f"unix_socket_directories={self.directory}",
            "-c", "max_connections=200",
        ]  # fmt: skip
        if not self._durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            settings += ["-c", "full_page_writes=off"]
        self._log = open(self.directory / "postgres.log", "wb")  # noqa: SIM115 (closed in stop)
        self._process = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(data), *settings],
            user=SERVICE_USER,
            group=SERVICE_USER,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + 30
        while not self._ready():
            if time.monotonic() > deadline or self._process.poll() is not None:
                log = (self.directory / "postgres.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"postgres did not start on port {self.port}:\n{log}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return result.returncode == 0

    def create_database(self, name: str | None = None, *, template: str = "template1") -> str:
        """A new database, a copy of ``template`` (empty by default); returns its URL."""
        name = name or f"t_{secrets.token_hex(6)}"
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(self.bin / "psql"),
                "--no-psqlrc",
                "-v", "ON_ERROR_STOP=1",
                "-qAt",
                "-h", "127.0.0.1",
                "-p", str(self.port),
                "-U", SERVICE_USER,
                "-d", database,
                "-c", sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )  # fmt: skip
        return result.stdout

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            # A test server's data is thrown away: "immediate" shutdown
            # (SIGQUIT, no checkpoint). A durable one shuts down "fast"
            # (SIGINT: clients disconnected, a checkpoint written).
            process.send_signal(signal.SIGINT if self._durable else signal.SIGQUIT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _as_service_user(self, *command: str) -> None:
        subprocess.run(
            command,
            user=SERVICE_USER,
            group=SERVICE_USER,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A database with gortc's schema, migrated once per session: copying
    it is several times faster than migrating each test's database."""
    from gortc.repositories.postgres.database import PostgresDatabase

    name = "gortc_template"
    url = postgres_server.create_database(name)

    async def migrate() -> None:
        database = PostgresDatabase(url, min_connections=1, max_connections=1)
        await database.open()
        await database.close()

    # In a thread of its own: the test session may be inside an event loop.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, migrate()).result()
    return name


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_template: str) -> str:
    """The URL of a new database of the session's PostgreSQL with gortc's
    schema and no rows."""
    return postgres_server.create_database(template=postgres_template)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new database without even gortc's schema."""
    return postgres_server.create_database()
