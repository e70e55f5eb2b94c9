"""Files attached to messages (``message_files``) on PostgreSQL; see
repositories/attachments.py for what the rows mean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from gortc.entities.files import FileSummary
from gortc.entities.groups import Message
from gortc.repositories.group_commit import AttachmentRow, OwnedFiles
from gortc.repositories.postgres.database import Connection


class PostgresAttachmentRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def detach(self, message_id: str) -> None:
        await self._conn.execute("DELETE FROM message_files WHERE message_id = $1", message_id)


async def files_by_id(conn: Connection, file_ids: Sequence[str]) -> OwnedFiles:
    rows = await conn.fetch(
        "SELECT id, owner_id, name, size, content_type FROM files WHERE id = ANY($1::text[])",
        list(file_ids),
    )
    return {
        (row["owner_id"], row["id"]): FileSummary(
            row["id"], row["name"], row["size"], row["content_type"]
        )
        for row in rows
    }


async def attach(conn: Connection, rows: Sequence[AttachmentRow]) -> None:
    """The message_files rows of a whole batch, in one statement."""
    if rows:
        await conn.execute(
            "INSERT INTO message_files (message_id, file_id, group_id, position) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[])",
            *(list(column) for column in zip(*rows, strict=True)),
        )


async def with_files(conn: Connection, messages: list[Message]) -> list[Message]:
    """The messages with their ``file_ids`` and ``files``: one query."""
    if not messages:
        return messages
    rows = await conn.fetch(
        "SELECT a.message_id, a.position, a.file_id, f.name, f.size, f.content_type "
        "FROM message_files AS a LEFT JOIN files AS f ON f.id = a.file_id "
        "WHERE a.message_id = ANY($1::text[]) ORDER BY a.message_id, a.position",
        [message.id for message in messages],
    )
    if not rows:
        return messages
    attached: dict[str, list[tuple[str, FileSummary | None]]] = {}
    for row in rows:
        summary = (
            None
            if row["name"] is None
            else FileSummary(row["file_id"], row["name"], row["size"], row["content_type"])
        )
        attached.setdefault(row["message_id"], []).append((row["file_id"], summary))
    return [
        replace(
            message,
            file_ids=tuple(file_id for file_id, _ in attached[message.id]),
            files=tuple(summary for _, summary in attached[message.id] if summary is not None),
        )
        if message.id in attached
        else message
        for message in messages
    ]
