"""The database a process runs on, chosen by ``database.url``: SQLite under
the data directory (the default), or PostgreSQL. Each backend gives the
composition root the same few things: the unit of work, the group-commit
message store, the revoked-token list, housekeeping and a health probe.
Nothing above the repositories knows which one it got.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gortc.repositories.group_commit import GroupCommitMessageStore
from gortc.usecases.ports import RevokedTokenStore, UnitOfWork

if TYPE_CHECKING:  # asyncpg is imported only by a process that uses PostgreSQL
    from gortc.repositories.database import Database
    from gortc.repositories.postgres.database import PostgresDatabase


class DatabaseBackend(Protocol):
    """One database: opened before the server serves, closed after."""

    @property
    def name(self) -> str:
        """What the logs and ``/healthz`` call it ("sqlite", "postgresql")."""
        ...

    @property
    def uow(self) -> UnitOfWork: ...

    @property
    def revoked_tokens(self) -> RevokedTokenStore: ...

    def message_store(self) -> GroupCommitMessageStore: ...

    async def open(self) -> None:
        """Migrates the schema if needed, then connects. Raises SchemaError
        when the database cannot be used by this version of gortc."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> str: ...

    async def purge_expired(self, now: datetime) -> int: ...


class _Engine(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> str: ...


class _Backend:
    """What both backends do alike: their database opens, closes, answers."""

    database: _Engine

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    async def ping(self) -> str:
        return await self.database.ping()


class SqliteBackend(_Backend):
    database: Database

    def __init__(self, path: Path, *, readers: int, busy_timeout_ms: int) -> None:
        from gortc.repositories.database import Database
        from gortc.repositories.revoked_tokens import SqliteRevokedTokenStore
        from gortc.repositories.unit_of_work import SqliteUnitOfWork

        self.name = "sqlite"
        self.database = Database(path, readers=readers, busy_timeout_ms=busy_timeout_ms)
        self.uow: UnitOfWork = SqliteUnitOfWork(self.database)
        self.revoked_tokens: RevokedTokenStore = SqliteRevokedTokenStore(self.database)

    def message_store(self) -> GroupCommitMessageStore:
        from gortc.repositories.messages import sqlite_message_store

        return sqlite_message_store(self.database)

    async def purge_expired(self, now: datetime) -> int:
        from gortc.repositories.maintenance import purge_expired

        return await purge_expired(self.database, now)


class PostgresBackend(_Backend):
    database: PostgresDatabase

    def __init__(self, url: str, *, pool_size: int) -> None:
        # asyncpg is imported only by a process that uses PostgreSQL.
        from gortc.repositories.postgres.blobs import PostgresRevokedTokenStore
        from gortc.repositories.postgres.database import PostgresDatabase
        from gortc.repositories.postgres.unit_of_work import PostgresUnitOfWork

        self.name = "postgresql"
        self.database = PostgresDatabase(
            url, min_connections=min(2, pool_size), max_connections=pool_size
        )
        self.uow: UnitOfWork = PostgresUnitOfWork(self.database)
        self.revoked_tokens: RevokedTokenStore = PostgresRevokedTokenStore(self.database)

    def message_store(self) -> GroupCommitMessageStore:
        from gortc.repositories.postgres.messages import postgres_message_store

        return postgres_message_store(self.database)

    async def purge_expired(self, now: datetime) -> int:
        from gortc.repositories.postgres.maintenance import purge_expired_postgres

        return await purge_expired_postgres(self.database, now)


def database_backend(
    url: str, sqlite_path: Path, *, readers: int, busy_timeout_ms: int, pool_size: int
) -> DatabaseBackend:
    """PostgreSQL when ``url`` is set, else SQLite at ``sqlite_path``."""
    if url:
        return PostgresBackend(url, pool_size=pool_size)
    return SqliteBackend(sqlite_path, readers=readers, busy_timeout_ms=busy_timeout_ms)
