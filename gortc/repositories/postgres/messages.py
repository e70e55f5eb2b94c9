"""Messages on PostgreSQL, the statements of the group-commit store
(repositories/group_commit.py), and message search (tsvector + GIN).

Several instances write to one database: a batch locks the rows of its
groups before it reads anything (``lock_groups``, in id order so that two
batches never wait on each other in a circle), and an edit bumps its
group's change counter with an ``UPDATE``, which takes the same lock. So
seqs and change numbers stay gap-free and unique, and a resent
``client_id`` is found, whichever instance stored it first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

import asyncpg

from gortc.entities.errors import NotFound
from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START
from gortc.entities.groups import Message, Quote, quoted_ids, with_quotes
from gortc.entities.message_search import MessageHit, SearchOrder
from gortc.entities.query_syntax import Query
from gortc.repositories.fts_match import order_score
from gortc.repositories.group_commit import (
    AttachmentRow,
    ClientKey,
    GroupCommitMessageStore,
    MessageBatch,
    OwnedFiles,
)
from gortc.repositories.postgres import attachments, reactions
from gortc.repositories.postgres.database import Connection, PostgresDatabase
from gortc.repositories.postgres.search_text import passage, words_of
from gortc.repositories.postgres.text_query import CONFIG, TsQuery

_COLUMNS = (
    "id, group_id, seq, sender_id, body, created_at, edited_at, deleted_at, "
    "client_id, change_seq, created_change_seq, reply_to_id"
)
_M_COLUMNS = ", ".join(f"m.{column.strip()}" for column in _COLUMNS.split(","))

_REPLACEMENT = "\ufffd"


def _message(row: asyncpg.Record) -> Message:
    return Message(
        id=row["id"],
        group_id=row["group_id"],
        seq=row["seq"],
        sender_id=row["sender_id"],
        body=row["body"],
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        deleted_at=row["deleted_at"],
        client_id=row["client_id"],
        change=row["change_seq"],
        created_change=row["created_change_seq"],
    )


async def _complete(conn: Connection, rows: Sequence[asyncpg.Record]) -> list[Message]:
    """The messages of ``rows`` as clients see them: with their files,
    reactions and the quote of what they answer (one query each)."""
    messages = await attachments.with_files(conn, [_message(row) for row in rows])
    messages = await reactions.with_reactions(conn, messages)
    return await _with_quotes(conn, messages, [row["reply_to_id"] for row in rows])


async def _with_quotes(
    conn: Connection, messages: list[Message], reply_to_ids: list[str | None]
) -> list[Message]:
    wanted = quoted_ids(messages, reply_to_ids)
    if not wanted:
        return messages
    rows = await conn.fetch(
        "SELECT id, sender_id, body, deleted_at FROM messages WHERE id = ANY($1::text[])", wanted
    )
    quotes = {
        row["id"]: Quote.of(row["id"], row["sender_id"], row["body"], row["deleted_at"] is not None)
        for row in rows
    }
    return with_quotes(messages, reply_to_ids, quotes)


class PostgresMessageRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def get(self, message_id: str) -> Message | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM messages WHERE id = $1", message_id
        )
        if row is None:
            return None
        [message] = await _complete(self._conn, [row])
        return message

    async def before(self, group_id: str, *, before_seq: int | None, limit: int) -> list[Message]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = $1 AND seq < $2 "
            "AND deleted_at IS NULL ORDER BY seq DESC LIMIT $3",
            group_id,
            before_seq if before_seq is not None else 2**62,
            limit,
        )
        return await _complete(self._conn, rows)

    async def newer(self, group_id: str, *, after_seq: int, limit: int) -> list[Message]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = $1 AND seq > $2 "
            "AND deleted_at IS NULL ORDER BY seq LIMIT $3",
            group_id,
            after_seq,
            limit,
        )
        return await _complete(self._conn, rows)

    async def after(self, group_id: str, *, after_seq: int, limit: int) -> list[Message]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = $1 AND seq > $2 "
            "ORDER BY seq LIMIT $3",
            group_id,
            after_seq,
            limit,
        )
        return await _complete(self._conn, rows)

    async def changed_after(self, group_id: str, *, after_change: int, limit: int) -> list[Message]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = $1 AND change_seq > $2 "
            "ORDER BY change_seq LIMIT $3",
            group_id,
            after_change,
            limit,
        )
        return await _complete(self._conn, rows)

    async def touch(self, message: Message) -> Message:
        changed = replace(message, change=await _next_change(self._conn, message.group_id))
        await self._conn.execute(
            "UPDATE messages SET change_seq = $1 WHERE id = $2", changed.change, changed.id
        )
        return changed

    async def update(self, message: Message) -> Message:
        # The number is taken in the caller's transaction, under the group
        # row's lock (see the module's docstring); the search column follows
        # the body by itself.
        changed = replace(message, change=await _next_change(self._conn, message.group_id))
        await self._conn.execute(
            "UPDATE messages SET body = $1, edited_at = $2, deleted_at = $3, change_seq = $4, "
            f"body_search = to_tsvector({CONFIG}, $6) WHERE id = $5",
            changed.body,
            changed.edited_at,
            changed.deleted_at,
            changed.change,
            changed.id,
            words_of(changed.body),
        )
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
        """Matches among the undeleted messages of the groups ``user_id`` is
        in (of ``group_id`` only, if given), the membership joined in the
        same statement. Newest first: below the position ``below``. By
        relevance (ts_rank_cd): after ``offset`` hits."""
        params: list[object] = [user_id]
        tsquery = TsQuery(first=len(params) + 1)
        expression = tsquery.expression(query, columns=False)
        params.extend(tsquery.params)
        conditions = ["m.body_search @@ q.query", "m.deleted_at IS NULL"]
        if group_id is not None:
            params.append(group_id)
            conditions.append(f"m.group_id = ${len(params)}")
        if order is SearchOrder.NEWEST:
            if below is not None:
                params.append(below)
                conditions.append(f"m.position < ${len(params)}")
            params.append(limit)
            ordering = f"m.position DESC LIMIT ${len(params)}"
        else:
            params += [limit, offset]
            ordering = f"rank DESC, m.position DESC LIMIT ${len(params) - 1} OFFSET ${len(params)}"
        rows = await self._conn.fetch(
            f"WITH q AS (SELECT {expression} AS query) "
            f"SELECT {_M_COLUMNS}, m.position, ts_rank_cd(m.body_search, q.query) AS rank "
            "FROM q, messages AS m "
            "JOIN members AS mb ON mb.group_id = m.group_id AND mb.user_id = $1 "
            f"WHERE {' AND '.join(conditions)} ORDER BY {ordering}",
            *params,
        )
        messages = await _complete(self._conn, rows)
        wanted = tsquery.wanted
        return [
            MessageHit(
                message=message,
                snippet=passage(_clean(message.body), wanted, HIGHLIGHT_START, HIGHLIGHT_END),
                score=order_score(offset + index),
                position=int(row["position"]),
            )
            for index, (row, message) in enumerate(zip(rows, messages, strict=True))
        ]


def _clean(text: str) -> str:
    # The public markers a message holds itself become U+FFFD, so that every
    # marker in a hit is a real one.
    return text.replace(HIGHLIGHT_START, _REPLACEMENT).replace(HIGHLIGHT_END, _REPLACEMENT)


async def _next_change(conn: Connection, group_id: str) -> int:
    number = await conn.fetchval(
        "UPDATE groups SET last_change = last_change + 1 WHERE id = $1 RETURNING last_change",
        group_id,
    )
    if number is None:
        raise NotFound("no such group", code="group_not_found")
    return int(number)


class PostgresMessageBatch:
    """The statements of one group-commit batch, in one transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def lock_groups(self, group_ids: Sequence[str]) -> None:
        await self._conn.execute(
            "SELECT 1 FROM groups WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
            sorted(group_ids),
        )

    async def memberships(self, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        rows = await self._conn.fetch(
            "SELECT m.group_id, m.user_id FROM unnest($1::text[], $2::text[]) "
            "AS wanted (group_id, user_id) "
            "JOIN members AS m ON m.group_id = wanted.group_id AND m.user_id = wanted.user_id",
            [group_id for group_id, _ in pairs],
            [user_id for _, user_id in pairs],
        )
        return {(row[0], row[1]) for row in rows}

    async def stored_by_client_id(self, keys: Sequence[ClientKey]) -> dict[ClientKey, Message]:
        rows = await self._conn.fetch(
            f"SELECT {_M_COLUMNS} FROM unnest($1::text[], $2::text[], $3::text[]) "
            "AS wanted (group_id, sender_id, client_id) JOIN messages AS m "
            "ON m.group_id = wanted.group_id AND m.sender_id = wanted.sender_id "
            "AND m.client_id = wanted.client_id",
            [key[0] for key in keys],
            [key[1] for key in keys],
            [key[2] for key in keys],
        )
        messages = await _complete(self._conn, rows)
        return {
            (row["group_id"], row["sender_id"], row["client_id"]): message
            for row, message in zip(rows, messages, strict=True)
        }

    async def files(self, file_ids: Sequence[str]) -> OwnedFiles:
        return await attachments.files_by_id(self._conn, file_ids)

    async def quotable(self, message_ids: Sequence[str]) -> dict[str, tuple[str, Quote]]:
        rows = await self._conn.fetch(
            "SELECT id, group_id, sender_id, body FROM messages "
            "WHERE id = ANY($1::text[]) AND deleted_at IS NULL",
            list(message_ids),
        )
        return {
            row["id"]: (row["group_id"], Quote.of(row["id"], row["sender_id"], row["body"], False))
            for row in rows
        }

    async def take_numbers(self, counts: dict[str, int]) -> dict[str, tuple[int, int]]:
        items = sorted(counts.items())
        rows = await self._conn.fetch(
            "UPDATE groups SET last_seq = last_seq + wanted.n, "
            "last_change = last_change + wanted.n "
            "FROM unnest($1::text[], $2::bigint[]) AS wanted (id, n) "
            "WHERE groups.id = wanted.id "
            "RETURNING groups.id, groups.last_seq, groups.last_change",
            [group_id for group_id, _ in items],
            [count for _, count in items],
        )
        return {
            row[0]: (int(row[1]) - counts[row[0]] + 1, int(row[2]) - counts[row[0]] + 1)
            for row in rows
        }

    async def insert(
        self, messages: Sequence[tuple[Message, str | None]], attached: Sequence[AttachmentRow]
    ) -> None:
        columns = list(
            zip(
                *(
                    (
                        message.id,
                        message.group_id,
                        message.seq,
                        message.sender_id,
                        message.body,
                        message.created_at,
                        message.client_id,
                        message.change,
                        message.created_change,
                        reply_to_id,
                    )
                    for message, reply_to_id in messages
                ),
                strict=True,
            )
        )
        # One statement for the batch, whatever its size; searchable from
        # the same commit on.
        await self._conn.execute(
            "INSERT INTO messages (id, group_id, seq, sender_id, body, created_at, client_id, "
            "change_seq, created_change_seq, reply_to_id, body_search) "
            "SELECT id, group_id, seq, sender_id, body, created_at, client_id, change_seq, "
            f"created_change_seq, reply_to_id, to_tsvector({CONFIG}, words) "
            "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], "
            "$6::timestamptz[], $7::text[], $8::bigint[], $9::bigint[], $10::text[], $11::text[]) "
            "AS new (id, group_id, seq, sender_id, body, created_at, client_id, change_seq, "
            "created_change_seq, reply_to_id, words)",
            *(list(column) for column in columns),
            [words_of(message.body) for message, _ in messages],
        )
        await attachments.attach(self._conn, attached)


def postgres_message_store(
    db: PostgresDatabase, *, max_batch: int = 1000
) -> GroupCommitMessageStore:
    """The group-commit store on a pooled connection per batch."""

    @asynccontextmanager
    async def open_batch() -> AsyncIterator[MessageBatch]:
        async with db.write() as conn:
            yield PostgresMessageBatch(conn)

    return GroupCommitMessageStore(open_batch, max_batch=max_batch)
