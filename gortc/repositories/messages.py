"""Messages in SQLite, and the statements of the group-commit store that
writes new ones (repositories/group_commit.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

import aiosqlite

from gortc.entities.errors import NotFound
from gortc.entities.groups import Message, Quote, quoted_ids, with_quotes
from gortc.entities.message_search import MessageHit, SearchOrder
from gortc.entities.query_syntax import Query
from gortc.entities.timestamps import from_text, to_text
from gortc.repositories import attachments, message_index, reactions
from gortc.repositories.database import Database, fetch_all, fetch_one
from gortc.repositories.fts_match import order_score
from gortc.repositories.group_commit import (
    AttachmentRow,
    ClientKey,
    GroupCommitMessageStore,
    MessageBatch,
    OwnedFiles,
)

_COLUMNS = (
    "id, group_id, seq, sender_id, body, created_at, edited_at, deleted_at, "
    "client_id, change_seq, created_change_seq, reply_to_id"
)


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        group_id=row["group_id"],
        seq=row["seq"],
        sender_id=row["sender_id"],
        body=row["body"],
        created_at=from_text(row["created_at"]),
        edited_at=from_text(row["edited_at"]) if row["edited_at"] else None,
        deleted_at=from_text(row["deleted_at"]) if row["deleted_at"] else None,
        client_id=row["client_id"],
        change=row["change_seq"],
        created_change=row["created_change_seq"],
    )


async def _complete(conn: aiosqlite.Connection, rows: list[sqlite3.Row]) -> list[Message]:
    """The messages of ``rows`` (selected with _COLUMNS) as clients see
    them: with their files, reactions and the quote of what they answer.
    One query for each of the three, for the whole list."""
    messages = await attachments.with_files(conn, [_message(row) for row in rows])
    messages = await reactions.with_reactions(conn, messages)
    return await _with_quotes(conn, messages, [row["reply_to_id"] for row in rows])


async def _with_quotes(
    conn: aiosqlite.Connection, messages: list[Message], reply_to_ids: list[str | None]
) -> list[Message]:
    wanted = quoted_ids(messages, reply_to_ids)
    if not wanted:
        return messages
    quotes: dict[str, Quote] = {}
    for start in range(0, len(wanted), 10_000):
        chunk = wanted[start : start + 10_000]
        rows = await fetch_all(
            conn,
            "SELECT id, sender_id, body, deleted_at FROM messages "
            f"WHERE id IN ({', '.join('?' * len(chunk))})",
            chunk,
        )
        for row in rows:
            quotes[row["id"]] = Quote.of(
                row["id"], row["sender_id"], row["body"], row["deleted_at"] is not None
            )
    return with_quotes(messages, reply_to_ids, quotes)


class SqliteMessageRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def get(self, message_id: str) -> Message | None:
        row = await fetch_one(
            self._conn, f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,)
        )
        if row is None:
            return None
        [message] = await _complete(self._conn, [row])
        return message

    async def before(self, group_id: str, *, before_seq: int | None, limit: int) -> list[Message]:
        rows = await fetch_all(
            self._conn,
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = ? AND seq < ? "
            "AND deleted_at IS NULL ORDER BY seq DESC LIMIT ?",
            (group_id, before_seq if before_seq is not None else 2**62, limit),
        )
        return await _complete(self._conn, rows)

    async def newer(self, group_id: str, *, after_seq: int, limit: int) -> list[Message]:
        rows = await fetch_all(
            self._conn,
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = ? AND seq > ? "
            "AND deleted_at IS NULL ORDER BY seq LIMIT ?",
            (group_id, after_seq, limit),
        )
        return await _complete(self._conn, rows)

    async def after(self, group_id: str, *, after_seq: int, limit: int) -> list[Message]:
        rows = await fetch_all(
            self._conn,
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (group_id, after_seq, limit),
        )
        return await _complete(self._conn, rows)

    async def changed_after(self, group_id: str, *, after_change: int, limit: int) -> list[Message]:
        # A range scan of messages_by_change.
        rows = await fetch_all(
            self._conn,
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = ? AND change_seq > ? "
            "ORDER BY change_seq LIMIT ?",
            (group_id, after_change, limit),
        )
        return await _complete(self._conn, rows)

    async def touch(self, message: Message) -> Message:
        """Gives the message the next number of its group's change counter
        without changing anything else (a reaction came or went)."""
        changed = replace(message, change=await _next_change(self._conn, message.group_id))
        await self._conn.execute(
            "UPDATE messages SET change_seq = ? WHERE id = ?", (changed.change, changed.id)
        )
        return changed

    async def update(self, message: Message) -> Message:
        # The number is taken here, in the caller's write transaction, so no
        # edit or deletion is ever stored without one (sync by change relies
        # on every change moving change_seq past what clients have seen).
        changed = replace(message, change=await _next_change(self._conn, message.group_id))
        # The search entry follows the body: the old one out before the row
        # changes (FTS5 needs the indexed values), the new one in after (a
        # deleted message's is empty, so it matches nothing).
        await message_index.forget(self._conn, changed.id)
        await self._conn.execute(
            "UPDATE messages SET body = ?, edited_at = ?, deleted_at = ?, change_seq = ? "
            "WHERE id = ?",
            (
                changed.body,
                to_text(changed.edited_at) if changed.edited_at else None,
                to_text(changed.deleted_at) if changed.deleted_at else None,
                changed.change,
                changed.id,
            ),
        )
        await message_index.add(self._conn, [(changed.id, changed.body)])
        return changed

    async def search(
        self,
        user_id: str,
        query: Query,
        *,
        group_id: str | None,
        order: SearchOrder,
        below: int | None,
        offset: int,
        limit: int,
    ) -> list[MessageHit]:
        rows = await message_index.search(
            self._conn,
            ", ".join(f"m.{column.strip()}" for column in _COLUMNS.split(",")),
            user_id=user_id,
            query=query,
            group_id=group_id,
            order=order,
            below=below,
            offset=offset,
            limit=limit,
        )
        messages = await _complete(self._conn, rows)
        return [
            MessageHit(
                message=message,
                snippet=message_index.public_snippet(row["snippet"]),
                score=order_score(offset + index),
                position=int(row["position"]),
            )
            for index, (row, message) in enumerate(zip(rows, messages, strict=True))
        ]


class SqliteMessageBatch:
    """The statements of one group-commit batch (repositories/group_commit.py)
    on SQLite's writer connection. Its transaction is the only writer, so
    ``lock_groups`` has nothing to do."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def lock_groups(self, group_ids: Sequence[str]) -> None:
        return None

    async def memberships(self, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        # SQLite allows 32,766 parameters per statement: 2 per pair, in chunks.
        for start in range(0, len(pairs), 10_000):
            chunk = pairs[start : start + 10_000]
            values = ", ".join("(?, ?)" for _ in chunk)
            # A join: SQLite plans "(…) IN (VALUES …)" as a scan of a whole index.
            rows = await fetch_all(
                self._conn,
                f"WITH wanted (group_id, user_id) AS (VALUES {values}) "
                "SELECT m.group_id, m.user_id FROM wanted JOIN members AS m "
                "ON m.group_id = wanted.group_id AND m.user_id = wanted.user_id",
                [value for pair in chunk for value in pair],
            )
            found.update((row[0], row[1]) for row in rows)
        return found

    async def stored_by_client_id(self, keys: Sequence[ClientKey]) -> dict[ClientKey, Message]:
        return await _stored_by_client_id(self._conn, keys)

    async def files(self, file_ids: Sequence[str]) -> OwnedFiles:
        return await attachments.files_by_id(self._conn, file_ids)

    async def quotable(self, message_ids: Sequence[str]) -> dict[str, tuple[str, Quote]]:
        found: dict[str, tuple[str, Quote]] = {}
        for start in range(0, len(message_ids), 10_000):
            chunk = message_ids[start : start + 10_000]
            rows = await fetch_all(
                self._conn,
                "SELECT id, group_id, sender_id, body FROM messages "
                f"WHERE id IN ({', '.join('?' * len(chunk))}) AND deleted_at IS NULL",
                chunk,
            )
            for row in rows:
                found[row["id"]] = (
                    row["group_id"],
                    Quote.of(row["id"], row["sender_id"], row["body"], False),
                )
        return found

    async def take_numbers(self, counts: dict[str, int]) -> dict[str, tuple[int, int]]:
        # One statement for the whole batch: a batch spread over many groups
        # would otherwise pay one round trip to the database thread per group.
        reserved: dict[str, tuple[int, int]] = {}
        items = sorted(counts.items())
        for start in range(0, len(items), 10_000):  # 2 parameters per group
            chunk = items[start : start + 10_000]
            values = ", ".join("(?, ?)" for _ in chunk)
            rows = await fetch_all(
                self._conn,
                f"WITH wanted (id, n) AS (VALUES {values}) "
                "UPDATE groups SET last_seq = last_seq + wanted.n, "
                "last_change = last_change + wanted.n "
                "FROM wanted WHERE groups.id = wanted.id "
                "RETURNING groups.id, groups.last_seq, groups.last_change",
                [value for item in chunk for value in item],
            )
            for row in rows:
                taken = counts[row[0]]
                reserved[row[0]] = (int(row[1]) - taken + 1, int(row[2]) - taken + 1)
        return reserved

    async def insert(
        self, messages: Sequence[tuple[Message, str | None]], attached: Sequence[AttachmentRow]
    ) -> None:
        await self._conn.executemany(
            "INSERT INTO messages (id, group_id, seq, sender_id, body, created_at, "
            "client_id, change_seq, created_change_seq, reply_to_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    message.id,
                    message.group_id,
                    message.seq,
                    message.sender_id,
                    message.body,
                    to_text(message.created_at),
                    message.client_id,
                    message.change,
                    message.created_change,
                    reply_to_id,
                )
                for message, reply_to_id in messages
            ],
        )
        # Searchable from the same commit on.
        await message_index.add(self._conn, [(message.id, message.body) for message, _ in messages])
        await attachments.attach(self._conn, attached)


