"""Fixtures shared by every layer of tests."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.config import Config

pytest_plugins = [
    "tests.redis_server",
    "tests.postgres_server",
    "tests.object_store",
    "tests.integration.backends",
    "tests.integration.blob_stores",
]

TEST_PASSWORD = "correct horse battery"
# With GORTC_TEST_DATABASE=postgresql (make test-postgres), every app a test
# makes runs on a new database of the session's PostgreSQL instead of SQLite.
_new_test_database: Callable[[], str] | None = None
_test_databases: dict[str, str] = {}


# Tests that look at SQLite's own files (its search shards, its pages).
sqlite_only = pytest.mark.skipif(
    os.environ.get("GORTC_TEST_DATABASE", "sqlite") == "postgresql",
    reason="reads SQLite's own tables; the contract tests cover PostgreSQL",
)


def on_postgresql() -> bool:
    return os.environ.get("GORTC_TEST_DATABASE", "sqlite") == "postgresql"


@pytest.fixture(scope="session", autouse=True)
def _database_for_every_app(request: pytest.FixtureRequest) -> None:
    global _new_test_database
    if not on_postgresql():
        return
    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("postgres_template")
    _new_test_database = lambda: server.create_database(template=template)  # noqa: E731


def make_config(data_dir: Path, **sections: dict[str, Any]) -> Config:
    """A configuration for tests: files under ``data_dir``, cheap bcrypt."""
    base: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(data_dir)},
        "auth": {"bcrypt_rounds": 4},
        # A free port for each app's RTMP ingest: tests never need 1935 (which
        # something else on the machine, or another test, may hold).
        "live": {"rtmp_port": 0},
    }
    if _new_test_database is not None and "database" not in sections:
        # One database per data directory, as SQLite's file is: two apps
        # on one data directory are two instances sharing a database.
        key = str(data_dir.resolve())
        if key not in _test_databases:
            _test_databases[key] = _new_test_database()
        base["database"] = {"url": _test_databases[key]}
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return Config.model_validate(base)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


ClientFactory = Callable[..., Any]


@pytest.fixture
async def client(aiohttp_client: ClientFactory, config: Config) -> TestClient:
    return await aiohttp_client(create_app(config))


async def register(
    client: TestClient, username: str, password: str = TEST_PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": password}
        | extra,
    )
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def login(client: TestClient, username: str, password: str = TEST_PASSWORD) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/login", json={"login": username, "password": password}
    )
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def table_names(conn: sqlite3.Connection) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]


def dump_postgres(url: str) -> list[tuple[Any, ...]]:
    """dump_database for a PostgreSQL database (its search vectors are
    columns of the rows they index, and are dumped with them)."""

    async def dump() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "ORDER BY tablename"
            )
            rows: list[tuple[Any, ...]] = []
            for (table,) in tables:
                found = await conn.fetch(f'SELECT * FROM "{table}" ORDER BY 1')
                rows.extend((table, *row) for row in found)
            return rows
        finally:
            await conn.close()

    # In a thread with a loop of its own: called from inside a test's loop.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, dump()).result()


def app_rows(config: Config, sql: str) -> list[tuple[Any, ...]]:
    """The rows of a constant query (no parameters) on an app's database,
    SQLite or PostgreSQL: for what a test checks beneath the API."""
    if not config.database.url:
        conn = sqlite3.connect(config.database_path)
        try:
            return [tuple(row) for row in conn.execute(sql)]
        finally:
            conn.close()

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(config.database.url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, fetch()).result()


def search_index_tables(conn: sqlite3.Connection) -> set[str]:
    """The FTS5 tables and their shadow tables: derived from other tables."""
    virtual = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'"
        )
    ]
    shadows = ("data", "idx", "content", "docsize", "config")
    return set(virtual) | {f"{table}_{shadow}" for table in virtual for shadow in shadows}


def dump_database(where: Path | Config) -> list[tuple[Any, ...]]:
    """Every row of every table, to show a request changed nothing (search
    indexes left out: their rows are derived from the others). ``where``:
    an SQLite file, or an app's configuration (SQLite or PostgreSQL)."""
    if isinstance(where, Config):
        if where.database.url:
            return dump_postgres(where.database.url)
        where = where.database_path
    conn = sqlite3.connect(where)
    try:
        derived = search_index_tables(conn)
        tables = [table for table in table_names(conn) if table not in derived]
        rows: list[tuple[Any, ...]] = []
        for table in tables:
            rows.extend(
                (table, *row) for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1')
            )
        return rows
    finally:
        conn.close()
