"""``gortc serve`` with its group-commit message batches on psycopg 3.

The persistence bench compares the two PostgreSQL drivers on the one path
where the driver matters most: storing messages (issue 13 asked for both to
be measured). gortc ships asyncpg; this module is for the bench only.

It changes nothing but the driver. ``PostgresMessageBatch`` (the shipped
class, repositories/postgres/messages.py) runs unchanged on a
``PsycopgConnection``: an adapter with the four methods it calls
(``execute``, ``fetch``, ``fetchrow``, ``fetchval``) that hands the very same
statements to a psycopg ``AsyncConnection`` from a ``psycopg_pool`` pool,
``$n`` placeholders spelled as psycopg wants them (``%(pn)s``, which psycopg
sends to the server as ``$n`` again: server-side binding, as asyncpg does).
Rows come back as ``Record``s that answer both ``row[0]`` and
``row["name"]``, as asyncpg's do. Everything else of the process (users,
groups, sessions...) stays on the asyncpg pool.

Each driver as it comes: asyncpg prepares every statement on first use and
reads results in binary; psycopg prepares a statement from its fifth run
(``prepare_threshold``) and reads results as text unless told otherwise.
Both are steady after the bench's warm-up; the text results are part of
what psycopg costs out of the box.

Run as ``python bench/psycopg_store.py serve …`` (any ``gortc`` command
line); ``bench/persist.py --drivers`` does.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

# The gortc of this checkout, whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool

from gortc.repositories.group_commit import GroupCommitMessageStore, MessageBatch

_PLACEHOLDER = re.compile(r"\$(\d+)")


@lru_cache(maxsize=256)
def psycopg_sql(statement: str) -> str:
    """An asyncpg statement (``$1``…) as psycopg takes it (``%(p1)s``…);
    a literal ``%`` doubled, since psycopg reads ``%`` as a placeholder."""
    return _PLACEHOLDER.sub(r"%(p\1)s", statement.replace("%", "%%"))


class Record:
    """One row, by position or by column name, as asyncpg's Record."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)


def record_row(cursor: AsyncCursor[Any]) -> RowMaker[Record]:
    """psycopg's row factory: one column index per result, shared by its rows."""
    index = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> Record:
        return Record(values, index)

    return make


class PsycopgConnection:
    """What PostgresMessageBatch calls on a connection, on psycopg."""

    def __init__(self, conn: AsyncConnection[Record]) -> None:
        self._conn = conn

    async def _run(self, statement: str, args: Sequence[Any]) -> AsyncCursor[Record]:
        if not args:  # no parameters: psycopg sends the text as it is
            return await self._conn.execute(statement)
        parameters = {f"p{number}": value for number, value in enumerate(args, 1)}
        return await self._conn.execute(psycopg_sql(statement), parameters)

    async def execute(self, statement: str, *args: Any) -> str:
        cursor = await self._run(statement, args)
        return cursor.statusmessage or ""

    async def fetch(self, statement: str, *args: Any) -> list[Record]:
        cursor = await self._run(statement, args)
        return await cursor.fetchall()

    async def fetchrow(self, statement: str, *args: Any) -> Record | None:
        cursor = await self._run(statement, args)
        return await cursor.fetchone()

    async def fetchval(self, statement: str, *args: Any) -> Any:
        row = await self.fetchrow(statement, *args)
        return None if row is None else row[0]


def psycopg_pool(url: str, *, size: int = 2) -> AsyncConnectionPool[AsyncConnection[Record]]:
    """A closed pool; ``await pool.open()``. Autocommit, so that a batch's
    transaction is the explicit one it opens (BEGIN … COMMIT), as on asyncpg."""
    return AsyncConnectionPool(
        url,
        min_size=min(1, size),
        max_size=size,
        kwargs={"autocommit": True, "row_factory": record_row},
        open=False,
        connection_class=AsyncConnection,
    )


def psycopg_message_store(
    pool: AsyncConnectionPool[AsyncConnection[Record]], *, max_batch: int = 1000
) -> GroupCommitMessageStore:
    """The shipped group-commit store and batch statements, on psycopg."""
    from gortc.repositories.postgres.database import Connection
    from gortc.repositories.postgres.messages import PostgresMessageBatch

    @asynccontextmanager
    async def open_batch() -> AsyncIterator[MessageBatch]:
        async with pool.connection() as conn, conn.transaction():
            # Duck-typed: the batch calls only what PsycopgConnection has.
            yield PostgresMessageBatch(cast(Connection, PsycopgConnection(conn)))

    return GroupCommitMessageStore(open_batch, max_batch=max_batch)


def install() -> None:
    """Makes the process's PostgreSQL backend store messages through psycopg."""
    import gortc.app
    from gortc.repositories.backends import PostgresBackend, database_backend

    class PsycopgMessagesBackend(PostgresBackend):
        def __init__(self, url: str, *, pool_size: int) -> None:
            super().__init__(url, pool_size=pool_size)
            self.pool = psycopg_pool(url)

        async def open(self) -> None:
            await super().open()  # migrates first
            await self.pool.open(wait=True, timeout=10)

        async def close(self) -> None:
            await self.pool.close()
            await super().close()

        def message_store(self) -> GroupCommitMessageStore:
            return psycopg_message_store(self.pool)

    def backend(url: str, sqlite_path: Path, **settings: Any) -> Any:
        if not url:
            raise SystemExit("psycopg_store.py needs GORTC_DATABASE_URL=postgresql://…")
        return PsycopgMessagesBackend(url, pool_size=settings["pool_size"])

    assert database_backend is not None  # the name this replaces in gortc.app
    gortc.app.database_backend = backend


if __name__ == "__main__":
    install()
    from gortc.cli import main

    raise SystemExit(main(sys.argv[1:]))
