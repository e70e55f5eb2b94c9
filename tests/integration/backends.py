"""The two database backends, side by side, for the repository contract
suite: every test that takes ``backend`` runs once on a SQLite file and
once on a real PostgreSQL database (tests/postgres_server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gortc.repositories.database import Database
from gortc.repositories.group_commit import GroupCommitMessageStore
from gortc.repositories.maintenance import purge_expired
from gortc.repositories.messages import sqlite_message_store
from gortc.repositories.postgres.blobs import PostgresRevokedTokenStore
from gortc.repositories.postgres.database import PostgresDatabase
from gortc.repositories.postgres.maintenance import purge_expired_postgres
from gortc.repositories.postgres.messages import postgres_message_store
from gortc.repositories.postgres.unit_of_work import PostgresUnitOfWork
from gortc.repositories.revoked_tokens import SqliteRevokedTokenStore
from gortc.repositories.unit_of_work import SqliteUnitOfWork
from gortc.usecases.ports import RevokedTokenStore, UnitOfWork

Row = tuple[Any, ...]


@dataclass
class Backend:
    name: str
    uow: UnitOfWork
    revoked: RevokedTokenStore
    purge_expired: Callable[[datetime], Awaitable[int]]
    # Raw rows for what a test checks beneath the repositories, in SQL both
    # dialects read alike (no parameters: tests pass constants).
    rows: Callable[[str], Awaitable[list[Row]]]
    # A new group-commit store, as another instance would have its own.
    new_message_store: Callable[[], GroupCommitMessageStore]


async def _sqlite(path: Path) -> AsyncIterator[Backend]:
    db = Database(path)
    await db.open()

    async def rows(sql: str) -> list[Row]:
        async with db.read() as conn, conn.execute(sql) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    yield Backend(
        "sqlite",
        SqliteUnitOfWork(db),
        SqliteRevokedTokenStore(db),
        lambda now: purge_expired(db, now),
        rows,
        lambda: sqlite_message_store(db),
    )
    await db.close()


async def _postgres(url: str) -> AsyncIterator[Backend]:
    db = PostgresDatabase(url)
    await db.open()

    async def rows(sql: str) -> list[Row]:
        async with db.read() as conn:
            return [tuple(row) for row in await conn.fetch(sql)]

    yield Backend(
        "postgres",
        PostgresUnitOfWork(db),
        PostgresRevokedTokenStore(db),
        lambda now: purge_expired_postgres(db, now),
        rows,
        lambda: postgres_message_store(db),
    )
    await db.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        opened = _sqlite(tmp_path / "gortc.db")
    else:
        opened = _postgres(request.getfixturevalue("postgres_url"))
    async for each in opened:
        yield each
