"""Reactions to messages on PostgreSQL; see repositories/reactions.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from gortc.entities.groups import Message
from gortc.entities.reactions import Reaction
from gortc.repositories.postgres.database import Connection


class PostgresReactionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, message_id: str, user_id: str, emoji: str, now: datetime) -> bool:
        row = await self._conn.fetchrow(
            "INSERT INTO message_reactions (message_id, user_id, emoji, created_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
            message_id,
            user_id,
            emoji,
            now,
        )
        return row is not None

    async def remove(self, message_id: str, user_id: str, emoji: str) -> bool:
        row = await self._conn.fetchrow(
            "DELETE FROM message_reactions WHERE message_id = $1 AND user_id = $2 "
            "AND emoji = $3 RETURNING 1",
            message_id,
            user_id,
            emoji,
        )
        return row is not None

    async def clear(self, message_id: str) -> None:
        await self._conn.execute("DELETE FROM message_reactions WHERE message_id = $1", message_id)


async def with_reactions(conn: Connection, messages: list[Message]) -> list[Message]:
    """The messages with their ``reactions``, in the order they were added:
    one query for the whole list."""
    if not messages:
        return messages
    rows = await conn.fetch(
        "SELECT message_id, user_id, emoji FROM message_reactions "
        "WHERE message_id = ANY($1::text[]) ORDER BY added_order",
        [message.id for message in messages],
    )
    # message id -> emoji -> user ids; dicts keep the order of first use.
    found: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        found.setdefault(row["message_id"], {}).setdefault(row["emoji"], []).append(row["user_id"])
    if not found:
        return messages
    return [
        replace(
            message,
            reactions=tuple(
                Reaction(emoji, tuple(users)) for emoji, users in found[message.id].items()
            ),
        )
        if message.id in found
        else message
        for message in messages
    ]