def sqlite_message_store(db: Database, *, max_batch: int = 1000) -> GroupCommitMessageStore:
    """The group-commit store on SQLite's writer."""

    @asynccontextmanager
    async def open_batch() -> AsyncIterator[MessageBatch]:
        async with db.write() as conn:
            yield SqliteMessageBatch(conn)

    return GroupCommitMessageStore(open_batch, max_batch=max_batch)


async def _next_change(conn: aiosqlite.Connection, group_id: str) -> int:
    row = await fetch_one(
        conn,
        "UPDATE groups SET last_change = last_change + 1 WHERE id = ? RETURNING last_change",
        (group_id,),
    )
    if row is None:
        raise NotFound("no such group", code="group_not_found")
    return int(row[0])


async def _stored_by_client_id(
    conn: aiosqlite.Connection, keys: Sequence[ClientKey]
) -> dict[ClientKey, Message]:
    """The stored messages with these keys, complete."""
    found: dict[ClientKey, Message] = {}
    # 3 parameters per key, under SQLite's 32,766 per statement. A join, not
    # "(…) IN (VALUES …)": SQLite plans that IN as a scan of the whole index,
    # the join as one index search per key. The explicit IS NOT NULL lets the
    # planner use the partial index messages_by_client_id.
    columns = ", ".join(f"m.{column.strip()}" for column in _COLUMNS.split(","))
    for start in range(0, len(keys), 10_000):
        chunk = keys[start : start + 10_000]
        values = ", ".join("(?, ?, ?)" for _ in chunk)
        rows = await fetch_all(
            conn,
            f"WITH wanted (group_id, sender_id, client_id) AS (VALUES {values}) "
            f"SELECT {columns} FROM wanted JOIN messages AS m "
            "ON m.group_id = wanted.group_id AND m.sender_id = wanted.sender_id "
            "AND m.client_id = wanted.client_id WHERE m.client_id IS NOT NULL",
            [value for key in chunk for value in key],
        )
        messages = await _complete(conn, rows)
        found.update(
            ((row["group_id"], row["sender_id"], row["client_id"]), message)
            for row, message in zip(rows, messages, strict=True)
        )
    return found
