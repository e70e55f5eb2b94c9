"""Files attached to messages: the ``message_files`` table.

A row lets the members of the message's group read the file (the check is
``SqliteFileRepository.get_readable``, one statement). Rows are written by
the group-commit store in the transaction that stores their message (the
helpers below), read back with every message (``with_files``), and removed
when the message is deleted for everyone (``detach``) or, by cascade, with
its group. A file its owner deletes keeps its rows: the message still lists
the id, and ``with_files`` finds no file for it (shown as gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import aiosqlite

from gortc.entities.files import FileSummary
from gortc.entities.groups import Message
from gortc.repositories.database import fetch_all
from gortc.repositories.group_commit import AttachmentRow, OwnedFiles

# SQLite takes at most 32,766 parameters per statement.
_CHUNK = 10_000


class SqliteAttachmentRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def detach(self, message_id: str) -> None:
        await self._conn.execute("DELETE FROM message_files WHERE message_id = ?", (message_id,))


async def files_by_id(conn: aiosqlite.Connection, file_ids: Sequence[str]) -> OwnedFiles:
    """The files of these ids, keyed by (owner, id): a draft may carry only
    those under its own sender. One query for a whole batch."""
    found: OwnedFiles = {}
    for start in range(0, len(file_ids), _CHUNK):
        chunk = file_ids[start : start + _CHUNK]
        rows = await fetch_all(
            conn,
            "SELECT id, owner_id, name, size, content_type FROM files "
            f"WHERE id IN ({', '.join('?' * len(chunk))})",
            chunk,
        )
        for row in rows:
            found[(row["owner_id"], row["id"])] = FileSummary(
                row["id"], row["name"], row["size"], row["content_type"]
            )
    return found


async def attach(conn: aiosqlite.Connection, rows: Sequence[AttachmentRow]) -> None:
    """Stores the message_files rows of a whole batch: one executemany."""
    if rows:
        await conn.executemany(
            "INSERT INTO message_files (message_id, file_id, group_id, position) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )


async def with_files(conn: aiosqlite.Connection, messages: list[Message]) -> list[Message]:
    """The messages with their ``file_ids`` and ``files`` filled in: one
    query (a primary-key search per message) for the whole list."""
    if not messages:
        return messages
    ids = [message.id for message in messages]
    attached: dict[str, list[tuple[int, str, FileSummary | None]]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = await fetch_all(
            conn,
            "SELECT a.message_id, a.position, a.file_id, f.name, f.size, f.content_type "
            "FROM message_files AS a LEFT JOIN files AS f ON f.id = a.file_id "
            f"WHERE a.message_id IN ({', '.join('?' * len(chunk))})",
            chunk,
        )
        for row in rows:
            summary = (
                None
                if row["name"] is None
                else FileSummary(row["file_id"], row["name"], row["size"], row["content_type"])
            )
            attached.setdefault(row["message_id"], []).append(
                (row["position"], row["file_id"], summary)
            )
    if not attached:
        return messages
    return [_filled(message, attached.get(message.id)) for message in messages]


def _filled(message: Message, rows: list[tuple[int, str, FileSummary | None]] | None) -> Message:
    if not rows:
        return message
    rows.sort(key=lambda row: row[0])
    return replace(
        message,
        file_ids=tuple(file_id for _, file_id, _ in rows),
        files=tuple(summary for _, _, summary in rows if summary is not None),
    )
