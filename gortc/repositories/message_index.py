"""The message search index: the FTS5 table ``messages_fts`` over message bodies.

- *External content*: the index reads ``messages.body`` (by ``rowid``) for
  ``snippet()``, so no body is stored twice. FTS5 cannot see changes to
  ``messages`` by itself, so every write of a body tells it, in the same
  transaction: a new message is added (``add``), an edited or deleted one
  has its old entry removed before the row changes (``forget``, the FTS5
  ``delete`` command, which needs the values that were indexed: the row's
  current ones) and its new one added after. Every row of ``messages`` has
  exactly one entry, holding its current body; a deleted message's body is
  empty, so its entry has no words and never matches. This is also what the
  FTS5 ``rebuild`` command makes, so ``rebuild`` and ``integrity-check``
  can be used on this table.
- The key is ``messages.rowid`` (the table's primary key is its TEXT id).
  ``VACUUM`` may renumber the rowids of such a table: after one, run
  ``gortc reindex``.
- Tokenizer ``unicode61 remove_diacritics 2``: words of letters and digits,
  case and accents folded (``café`` finds ``Cafe``).
- A search joins ``members`` on (the message's group, the caller): the
  caller's memberships are applied by SQLite, in the same statement, never
  filtered afterwards.

Why a join and not the group as a token inside the MATCH (which is what
MEASURED.md found fastest for files with one owner): a person is in many
groups, and ``bench/message_search.py`` found the join faster for the
default order, newest first (a common word at 300,000 messages: 0.3 ms p50
against 1.8 ms), while relevance over a common word scores every match
either way (tens of ms; see docs/architecture.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import aiosqlite

from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START
from gortc.entities.message_search import SearchOrder
from gortc.entities.query_syntax import Query
from gortc.repositories.database import fetch_all, fetch_one
from gortc.repositories.fts_match import match_expression

Progress = Callable[[int, int], None]  # (done, total)

# Message bodies cannot hold control characters (check_message_body), so
# these can only be snippet()'s marks; they become the public markers after
# any public marker already in the text has been replaced.
_MARK_START = "\x02"
_MARK_END = "\x03"
_SNIPPET_TOKENS = 20
_ELLIPSIS = "…"
_REPLACEMENT = "\ufffd"


async def add(conn: aiosqlite.Connection, messages: Sequence[tuple[str, str]]) -> None:
    """Indexes messages just written, given as (id, body) with the body as
    stored: one executemany for the whole batch.

    The body is passed rather than read back with ``INSERT … SELECT … WHERE
    id = ?``, which costs three times as much per message in an executemany
    (measured: ~4 µs against ~17 µs of index work per message in batches of
    200, 12-word bodies)."""
    await conn.executemany(
        "INSERT INTO messages_fts (rowid, body) "
        "VALUES ((SELECT rowid FROM messages WHERE id = ?), ?)",
        messages,
    )


async def forget(conn: aiosqlite.Connection, message_id: str) -> None:
    """Removes a message's entry; call it before its row changes."""
    await conn.execute(
        "INSERT INTO messages_fts (messages_fts, rowid, body) "
        "SELECT 'delete', rowid, body FROM messages WHERE id = ?",
        (message_id,),
    )


async def forget_group(conn: aiosqlite.Connection, group_id: str) -> None:
    """Removes the entries of a group's messages; call it before the group
    is deleted (its messages go with it, by ON DELETE CASCADE)."""
    await conn.execute(
        "INSERT INTO messages_fts (messages_fts, rowid, body) "
        "SELECT 'delete', rowid, body FROM messages WHERE group_id = ?",
        (group_id,),
    )


async def rebuild(conn: aiosqlite.Connection, progress: Progress, *, batch: int = 5000) -> int:
    """Empties the index and indexes every message again, ``batch`` rows at a
    time (reporting after each), inside the caller's transaction; then merges
    the index into one segment. Returns the number of messages."""
    row = await fetch_one(conn, "SELECT count(*) FROM messages", ())
    total = int(row[0]) if row else 0
    await conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('delete-all')")
    done = 0
    last = -1
    progress(done, total)
    while True:
        bounds = await fetch_one(
            conn,
            "SELECT count(*), max(rowid) FROM "
            "(SELECT rowid FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?)",
            (last, batch),
        )
        if bounds is None or not bounds[0]:
            break
        await conn.execute(
            "INSERT INTO messages_fts (rowid, body) "
            "SELECT rowid, body FROM messages WHERE rowid > ? AND rowid <= ?",
            (last, bounds[1]),
        )
        done += int(bounds[0])
        last = int(bounds[1])
        progress(done, max(total, done))
    await conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    return done


async def search(
    conn: aiosqlite.Connection,
    columns: str,
    *,
    user_id: str,
    query: Query,
    group_id: str | None,
    order: SearchOrder,
    below: int | None,
    offset: int,
    limit: int,
) -> list[sqlite3.Row]:
    """Matches among the messages of the groups ``user_id`` is in (of
    ``group_id`` only, if given), undeleted: the ``columns`` of ``messages``
    (prefixed ``m.``), then ``position`` (the rowid), ``rank`` (bm25, lower
    is better) and ``snippet`` (see ``public_snippet``).

    Newest first: below the rowid ``below``. By relevance: after ``offset``
    hits."""
    conditions = ["messages_fts MATCH ?", "m.deleted_at IS NULL"]
    params: list[object] = [_MARK_START, _MARK_END, _ELLIPSIS, _SNIPPET_TOKENS, user_id]
    # One column: the parser's name:/body: filters are dropped.
    params.append(match_expression(query, columns=False))
    if group_id is not None:
        conditions.append("m.group_id = ?")
        params.append(group_id)
    if order is SearchOrder.NEWEST:
        if below is not None:
            conditions.append("messages_fts.rowid < ?")
            params.append(below)
        # Read backwards through the index: the first page costs a page.
        ordering = "messages_fts.rowid DESC LIMIT ?"
        params.append(limit)
    else:
        ordering = "messages_fts.rank, messages_fts.rowid DESC LIMIT ? OFFSET ?"
        params += [limit, offset]
    return await fetch_all(
        conn,
        f"SELECT {columns}, messages_fts.rowid AS position, messages_fts.rank AS rank, "
        "snippet(messages_fts, 0, ?, ?, ?, ?) AS snippet "
        "FROM messages_fts "
        "JOIN messages AS m ON m.rowid = messages_fts.rowid "
        "JOIN members AS mb ON mb.group_id = m.group_id AND mb.user_id = ? "
        f"WHERE {' AND '.join(conditions)} ORDER BY {ordering}",
        params,
    )


def public_snippet(raw: str) -> str:
    """snippet()'s text with the public markers: any already in the message
    become U+FFFD first, so that every marker in a hit is a real one."""
    cleaned = raw.replace(HIGHLIGHT_START, _REPLACEMENT).replace(HIGHLIGHT_END, _REPLACEMENT)
    return cleaned.replace(_MARK_START, HIGHLIGHT_START).replace(_MARK_END, HIGHLIGHT_END)
