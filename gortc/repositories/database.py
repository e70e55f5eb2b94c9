"""The SQLite connections of a gortc process.

One writer connection, whose transactions are serialised by a lock and begin
IMMEDIATE (so they never fail half-way on a lock upgrade), and a small pool
of read-only connections that WAL mode lets run beside the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from gortc.repositories.migrations import migrate


async def fetch_one(
    conn: aiosqlite.Connection, sql: str, params: Sequence[object]
) -> sqlite3.Row | None:
    """The first row, in one trip to the connection's thread."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def fetch_all(
    conn: aiosqlite.Connection, sql: str, params: Sequence[object]
) -> list[sqlite3.Row]:
    """Every row, in one trip to the connection's thread (execute, fetch and
    close as separate awaits would cost three)."""
    return list(await conn.execute_fetchall(sql, params))


async def _rollback(conn: aiosqlite.Connection) -> None:
    # The connection's thread runs statements in order, so this lands after
    # a BEGIN or COMMIT that was cancelled while queued; if that COMMIT went
    # through, there is nothing left to roll back.
    with contextlib.suppress(sqlite3.OperationalError):
        await conn.execute("ROLLBACK")


class Database:
    def __init__(self, path: Path, *, readers: int = 2, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._reader_count = readers
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []

    async def open(self) -> None:
        """Migrates the schema if needed, then opens the connections.

        Raises SchemaError when the database is unusable by this version.
        """
        await asyncio.to_thread(migrate, self.path)
        self._writer = await self._connect(read_only=False)
        for _ in range(self._reader_count):
            reader = await self._connect(read_only=True)
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)

    async def close(self) -> None:
        """Waits for the running write to finish, then closes everything."""
        async with self._write_lock:
            if self._writer is not None:
                # Folds the WAL back into the main file for a tidy shutdown.
                await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                await self._writer.close()
                self._writer = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()

    async def _connect(self, *, read_only: bool) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        if read_only:
            await conn.execute("PRAGMA query_only = ON")
        else:
            await conn.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL still never corrupts; a power cut may lose the
            # last commits, which is the trade every WAL deployment makes.
            await conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    async def ping(self) -> str:
        """'ok' when a reader answers; raises when the database is unusable."""
        async with self.read() as conn:
            await fetch_one(conn, "SELECT 1", ())
        return "ok"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: committed at the end, rolled back on error."""
        async with self._write_lock:
            conn = self._writer
            if conn is None:
                raise RuntimeError("the database is closed")
            try:
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
                await conn.execute("COMMIT")
            except BaseException:
                # Shielded: a cancelled request must not leave the writer
                # inside its transaction for the next one.
                await asyncio.shield(_rollback(conn))
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only connection from the pool."""
        if not self._all_readers:
            raise RuntimeError("the database is closed")
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)
