"""Messages in SQLite, and the group-commit store that writes new ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from dataclasses import replace
from itertools import groupby

import aiosqlite

from gortc.entities.errors import NotFound
from gortc.entities.groups import Message, NewMessage, Quote, StoredMessage, invalid_reply
from gortc.entities.message_search import MessageHit, SearchOrder
from gortc.entities.query_syntax import Query
from gortc.entities.timestamps import from_text, to_text
from gortc.repositories import attachments, message_index, reactions
from gortc.repositories.database import Database, fetch_all, fetch_one
from gortc.repositories.fts_match import order_score

log = logging.getLogger(__name__)

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
    # A deleted reply shows nothing, its quote included.
    wanted = sorted(
        {
            reply_to_id
            for message, reply_to_id in zip(messages, reply_to_ids, strict=True)
            if reply_to_id is not None and not message.is_deleted
        }
    )
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
    return [
        replace(message, reply_to=quotes.get(reply_to_id) or Quote.of(reply_to_id, None, "", True))
        if reply_to_id is not None and not message.is_deleted
        else message
        for message, reply_to_id in zip(messages, reply_to_ids, strict=True)
    ]


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


class GroupCommitMessageStore:
    """Writes new messages in batches: every message that arrives while a
    transaction is being committed waits for the next one, which carries them
    all. Under load one commit (and one fsync) serves hundreds of messages;
    alone, a message is committed at once.

    Seqs come from ``groups.last_seq`` and change numbers from
    ``groups.last_change``, both bumped once per group per batch inside the
    transaction, so seqs have no gaps even with several processes writing to
    the same database. Membership is checked in that same transaction (one
    query per batch): a message from someone who is not (or no longer) a
    member is refused with NotFound, like a missing group.

    A draft whose (group, sender, client_id) is already stored, or appears
    earlier in the same batch, is not stored again: its sender gets that
    message back, marked not new (one more query per batch, only for drafts
    with a client_id). The batch's transaction is the only writer, so no
    other write can slip in between that look-up and the insert.

    Files a draft carries must be its sender's (one more query per batch,
    only when a draft carries files; else NotFound ``file_not_found``, and
    nothing of that draft is stored); they are stored in ``message_files``
    with one executemany after the messages (see attachments.py).

    A draft's ``reply_to_id`` must name a message of its group that is not
    deleted (one more query per batch, only when a draft is a reply; else
    InvalidInput ``invalid_reply``, and nothing of that draft is stored).
    """

    def __init__(self, db: Database, *, max_batch: int = 1000) -> None:
        self._db = db
        self._max_batch = max_batch
        self._pending: list[tuple[NewMessage, asyncio.Future[StoredMessage]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add(self, draft: NewMessage) -> StoredMessage:
        future: asyncio.Future[StoredMessage] = asyncio.get_running_loop().create_future()
        self._pending.append((draft, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="gortc-message-commit")
        # Not shielded, and it need not be: a sender cancelled here only
        # cancels its future; the draft stays queued and is stored all the
        # same (``_flush`` skips futures already done).
        return await future

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
            try:
                results = await self._write([draft for draft, _ in batch])
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
                if isinstance(result, StoredMessage):
                    future.set_result(result)
                else:
                    future.set_exception(result)

    async def _write(self, drafts: list[NewMessage]) -> list[StoredMessage | Exception]:
        results: list[StoredMessage | Exception] = [
            NotFound("no such group", code="group_not_found")
        ] * len(drafts)
        rows = []
        attached: list[tuple[str, str, str, int]] = []  # message_files rows
        async with self._db.write() as conn:
            allowed = await _memberships(conn, drafts)
            accepted = [
                (index, draft)
                for index, draft in enumerate(drafts)
                if (draft.group_id, draft.sender_id) in allowed
            ]
            stored = await _stored_by_client_id(conn, [draft for _, draft in accepted])
            fresh: list[tuple[int, NewMessage]] = []
            first_of: dict[tuple[str, str, str], int] = {}  # key -> index of its first draft
            repeats: list[tuple[int, int]] = []  # (index, index of the first draft)
            for index, draft in accepted:
                key = _client_key(draft)
                if key is not None:
                    if key in stored:
                        results[index] = StoredMessage(stored[key], is_new=False)
                        continue
                    if key in first_of:
                        repeats.append((index, first_of[key]))
                        continue
                    first_of[key] = index
                fresh.append((index, draft))
            # Each file must be the sender's, checked in this transaction (a
            # file deleted meanwhile is caught); one query, only if any has files.
            owned = await attachments.files_of_senders(conn, [draft for _, draft in fresh])
            refused = {index for index, draft in fresh if not attachments.owns_all(draft, owned)}
            for index in refused:
                results[index] = attachments.file_not_found()
            fresh = [item for item in fresh if item[0] not in refused]
            # A reply must answer a message of its group that is not deleted,
            # checked here for the same reasons (one query, only for replies).
            quotable = await _quotable(conn, [draft for _, draft in fresh])
            refused = {
                index
                for index, draft in fresh
                if draft.reply_to_id is not None
                and quotable.get(draft.reply_to_id, ("", None))[0] != draft.group_id
            }
            for index in refused:
                results[index] = invalid_reply()
            fresh = [item for item in fresh if item[0] not in refused]
            fresh.sort(key=lambda item: item[1].group_id)
            by_group = {
                group_id: sorted(items, key=lambda item: item[0])  # the order they came in
                for group_id, items in ((g, list(i)) for g, i in groupby(fresh, key=_group_of))
            }
            numbers = await _take_numbers(
                conn, {group_id: len(items) for group_id, items in by_group.items()}
            )
            for group_id, members in by_group.items():
                if group_id not in numbers:
                    continue  # the group was deleted meanwhile
                first_seq, first_change = numbers[group_id]
                for offset, (index, draft) in enumerate(members):
                    message = Message(
                        id=draft.id,
                        group_id=draft.group_id,
                        seq=first_seq + offset,
                        sender_id=draft.sender_id,
                        body=draft.body,
                        created_at=draft.created_at,
                        file_ids=draft.file_ids,
                        client_id=draft.client_id,
                        change=first_change + offset,
                        created_change=first_change + offset,
                        files=attachments.summaries(draft, owned),
                        reply_to=None
                        if draft.reply_to_id is None
                        else quotable[draft.reply_to_id][1],
                    )
                    results[index] = StoredMessage(message, is_new=True)
                    attached.extend(attachments.rows_of(message))
                    rows.append(
                        (
                            message.id,
                            group_id,
                            message.seq,
                            message.sender_id,
                            message.body,
                            to_text(message.created_at),
                            message.client_id,
                            message.change,
                            message.created_change,
                            draft.reply_to_id,
                        )
                    )
            if rows:
                await conn.executemany(
                    "INSERT INTO messages (id, group_id, seq, sender_id, body, created_at, "
                    "client_id, change_seq, created_change_seq, reply_to_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                # Searchable from the same commit on: (id, body) of each row.
                await message_index.add(conn, [(row[0], row[4]) for row in rows])
                await attachments.attach(conn, attached)
        for index, first in repeats:
            earlier = results[first]
            # If the first was refused (its group deleted meanwhile), so is this.
            results[index] = (
                StoredMessage(earlier.message, is_new=False)
                if isinstance(earlier, StoredMessage)
                else earlier
            )
        return results


async def _next_change(conn: aiosqlite.Connection, group_id: str) -> int:
    row = await fetch_one(
        conn,
        "UPDATE groups SET last_change = last_change + 1 WHERE id = ? RETURNING last_change",
        (group_id,),
    )
    if row is None:
        raise NotFound("no such group", code="group_not_found")
    return int(row[0])


def _group_of(item: tuple[int, NewMessage]) -> str:
    return item[1].group_id


async def _take_numbers(
    conn: aiosqlite.Connection, counts: dict[str, int]
) -> dict[str, tuple[int, int]]:
    """Reserves ``counts[group]`` consecutive seqs and change numbers in each
    group; returns each group's first (seq, change). One statement for the
    whole batch: a batch spread over many groups would otherwise pay one
    round trip to the database thread per group. Deleted groups are absent."""
    reserved: dict[str, tuple[int, int]] = {}
    items = sorted(counts.items())
    for start in range(0, len(items), 10_000):  # 2 parameters per group
        chunk = items[start : start + 10_000]
        values = ", ".join("(?, ?)" for _ in chunk)
        rows = await fetch_all(
            conn,
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


def _client_key(draft: NewMessage) -> tuple[str, str, str] | None:
    if draft.client_id is None:
        return None
    return (draft.group_id, draft.sender_id, draft.client_id)


async def _stored_by_client_id(
    conn: aiosqlite.Connection, drafts: list[NewMessage]
) -> dict[tuple[str, str, str], Message]:
    """The stored messages that drafts of the batch repeat, by their key."""
    keys = sorted({key for draft in drafts if (key := _client_key(draft)) is not None})
    found: dict[tuple[str, str, str], Message] = {}
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


async def _quotable(
    conn: aiosqlite.Connection, drafts: list[NewMessage]
) -> dict[str, tuple[str, Quote]]:
    """The messages the drafts answer that are not deleted: id -> (group
    id, quote). One query for the batch, none when no draft is a reply."""
    wanted = sorted({draft.reply_to_id for draft in drafts if draft.reply_to_id is not None})
    found: dict[str, tuple[str, Quote]] = {}
    for start in range(0, len(wanted), 10_000):
        chunk = wanted[start : start + 10_000]
        rows = await fetch_all(
            conn,
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
        # A join: SQLite plans "(…) IN (VALUES …)" as a scan of a whole index.
        rows = await fetch_all(
            conn,
            f"WITH wanted (group_id, user_id) AS (VALUES {values}) "
            "SELECT m.group_id, m.user_id FROM wanted JOIN members AS m "
            "ON m.group_id = wanted.group_id AND m.user_id = wanted.user_id",
            [value for pair in chunk for value in pair],
        )
        found.update((row[0], row[1]) for row in rows)
    return found
