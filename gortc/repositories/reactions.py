"""Reactions to messages: the ``message_reactions`` table.

Rows are read back with every message (``with_reactions``, one query for a
whole page); the order of the rowids is the order they were added in, which
gives each emoji its place (its first use) and its users their order.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import aiosqlite

from gortc.entities.groups import Message
from gortc.entities.reactions import Reaction
from gortc.entities.timestamps import to_text
from gortc.repositories.database import fetch_all, fetch_one

# SQLite takes at most 32,766 parameters per statement.
_CHUNK = 10_000


class SqliteReactionRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(self, message_id: str, user_id: str, emoji: str, now: datetime) -> bool:
        row = await fetch_one(
            self._conn,
            "INSERT INTO message_reactions (message_id, user_id, emoji, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1",
            (message_id, user_id, emoji, to_text(now)),
        )
        return row is not None

    async def remove(self, message_id: str, user_id: str, emoji: str) -> bool:
        row = await fetch_one(
            self._conn,
            "DELETE FROM message_reactions WHERE message_id = ? AND user_id = ? AND emoji = ? "
            "RETURNING 1",
            (message_id, user_id, emoji),
        )
        return row is not None

    async def clear(self, message_id: str) -> None:
        await self._conn.execute(
            "DELETE FROM message_reactions WHERE message_id = ?", (message_id,)
        )


async def with_reactions(conn: aiosqlite.Connection, messages: list[Message]) -> list[Message]:
    """The messages with their ``reactions`` filled in: one query (a search
    of the primary key per message) for the whole list."""
    if not messages:
        return messages
    ids = [message.id for message in messages]
    # message id -> emoji -> user ids; dicts keep the order of first use.
    found: dict[str, dict[str, list[str]]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = await fetch_all(
            conn,
            "SELECT message_id, user_id, emoji FROM message_reactions "
            f"WHERE message_id IN ({', '.join('?' * len(chunk))}) ORDER BY rowid",
            chunk,
        )
        for row in rows:
            found.setdefault(row["message_id"], {}).setdefault(row["emoji"], []).append(
                row["user_id"]
            )
    if not found:
        return messages
    return [
        replace(
            message,
            reactions=tuple(
                Reaction(emoji, tuple(user_ids))
                for emoji, user_ids in found.get(message.id, {}).items()
            ),
        )
        if message.id in found
        else message
        for message in messages
    ]
