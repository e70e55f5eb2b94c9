"""Rebuilding every search index from the stored data (``gortc reindex``).

The indexes are kept current by the repositories in the transactions that
change the data; a rebuild is for repairs: after a ``VACUUM`` (which may
renumber the rowids the message and people indexes are keyed by), after
editing the database by hand, or should an index ever disagree with its
table. Each index is rebuilt in one write transaction, in batches so that
progress can be shown: readers see the old index until the new one is
committed, and a rebuild that fails leaves the old one as it was. A running
server would wait for the write lock meanwhile (and time out after
``database.busy_timeout_ms``), so run it while the server is stopped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosqlite

from gortc.repositories import file_index, message_index, user_index
from gortc.repositories.database import Database

Progress = Callable[[int, int], None]  # (done, total)
Rebuild = Callable[[aiosqlite.Connection, Progress], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class SearchIndex:
    name: str
    rebuild: Rebuild  # empties the index and fills it again; returns the rows indexed


INDEXES = (
    SearchIndex("files", file_index.rebuild),
    SearchIndex("messages", message_index.rebuild),
    SearchIndex("people", user_index.rebuild),
)


async def rebuild_all(
    database: Database, progress_for: Callable[[str], Progress]
) -> dict[str, int]:
    """Rebuilds each index in its own transaction; returns the rows each indexed."""
    indexed = {}
    for index in INDEXES:
        async with database.write() as conn:
            indexed[index.name] = await index.rebuild(conn, progress_for(index.name))
    return indexed
