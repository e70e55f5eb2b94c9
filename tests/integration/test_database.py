"""The SQLite connections of a gortc process, on a real file."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from gortc.repositories.database import Database

BUSY_TIMEOUT_MS = 1234


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "gortc.db", readers=2, busy_timeout_ms=BUSY_TIMEOUT_MS)
    await database.open()
    async with database.write() as conn:
        await conn.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        await conn.execute("INSERT INTO counter (id, n) VALUES (1, 0)")
    yield database
    await database.close()


async def pragma(conn: aiosqlite.Connection, name: str) -> object:
    async with conn.execute(f"PRAGMA {name}") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return row[0]


async def counter(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT n FROM counter WHERE id = 1") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_the_writer_uses_wal_foreign_keys_and_the_busy_timeout(db: Database) -> None:
    async with db.write() as conn:
        assert await pragma(conn, "journal_mode") == "wal"
        assert await pragma(conn, "foreign_keys") == 1
        assert await pragma(conn, "busy_timeout") == BUSY_TIMEOUT_MS
        assert await pragma(conn, "query_only") == 0


async def test_every_reader_is_query_only_with_foreign_keys_and_the_busy_timeout(
    db: Database,
) -> None:
    # Holding both pool connections at once makes sure each is checked.
    async with db.read() as first, db.read() as second:
        assert first is not second
        for conn in (first, second):
            assert await pragma(conn, "journal_mode") == "wal"
            assert await pragma(conn, "foreign_keys") == 1
            assert await pragma(conn, "busy_timeout") == BUSY_TIMEOUT_MS
            assert await pragma(conn, "query_only") == 1


async def test_foreign_keys_are_enforced_on_writes(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        async with db.write() as conn:
            await conn.execute(
                "INSERT INTO sessions (id, user_id, kind, created_at, expires_at) "
                "VALUES ('s1', 'nobody', 'token', '2024', '2099')"
            )


async def test_a_write_through_a_reader_fails_and_changes_nothing(db: Database) -> None:
    async with db.read() as conn:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await conn.execute("UPDATE counter SET n = 99 WHERE id = 1")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await conn.execute("INSERT INTO counter (id, n) VALUES (2, 0)")
    async with db.read() as conn:
        assert await counter(conn) == 0
    async with db.write() as conn:
        assert await counter(conn) == 0


class Boom(Exception):
    pass


async def test_a_write_transaction_rolls_back_on_an_exception(db: Database) -> None:
    with pytest.raises(Boom):
        async with db.write() as conn:
            await conn.execute("UPDATE counter SET n = 41 WHERE id = 1")
            await conn.execute("INSERT INTO counter (id, n) VALUES (2, 7)")
            raise Boom

    async with db.read() as conn:
        assert await counter(conn) == 0
        async with conn.execute("SELECT count(*) FROM counter") as cursor:
            assert (await cursor.fetchone())[0] == 1
    # The writer is free again and no transaction was left open on it
    # (BEGIN would fail inside one).
    async with db.write() as conn:
        await conn.execute("UPDATE counter SET n = 1 WHERE id = 1")
    async with db.read() as conn:
        assert await counter(conn) == 1


async def test_a_cancelled_write_transaction_rolls_back(db: Database) -> None:
    inside = asyncio.Event()

    async def slow_writer() -> None:
        async with db.write() as conn:
            await conn.execute("UPDATE counter SET n = 5 WHERE id = 1")
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(slow_writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async with db.write() as conn:
        assert await counter(conn) == 0


async def test_concurrent_read_modify_write_transactions_lose_no_update(db: Database) -> None:
    async def increment() -> None:
        async with db.write() as conn:
            value = await counter(conn)
            # Give every other task the chance to interleave here.
            await asyncio.sleep(0)
            await conn.execute("UPDATE counter SET n = ? WHERE id = 1", (value + 1,))

    await asyncio.gather(*(increment() for _ in range(200)))

    async with db.read() as conn:
        assert await counter(conn) == 200


async def test_reads_proceed_while_a_write_transaction_is_open(db: Database) -> None:
    async with db.write() as writer:
        await writer.execute("UPDATE counter SET n = 10 WHERE id = 1")
        # WAL: a reader sees the last committed state, without waiting.
        async with db.read() as reader:
            assert await counter(reader) == 0
    async with db.read() as reader:
        assert await counter(reader) == 10


async def test_close_waits_for_the_running_write_and_leaves_one_whole_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gortc.db"
    db = Database(path)
    await db.open()
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with db.write() as conn:
            await conn.execute("INSERT INTO revoked_tokens (jti, expires_at) VALUES ('j1', '2099')")
            inside.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    release.set()
    await task
    await closing

    with pytest.raises(RuntimeError):
        async with db.write():
            pass
    # Everything committed is in the main file: copying it alone is a backup.
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("SELECT jti FROM revoked_tokens").fetchall() == [("j1",)]
    finally:
        conn.close()


async def test_a_write_cancelled_while_beginning_leaves_no_transaction_open(
    db: Database,
) -> None:
    async def writer() -> None:
        async with db.write() as conn:
            await conn.execute("UPDATE counter SET n = n + 1 WHERE id = 1")

    for _ in range(20):
        task = asyncio.create_task(writer())
        await asyncio.sleep(0)  # cancelled at whatever await it reached
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # The writer is usable, and closing (which checkpoints) succeeds.
    async with db.write() as conn:
        await conn.execute("UPDATE counter SET n = 0 WHERE id = 1")
    await db.close()
