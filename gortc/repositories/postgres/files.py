"""The personal file store on PostgreSQL: metadata in ``files``, the
searchable name and text in ``file_texts`` (a weighted tsvector column under
one GIN index led by the owner), written in the same transaction.

Every method takes the owner, as on SQLite: another owner's file is a file
that does not exist; ``get_readable`` also lets the members of a group read
the files its messages carry.

PostgreSQL bounds a tsvector to 1 MB (and word positions to 16,383, past
which phrases are matched loosely). A text whose vector would be larger is
indexed from its start, halved until it fits, and the file is marked
``index_truncated``, as a text over ``files.index_max_bytes`` is. A hit's
passage is chosen among the first ``PASSAGE_SOURCE_CHARS`` characters of
its text (a page of hits must not carry megabytes); a text matching only
further on shows its start.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START, SearchHit, StoredFile
from gortc.entities.query_syntax import Query
from gortc.repositories.fts_match import order_score
from gortc.repositories.postgres.database import Connection
from gortc.repositories.postgres.search_text import highlight, passage, words_of
from gortc.repositories.postgres.text_query import CONFIG, TsQuery

_COLUMNS = (
    "doc_id, id, owner_id, name, size, content_type, sha256, searchable, "
    "not_searchable_reason, index_truncated, created_at, updated_at"
)
_F_COLUMNS = ", ".join(f"f.{column.strip()}" for column in _COLUMNS.split(","))
PASSAGE_SOURCE_CHARS = 262_144
_REPLACEMENT = "\ufffd"
_HALVINGS = 6  # 1 MiB of text down to 16 KiB at most


def _file(row: asyncpg.Record) -> StoredFile:
    return StoredFile(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        size=row["size"],
        content_type=row["content_type"],
        sha256=row["sha256"],
        searchable=row["searchable"],
        not_searchable_reason=row["not_searchable_reason"],
        index_truncated=row["index_truncated"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PostgresFileRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, file: StoredFile, text: str | None) -> None:
        await self.add_many([(file, text)])

    async def add_many(self, files: Sequence[tuple[StoredFile, str | None]]) -> None:
        for file, text in files:
            doc_id = await self._conn.fetchval(
                "INSERT INTO files (id, owner_id, name, size, content_type, sha256, searchable, "
                "not_searchable_reason, index_truncated, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING doc_id",
                file.id,
                file.owner_id,
                file.name,
                file.size,
                file.content_type,
                file.sha256,
                file.searchable,
                file.not_searchable_reason,
                file.index_truncated,
                file.created_at,
                file.updated_at,
            )
            if file.searchable:
                await self._index(doc_id, file.owner_id, file.name, text or "")

    async def _index(self, doc_id: int, owner_id: str, name: str, text: str) -> None:
        for _ in range(_HALVINGS):
            try:
                # A savepoint: a refused vector must not end the transaction.
                async with self._conn.transaction():
                    await self._conn.execute(
                        "INSERT INTO file_texts (doc_id, owner_id, name, body, search) "
                        f"VALUES ($1, $2, $3, $4, setweight(to_tsvector({CONFIG}, $5), 'A') "
                        f"|| setweight(to_tsvector({CONFIG}, $6), 'B'))",
                        doc_id,
                        owner_id,
                        name,
                        text,
                        words_of(name),
                        words_of(text),
                    )
                return
            except asyncpg.ProgramLimitExceededError:
                text = text[: len(text) // 2]
                await self._conn.execute(
                    "UPDATE files SET index_truncated = true WHERE doc_id = $1", doc_id
                )
        raise RuntimeError(f"the text of file {doc_id} cannot be indexed")

    async def get(self, owner_id: str, file_id: str) -> StoredFile | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM files WHERE owner_id = $1 AND id = $2", owner_id, file_id
        )
        return _file(row) if row else None

    async def get_readable(self, user_id: str, file_id: str) -> StoredFile | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM files WHERE id = $1 AND (owner_id = $2 OR EXISTS ("
            "SELECT 1 FROM message_files AS a JOIN members AS m "
            "ON m.group_id = a.group_id AND m.user_id = $2 WHERE a.file_id = $1))",
            file_id,
            user_id,
        )
        return _file(row) if row else None

    async def rename(
        self, owner_id: str, file_id: str, name: str, updated_at: datetime
    ) -> StoredFile | None:
        row = await self._conn.fetchrow(
            "UPDATE files SET name = $1, updated_at = $2 WHERE owner_id = $3 AND id = $4 "
            f"RETURNING {_COLUMNS}",
            name,
            updated_at,
            owner_id,
            file_id,
        )
        if row is None:
            return None
        # The text's words (weight B) stay; the name's are replaced.
        await self._conn.execute(
            f"UPDATE file_texts SET name = $1, search = setweight(to_tsvector({CONFIG}, $2), 'A') "
            "|| ts_filter(search, '{b}') WHERE doc_id = $3",
            name,
            words_of(name),
            row["doc_id"],
        )
        return _file(row)

    async def delete(self, owner_id: str, file_id: str) -> StoredFile | None:
        # file_texts goes by ON DELETE CASCADE.
        row = await self._conn.fetchrow(
            f"DELETE FROM files WHERE owner_id = $1 AND id = $2 RETURNING {_COLUMNS}",
            owner_id,
            file_id,
        )
        return _file(row) if row else None

    async def usage(self, owner_id: str) -> tuple[int, int]:
        row = await self._conn.fetchrow(
            "SELECT coalesce(sum(size), 0), count(*) FROM files WHERE owner_id = $1", owner_id
        )
        assert row is not None
        return int(row[0]), int(row[1])

    async def search(
        self, owner_id: str, query: Query, *, limit: int, offset: int
    ) -> list[SearchHit]:
        tsquery = TsQuery(first=5)
        expression = tsquery.expression(query)
        rows = await self._conn.fetch(
            f"WITH q AS (SELECT {expression} AS query), "
            # The page is chosen first and only its texts are read: reading
            # every match's text before sorting cost three times as much at
            # 10,000 matches.
            "page AS (SELECT t.doc_id, "
            # A match in the name weighs ten of one in the text, as bm25(10, 1)
            # does on SQLite (ts_rank's weights are {D, C, B, A}).
            "ts_rank('{0.1, 0.1, 0.1, 1.0}', t.search, q.query) AS rank "
            "FROM q, file_texts AS t WHERE t.owner_id = $1 AND t.search @@ q.query "
            "ORDER BY rank DESC, t.doc_id DESC LIMIT $2 OFFSET $3) "
            f"SELECT {_F_COLUMNS}, t.name AS indexed_name, left(t.body, $4) AS passage_source "
            "FROM page JOIN file_texts AS t ON t.doc_id = page.doc_id "
            "JOIN files AS f ON f.doc_id = page.doc_id "
            "ORDER BY page.rank DESC, page.doc_id DESC",
            owner_id,
            limit,
            offset,
            PASSAGE_SOURCE_CHARS,
            *tsquery.params,
        )
        wanted = tsquery.wanted
        return [
            SearchHit(
                file=_file(row),
                score=order_score(offset + position),
                name_highlight=highlight(
                    _clean(row["indexed_name"]), wanted, HIGHLIGHT_START, HIGHLIGHT_END
                ),
                snippet=passage(
                    _clean(row["passage_source"]), wanted, HIGHLIGHT_START, HIGHLIGHT_END
                ),
            )
            for position, row in enumerate(rows)
        ]

    # Last: below it, "list" in an annotation would mean this method.
    async def list(
        self, owner_id: str, *, limit: int, before: str | None = None
    ) -> list[StoredFile]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM files WHERE owner_id = $1 AND ($2::text IS NULL OR id < $2) "
            "ORDER BY id DESC LIMIT $3",
            owner_id,
            before,
            limit,
        )
        return [_file(row) for row in rows]


def _clean(text: str) -> str:
    # The public markers a text holds itself become U+FFFD, so that every
    # marker in a hit is a real one.
    return text.replace(HIGHLIGHT_START, _REPLACEMENT).replace(HIGHLIGHT_END, _REPLACEMENT)
