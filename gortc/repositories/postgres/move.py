"""``gortc move-to-postgres``: an SQLite deployment's rows into an empty
PostgreSQL database, then proof that they all arrived.

Every table of record is copied in the order its foreign keys need, each in
SQLite's rowid order (so PostgreSQL's insertion-ordered columns, a
message's search position and a reaction's place, keep SQLite's order), a
batch per statement, all in one transaction: the target ends with all of it
or nothing. SQLite's text timestamps and 0/1 flags become timestamptz and
boolean; the search columns are computed on the way (search_text.py). The
search shards (FTS5 tables and their bookkeeping) are not copied:
PostgreSQL's search lives in the rows. Afterwards every table is counted on
both sides, and a checksum of what users would notice (ids, names, bodies,
hashes, seqs) is compared; the command fails if any differ.

Blobs are files under the data directory and stay where they are; the
secret too (``auth.secret`` or ``<data_dir>/secret.key``): the instances
that serve from PostgreSQL need both.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gortc.entities.name_search import search_key
from gortc.entities.timestamps import from_text
from gortc.repositories.migrations import SchemaError, latest_version
from gortc.repositories.postgres.database import Connection, PostgresDatabase
from gortc.repositories.postgres.search_text import words_of
from gortc.repositories.postgres.text_query import CONFIG

_BATCH = 2000
# The SQLite schema version this copy was written for.
_SQLITE_VERSION = 10

Convert = Callable[[Any], Any]


def _time(value: Any) -> Any:
    return None if value is None else from_text(value)


def _flag(value: Any) -> Any:
    return None if value is None else bool(value)


@dataclass(frozen=True)
class _Table:
    name: str
    # (column, PostgreSQL type, conversion from SQLite's value)
    columns: tuple[tuple[str, str, Convert | None], ...]
    # Extra target columns: (column, SQL over the unnested source columns).
    computed: tuple[tuple[str, str], ...] = ()
    # What a checksum covers (a user would notice a difference in these).
    checked: tuple[str, ...] = ()


def _cols(spec: str) -> tuple[tuple[str, str, Convert | None], ...]:
    """ "name:type" pairs; timestamptz and boolean columns are converted."""
    found = []
    for item in spec.split():
        column, kind = item.split(":")
        convert = _time if kind == "timestamptz" else _flag if kind == "boolean" else None
        found.append((column, kind, convert))
    return tuple(found)


_TABLES = (
    _Table("blobs", _cols("sha256:text size:bigint refcount:bigint"), (), ("sha256", "size")),
    _Table(
        "users",
        _cols(
            "id:text username:text email:text display_name:text password_hash:text "
            "is_admin:boolean email_verified:boolean disabled_at:timestamptz "
            "created_at:timestamptz updated_at:timestamptz avatar_sha256:text avatar_type:text "
            "search_username:text search_display_name:text"
        ),
        (),
        ("id", "username", "email", "password_hash", "display_name"),
    ),
    _Table(
        "sessions",
        _cols(
            "id:text user_id:text kind:text created_at:timestamptz expires_at:timestamptz "
            "revoked_at:timestamptz user_agent:text ip:text"
        ),
        (),
        ("id", "user_id"),
    ),
    _Table(
        "refresh_tokens",
        _cols(
            "token_hash:text session_id:text access_jti:text access_expires_at:timestamptz "
            "created_at:timestamptz used_at:timestamptz"
        ),
        (),
        ("token_hash", "session_id"),
    ),
    _Table("revoked_tokens", _cols("jti:text expires_at:timestamptz"), (), ("jti",)),
    _Table(
        "one_time_tokens",
        _cols(
            "token_hash:text user_id:text purpose:text email:text created_at:timestamptz "
            "expires_at:timestamptz used_at:timestamptz"
        ),
        (),
        ("token_hash",),
    ),
    _Table(
        "invites",
        _cols(
            "id:text code_hash:text created_by:text note:text created_at:timestamptz "
            "expires_at:timestamptz used_by:text used_at:timestamptz"
        ),
        (),
        ("id", "code_hash"),
    ),
    _Table(
        "groups",
        _cols(
            "id:text name:text kind:text owner_id:text direct_key:text last_seq:bigint "
            "created_at:timestamptz last_change:bigint"
        ),
        (),
        ("id", "name", "last_seq", "last_change"),
    ),
    _Table(
        "members",
        _cols("group_id:text user_id:text role:text joined_at:timestamptz read_seq:bigint"),
        (),
        ("group_id", "user_id", "role", "read_seq"),
    ),
    _Table(
        "invitations",
        _cols("id:text group_id:text user_id:text inviter_id:text created_at:timestamptz"),
        (),
        ("id",),
    ),
    _Table(
        "messages",
        _cols(
            "id:text group_id:text seq:bigint sender_id:text body:text created_at:timestamptz "
            "edited_at:timestamptz deleted_at:timestamptz client_id:text change_seq:bigint "
            "created_change_seq:bigint reply_to_id:text body_words:text"
        ),
        (("body_search", f"to_tsvector({CONFIG}, body_words)"),),
        ("id", "group_id", "seq", "body", "change_seq"),
    ),
    _Table(
        "files",
        _cols(
            "doc_id:bigint id:text owner_id:text name:text size:bigint content_type:text "
            "sha256:text searchable:boolean not_searchable_reason:text index_truncated:boolean "
            "created_at:timestamptz updated_at:timestamptz"
        ),
        (),
        ("id", "owner_id", "name", "size", "sha256"),
    ),
    _Table(
        "file_texts",
        _cols("doc_id:bigint owner_id:text name:text body:text name_words:text body_words:text"),
        (
            (
                "search",
                f"setweight(to_tsvector({CONFIG}, name_words), 'A') "
                f"|| setweight(to_tsvector({CONFIG}, body_words), 'B')",
            ),
        ),
        ("doc_id", "name", "body"),
    ),
    _Table(
        "message_files",
        _cols("message_id:text file_id:text group_id:text position:integer"),
        (),
        ("message_id", "file_id", "position"),
    ),
    _Table("used_upload_urls", _cols("nonce:text expires_at:timestamptz"), (), ("nonce",)),
    _Table(
        "stream_keys",
        _cols(
            "user_id:text nonce:text key_hash:text title:text created_at:timestamptz public:boolean"
        ),
        (),
        ("user_id", "key_hash", "title"),
    ),
    _Table(
        "message_reactions",
        _cols("message_id:text user_id:text emoji:text created_at:timestamptz"),
        (),
        ("message_id", "user_id", "emoji"),
    ),
)

# WITHOUT ROWID tables: read in primary key order.
_KEY_ORDER = {
    "blobs": "sha256",
    "revoked_tokens": "jti",
    "one_time_tokens": "token_hash",
    "members": "group_id, user_id",
    "message_files": "message_id, file_id",
    "used_upload_urls": "nonce",
    "stream_keys": "user_id",
}

# Source columns that SQLite does not have, computed from a row it reads.
_DERIVED: dict[str, dict[str, Callable[[sqlite3.Row], Any]]] = {
    "users": {
        "search_username": lambda row: "" if row["disabled_at"] else search_key(row["username"]),
        "search_display_name": lambda row: (
            "" if row["disabled_at"] else search_key(row["display_name"])
        ),
    },
    "messages": {"body_words": lambda row: words_of(row["body"])},
    "file_texts": {
        "name_words": lambda row: words_of(row["name"]),
        "body_words": lambda row: words_of(row["body"]),
    },
}
# Read from SQLite with a join where the source table lacks a column.
_SOURCES = {
    "file_texts": "SELECT t.doc_id, f.owner_id, t.name, t.body FROM file_texts AS t "
    "JOIN files AS f ON f.doc_id = t.doc_id ORDER BY t.doc_id"
}


@dataclass(frozen=True)
class MoveReport:
    counts: dict[str, int]

    def describe(self) -> str:
        return ", ".join(f"{count:,} {table}" for table, count in self.counts.items() if count)


class MoveError(Exception):
    """The move cannot start, or what arrived differs from what was sent."""


async def move_to_postgres(
    sqlite_path: Path, target: PostgresDatabase, *, say: Callable[[str], None]
) -> MoveReport:
    # A command of its own: nothing else runs on this loop, so the SQLite
    # side is read directly.
    if not sqlite_path.exists():  # noqa: ASYNC240
        raise MoveError(f"there is no SQLite database at {sqlite_path}")
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    source.row_factory = sqlite3.Row
    try:
        version = int(source.execute("PRAGMA user_version").fetchone()[0])
        if version != latest_version() or version != _SQLITE_VERSION:
            raise MoveError(
                f"{sqlite_path} has schema version {version}; run 'gortc migrate' on it "
                f"with this version of gortc first (it moves version {_SQLITE_VERSION})"
            )
        await target.open()  # migrates the target
        try:
            async with target.write() as conn:
                if await conn.fetchval("SELECT count(*) FROM users"):
                    raise MoveError("the PostgreSQL database already holds users: it must be empty")
                counts = {}
                for table in _TABLES:
                    counts[table.name] = await _copy(source, conn, table)
                    say(f"{table.name}: {counts[table.name]:,} rows")
                await _reset_identities(conn)
            await _verify(source, target, counts)
        finally:
            await target.close()
    except SchemaError as exc:
        raise MoveError(str(exc)) from None
    finally:
        source.close()
    return MoveReport(counts)


async def _copy(source: sqlite3.Connection, conn: Connection, table: _Table) -> int:
    derived = _DERIVED.get(table.name, {})
    names = [column for column, _, _ in table.columns]
    # "*_words" columns are the cut text the computed columns are made of.
    stored = [column for column in names if not column.endswith("_words")]
    targets = stored + [column for column, _ in table.computed]
    selected = stored + [expression for _, expression in table.computed]
    unnested = ", ".join(f"${n + 1}::{kind}[]" for n, (_, kind, _) in enumerate(table.columns))
    statement = (
        f"INSERT INTO {table.name} ({', '.join(targets)}) OVERRIDING SYSTEM VALUE "
        f"SELECT {', '.join(selected)} FROM unnest({unnested}) AS source ({', '.join(names)})"
    )
    # SQLite's order of insertion, where a table has one.
    order = _KEY_ORDER.get(table.name, "rowid")
    cursor = source.execute(
        _SOURCES.get(table.name, f"SELECT * FROM {table.name} ORDER BY {order}")
    )
    copied = 0
    while rows := cursor.fetchmany(_BATCH):
        columns: list[list[Any]] = []
        for column, _, convert in table.columns:
            make = derived.get(column)
            values = [make(row) if make else row[column] for row in rows]
            columns.append([convert(value) for value in values] if convert else values)
        await conn.execute(statement, *columns)
        copied += len(rows)
    return copied


async def _reset_identities(conn: Connection) -> None:
    # Rows copied with their own doc_ids: the next file continues after them.
    await conn.execute(
        "SELECT setval(pg_get_serial_sequence('files', 'doc_id'), "
        "greatest((SELECT max(doc_id) FROM files), 1))"
    )


async def _verify(
    source: sqlite3.Connection, target: PostgresDatabase, counts: dict[str, int]
) -> None:
    async with target.read() as conn:
        for table in _TABLES:
            arrived = int(await conn.fetchval(f"SELECT count(*) FROM {table.name}"))
            if arrived != counts[table.name]:
                raise MoveError(f"{table.name}: {counts[table.name]} rows sent, {arrived} arrived")
            if not table.checked:
                continue
            columns = ", ".join(table.checked)
            kinds = {column: kind for column, kind, _ in table.columns}
            # Text in bytewise order on both sides (SQLite's BINARY).
            bytewise = ", ".join(
                f'{column} COLLATE "C"' if kinds[column] == "text" else column
                for column in table.checked
            )
            sent = _checksum(
                source.execute(f"SELECT {columns} FROM {table.name} ORDER BY {columns}").fetchall()
            )
            stored = _checksum(
                await conn.fetch(f"SELECT {columns} FROM {table.name} ORDER BY {bytewise}")
            )
            if sent != stored:
                raise MoveError(f"{table.name}: the rows that arrived differ from those sent")


def _checksum(rows: Sequence[Any]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()
