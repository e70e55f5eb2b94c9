"""The personal file store in SQLite: metadata in ``files``, the search
index kept in step in the same transaction (see file_index.py).

Every method takes the owner: a file id of someone else's is, here, a file
that does not exist. The one exception is ``get_readable``, which also lets
the members of a group read the files its messages carry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START, SearchHit, StoredFile
from gortc.entities.query_syntax import Query
from gortc.entities.timestamps import from_text, to_text
from gortc.repositories import file_index
from gortc.repositories.database import fetch_all, fetch_one
from gortc.repositories.fts_match import match_expression, order_score

_COLUMNS = (
    "doc_id, id, owner_id, name, size, content_type, sha256, searchable, "
    "not_searchable_reason, index_truncated, created_at, updated_at"
)


def _file(row: sqlite3.Row) -> StoredFile:
    return StoredFile(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        size=row["size"],
        content_type=row["content_type"],
        sha256=row["sha256"],
        searchable=bool(row["searchable"]),
        not_searchable_reason=row["not_searchable_reason"],
        index_truncated=bool(row["index_truncated"]),
        created_at=from_text(row["created_at"]),
        updated_at=from_text(row["updated_at"]),
    )


class SqliteFileRepository:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        shard_limits: file_index.ShardLimits = file_index.DEFAULT_LIMITS,
    ) -> None:
        self._conn = conn
        # Tests pass small limits to fill and split search shards quickly.
        self._shard_limits = shard_limits

    async def add(self, file: StoredFile, text: str | None) -> None:
        await self.add_many([(file, text)])

    async def add_many(self, files: Sequence[tuple[StoredFile, str | None]]) -> None:
        searchable: dict[str, list[tuple[int, str, str]]] = {}
        for file, text in files:
            row = await fetch_one(
                self._conn,
                "INSERT INTO files (id, owner_id, name, size, content_type, sha256, searchable, "
                "not_searchable_reason, index_truncated, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING doc_id",
                (
                    file.id,
                    file.owner_id,
                    file.name,
                    file.size,
                    file.content_type,
                    file.sha256,
                    file.searchable,
                    file.not_searchable_reason,
                    file.index_truncated,
                    to_text(file.created_at),
                    to_text(file.updated_at),
                ),
            )
            assert row is not None
            if file.searchable:
                searchable.setdefault(file.owner_id, []).append(
                    (row["doc_id"], file.name, text or "")
                )
        for owner_id, documents in searchable.items():
            await file_index.add_many(self._conn, owner_id, documents, limits=self._shard_limits)

    async def get(self, owner_id: str, file_id: str) -> StoredFile | None:
        row = await self._row(owner_id, file_id)
        return _file(row) if row else None

    async def get_readable(self, user_id: str, file_id: str) -> StoredFile | None:
        # One statement: the owner, or a member of a group one of whose
        # messages carries the file (message_files_by_file, then the
        # members primary key). Deleting the message removes its rows.
        row = await fetch_one(
            self._conn,
            f"SELECT {_COLUMNS} FROM files WHERE id = ?1 AND (owner_id = ?2 OR EXISTS ("
            "SELECT 1 FROM message_files AS a JOIN members AS m "
            "ON m.group_id = a.group_id AND m.user_id = ?2 WHERE a.file_id = ?1))",
            (file_id, user_id),
        )
        return _file(row) if row else None

    async def rename(
        self, owner_id: str, file_id: str, name: str, updated_at: datetime
    ) -> StoredFile | None:
        row = await fetch_one(
            self._conn,
            f"UPDATE files SET name = ?, updated_at = ? WHERE owner_id = ? AND id = ? "
            f"RETURNING {_COLUMNS}",
            (name, to_text(updated_at), owner_id, file_id),
        )
        if row is None:
            return None
        await file_index.rename(self._conn, owner_id, row["doc_id"], name)
        return _file(row)

    async def delete(self, owner_id: str, file_id: str) -> StoredFile | None:
        row = await self._row(owner_id, file_id)
        if row is None:
            return None
        await file_index.remove(self._conn, owner_id, row["doc_id"])
        await self._conn.execute("DELETE FROM files WHERE doc_id = ?", (row["doc_id"],))
        return _file(row)

    async def usage(self, owner_id: str) -> tuple[int, int]:
        row = await fetch_one(
            self._conn,
            "SELECT coalesce(sum(size), 0), count(*) FROM files WHERE owner_id = ?",
            (owner_id,),
        )
        assert row is not None
        return int(row[0]), int(row[1])

    async def search(
        self, owner_id: str, query: Query, *, limit: int, offset: int
    ) -> list[SearchHit]:
        hits = await file_index.search(
            self._conn,
            owner_id,
            match_expression(query),
            marks=(HIGHLIGHT_START, HIGHLIGHT_END),
            limit=limit,
            offset=offset,
        )
        if not hits:
            return []
        doc_ids = [hit["doc_id"] for hit in hits]
        rows = await fetch_all(
            self._conn,
            f"SELECT {_COLUMNS} FROM files WHERE owner_id = ? "
            f"AND doc_id IN ({', '.join('?' * len(doc_ids))})",
            (owner_id, *doc_ids),
        )
        files = {row["doc_id"]: _file(row) for row in rows}
        return [
            SearchHit(
                file=files[hit["doc_id"]],
                score=order_score(offset + position),
                name_highlight=hit["name_marked"],
                snippet=hit["snippet"],
            )
            for position, hit in enumerate(hits)
            if hit["doc_id"] in files
        ]

    async def _row(self, owner_id: str, file_id: str) -> sqlite3.Row | None:
        return await fetch_one(
            self._conn,
            f"SELECT {_COLUMNS} FROM files WHERE owner_id = ? AND id = ?",
            (owner_id, file_id),
        )

    # Last: below it, "list" in an annotation would mean this method.
    async def list(
        self, owner_id: str, *, limit: int, before: str | None = None
    ) -> list[StoredFile]:
        if before is None:
            rows = await fetch_all(
                self._conn,
                f"SELECT {_COLUMNS} FROM files WHERE owner_id = ? ORDER BY id DESC LIMIT ?",
                (owner_id, limit),
            )
        else:
            rows = await fetch_all(
                self._conn,
                f"SELECT {_COLUMNS} FROM files WHERE owner_id = ? AND id < ? "
                "ORDER BY id DESC LIMIT ?",
                (owner_id, before, limit),
            )
        return [_file(row) for row in rows]
