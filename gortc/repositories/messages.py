"""Messages in SQLite, and the group-commit store that writes new ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from itertools import groupby

import aiosqlite

from gortc.entities.errors import NotFound
from gortc.entities.groups import Message, NewMessage
from gortc.entities.timestamps import from_text, to_text
from gortc.repositories.database import Database, fetch_all, fetch_one

log = logging.getLogger(__name__)

_COLUMNS = "id, group_id, seq, sender_id, body, created_at, edited_at, deleted_at"


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
    )


class SqliteMessageRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def get(self, message_id: str) -> Message | None:
        row = await fetch_one(
            self._conn, f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,)
        )
        return _message(row) if row else None

    async def before(self, group_id: str, *, before_seq: int | None, limit: int) -> list[Message]:
        rows = await fetch_all(
            self._conn,
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = ? AND seq < ? "
            "AND deleted_at IS NULL ORDER BY seq DESC LIMIT ?",
            (group_id, before_seq if before_seq is not None else 2**62, limit),
        )
        return [_message(row) for row in rows]

    async def after(self, group_id: str, *, after_seq: int, limit: int) -> list[Message]:
        rows = await fetch_all(
            self._conn,
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (group_id, after_seq, limit),
        )
        return [_message(row) for row in rows]

    async def update(self, message: Message) -> None:
        await self._conn.execute(
            "UPDATE messages SET body = ?, edited_at = ?, deleted_at = ? WHERE id = ?",
            (
                message.body,
                to_text(message.edited_at) if message.edited_at else None,
                to_text(message.deleted_at) if message.deleted_at else None,
                message.id,
            ),
        )


class GroupCommitMessageStore:
    """Writes new messages in batches: every message that arrives while a
    transaction is being committed waits for the next one, which carries them
    all. Under load one commit (and one fsync) serves hundreds of messages;
    alone, a message is committed at once.

    Seqs come from ``groups.last_seq``, bumped once per group per batch inside
    the transaction, so they have no gaps even with several processes
    writing to the same database. Membership is checked in that same
    transaction (one query per batch): a message from someone who is not
    (or no longer) a member is refused with NotFound, like a missing group.
    """

    def __init__(self, db: Database, *, max_batch: int = 1000) -> None:
        self._db = db
        self._max_batch = max_batch
        self._pending: list[tuple[NewMessage, asyncio.Future[Message]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add(self, draft: NewMessage) -> Message:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending.append((draft, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="gortc-message-commit")
        # Shielded: a sender that goes away does not take its message out of
        # a batch being written; the message is stored all the same.
        return await asyncio.shield(future)

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
            try:
                results = await self._write(batch)
            except Exception as exc:
                log.exception("storing %d messages failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            # Resolved in seq order, so the senders wake (and publish) in order.
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Message):
                    future.set_result(result)
                else:
                    future.set_exception(result)

    async def _write(
        self, batch: list[tuple[NewMessage, asyncio.Future[Message]]]
    ) -> list[Message | Exception]:
        results: list[Message | Exception] = [
            NotFound("no such group", code="group_not_found")
        ] * len(batch)
        rows = []
        async with self._db.write() as conn:
            allowed = await _memberships(conn, [draft for draft, _ in batch])
            indexed = sorted(
                (
                    (index, draft)
                    for index, (draft, _) in enumerate(batch)
                    if (draft.group_id, draft.sender_id) in allowed
                ),
                key=lambda item: item[1].group_id,
            )
            for group_id, items in groupby(indexed, key=lambda item: item[1].group_id):
                members = list(items)
                row = await fetch_one(
                    conn,
                    "UPDATE groups SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq",
                    (len(members), group_id),
                )
                if row is None:
                    continue  # the group was deleted meanwhile
                first_seq = int(row[0]) - len(members) + 1
                # Within a group, messages keep the order they arrived in.
                for offset, (index, draft) in enumerate(sorted(members, key=lambda i: i[0])):
                    message = Message(
                        id=draft.id,
                        group_id=draft.group_id,
                        seq=first_seq + offset,
                        sender_id=draft.sender_id,
                        body=draft.body,
                        created_at=draft.created_at,
                        file_ids=draft.file_ids,
                    )
                    results[index] = message
                    rows.append(
                        (
                            message.id,
                            group_id,
                            message.seq,
                            message.sender_id,
                            message.body,
                            to_text(message.created_at),
                        )
                    )
            if rows:
                await conn.executemany(
                    "INSERT INTO messages (id, group_id, seq, sender_id, body, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        return results


async def _memberships(
    conn: aiosqlite.Connection, drafts: list[NewMessage]
) -> set[tuple[str, str]]:
    """Which (group, sender) pairs of the batch are memberships, in one query."""
    pairs = sorted({(draft.group_id, draft.sender_id) for draft in drafts})
    found: set[tuple[str, str]] = set()
    # SQLite allows 32,766 parameters per statement: 2 per pair, in chunks.
    for start in range(0, len(pairs), 10_000):
        chunk = pairs[start : start + 10_000]
        values = ", ".join("(?, ?)" for _ in chunk)
        rows = await fetch_all(
            conn,
            f"SELECT group_id, user_id FROM members WHERE (group_id, user_id) IN (VALUES {values})",
            [value for pair in chunk for value in pair],
        )
        found.update((row[0], row[1]) for row in rows)
    return found
