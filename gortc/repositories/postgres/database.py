"""The PostgreSQL connections of a gortc process: one asyncpg pool.

Writes take a pooled connection inside a transaction (READ COMMITTED, the
server's default); whatever must not race across instances takes a row
lock in its statement (``SELECT … FOR UPDATE``, ``UPDATE … RETURNING``)
or leans on a unique constraint. Reads take a pooled connection without a
transaction, as SQLite's readers do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import urlsplit

import asyncpg

from gortc.repositories.migrations import SchemaError
from gortc.repositories.postgres.migrations import migrate_postgres

# A pooled connection, as the repositories see it (generic in the stubs
# only: asyncpg's classes take no subscript at run time).
if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
else:
    Connection = asyncpg.pool.PoolConnectionProxy


class PostgresDatabase:
    def __init__(self, url: str, *, min_connections: int = 2, max_connections: int = 10) -> None:
        self.url = url
        self._min = min_connections
        self._max = max_connections
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None

    async def migrate(self) -> tuple[int, int]:
        """Brings the schema up to date; (version before, version after).
        Raises SchemaError when the server cannot be reached or the database
        is unusable by this version."""
        try:
            conn = await asyncpg.connect(self.url, timeout=10)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise SchemaError(f"cannot connect to {describe(self.url)}: {exc}") from None
        try:
            return await migrate_postgres(conn)
        finally:
            await conn.close()

    async def open(self) -> None:
        """Migrates the schema if needed, then opens the pool (SchemaError
        as ``migrate``)."""
        await self.migrate()
        self._pool = await asyncpg.create_pool(
            self.url, min_size=self._min, max_size=self._max, timeout=10
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Waits for connections in use to be released first.
            await pool.close()

    async def ping(self) -> str:
        async with self.read() as conn:
            await conn.fetchval("SELECT 1")
        return "ok"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """A transaction: committed at the end, rolled back on error."""
        async with self._acquire() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        async with self._acquire() as conn:
            yield conn

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise RuntimeError("the database is closed")
        async with self._pool.acquire() as conn:
            yield conn


def describe(url: str) -> str:
    """The database a URL names, for messages: never its password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"PostgreSQL {parts.username or ''}@{host}{port}{parts.path}".replace(" @", " ")
