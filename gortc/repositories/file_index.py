"""The personal search index: SQLite FTS5 "search shards" shared by owners.

A search only ever looks at one person's files, and FTS5 answers "best
matches by bm25" by scoring every document of the table that holds the
words. So the table a search runs on must be small: in one table for
everybody a common word costs every owner's documents (p95 23 ms at 100,000
files), and one table per owner, the fastest (p95 4.0 ms), costs five
schema rows per user that every connection parses when it opens and again
after each new user's table (~200 ms at 2,000 users, while the writer holds
its lock). bench/search/FINDINGS.md measured the middle road used here, its
design F (p95 4.6 ms against tantivy's 3.3; tables following the data, not
the users):

- **Shards.** ``file_shard_<n>`` are FTS5 tables with the columns ``otok``
  (the owner token ``u<owner id in lower case>``, weight 0), ``name`` and
  ``body``. A *shared* shard holds the files of many owners: at most
  ``ShardLimits.files`` (2,000) files and ``text_bytes`` (16 MiB) of names
  and texts; a query there is ``otok:"u…" AND {name body}: (…)``, which
  reads the postings of those files only. An owner past ``own_files``
  (1,000) files or ``own_text_bytes`` (8 MiB) has a shard of their own,
  queried without the token. ``n`` is the integer key of ``search_shards``;
  nothing else ever becomes part of a name. The tables are created here
  when first needed, so they are not in schema.sql.
- **Room.** Each owner in a shared shard holds room there
  (``file_search_owners.reserved_*``): 4 files and 32 KiB at first, doubled
  when outgrown; a shard's owners' room together stays within its limits,
  so a shard never exceeds them however its owners grow. A first file puts
  its owner into the newest shared shard if that has the room, else into a
  new one; the room left in older shards is for their owners' growth.
- **Moves** happen inside the write transaction of the upload that
  outgrows the room, before its file is added: the owner's entries are
  deleted from their shard and inserted into the new one (their own past
  the own limits, else the newest shared shard with the doubled room, else
  a new one), with the counts and the assignment. Readers see the old shard
  until the commit, then the new one, never half (a search that looked the
  shard up just before the commit finds nothing there and looks again).
  Synchronous because it is
  short: a move is bounded by the own limits, ~0.3-1.1 s for 1,000 files /
  5 MB on the shared benchmark box (bench/search/shard_bench.py); that is
  why bytes count as well as files (1,000 files of 1 MiB would hold the
  writer for minutes), and why room doubles: an owner moves at 4, 8, 16, …
  files only, so their files are moved at most about twice (1,000 owners
  all growing at once: 318 MB moved for 505 MB indexed, SHARDS.md), against
  a move at nearly every upload if owners grew into a full shard's last
  free places. Nothing is ever merged back: an owner who deletes files
  keeps their shard and their room.
- **External content**: the view ``file_docs (doc_id, otok, name, body)``
  over ``file_texts`` and ``files`` is every shard's content table, so
  ``snippet()`` and ``highlight()`` read the stored text and the index holds
  only postings. Each shard indexes only its owners' rows of it, so the FTS5
  ``rebuild`` and ``integrity-check`` commands (which read the whole
  content table) must never be used here; ``rebuild()`` below is the repair.
- Entries are added and removed by the repository in the transaction that
  changes the file: removal is the FTS5 ``delete`` command, which needs the
  values that were indexed (owner token, name, body), read from
  ``file_texts`` first. The counts in ``search_shards`` and
  ``file_search_owners`` change in the same transaction.

bm25's statistics (document count, lengths, document frequencies) are per
table, so in a shared shard other owners' files shape the scores of yours,
and a score tells how many documents of the shard hold a word.

Every choice about the index (tokenizer, weights, limits, merging) is in
this module, so the design can change in one place.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiosqlite

from gortc.repositories.database import fetch_all, fetch_one

_OWNER_ID = re.compile(r"[0-9A-Z]{26}")
_TABLE_PREFIX = "file_shard_"
_MIB = 1024 * 1024
# Diacritics folded (café = cafe); the owner token weighs nothing, the name
# ten times the text. Settings from bench/search/FINDINGS.md: detail=full
# and column sizes as FTS5's defaults (phrases; bm25 without re-tokenising),
# no prefix index (indexing -40-50%, twice the index, and prefix p95 already
# ~5 ms on tables of ~2,000 files), automerge/crisismerge/pgsz left alone
# (within noise), and 16 MB of pending terms per table before a flush (the
# biggest indexing lever: fewer, larger segments; memory only while a
# transaction is open).
_TOKENIZER = "unicode61 remove_diacritics 2"
_CONFIG = (("rank", "bm25(0.0, 10.0, 1.0)"), ("hashsize", 16 * _MIB))
# Column numbers for highlight() and snippet().
_NAME_COLUMN = 1
_BODY_COLUMN = 2
_SNIPPET_TOKENS = 24
_ELLIPSIS = "…"

ShardKind = Literal["shared", "own"]
Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True, slots=True)
class ShardLimits:
    """How big a shared shard may grow, when an owner gets one of their own,
    and the room an owner first reserves in a shared shard (doubled as they
    grow). Each first limit must be at most the own limit, and each own
    limit below the shared one, so that an owner's room always fits into an
    empty shared shard."""

    files: int = 2_000
    text_bytes: int = 16 * _MIB
    own_files: int = 1_000
    own_text_bytes: int = 8 * _MIB
    first_files: int = 4
    first_text_bytes: int = 32 * 1024

    def __post_init__(self) -> None:
        if not (
            0 < self.first_files <= self.own_files < self.files
            and 0 < self.first_text_bytes <= self.own_text_bytes < self.text_bytes
        ):
            raise ValueError(
                "the limits must be positive, the first ones at most the own ones "
                "and these below the shared ones"
            )


DEFAULT_LIMITS = ShardLimits()


def shard_table(shard_id: int) -> str:
    """The FTS5 table of a shard: only ever built from its integer key."""
    if type(shard_id) is not int or shard_id < 1:
        raise ValueError("a shard id is a positive integer")
    return f"{_TABLE_PREFIX}{shard_id}"


def owner_token(owner_id: str) -> str:
    """The value of ``otok`` for an owner: one unicode61 token, so a ULID
    only (raises ValueError for anything else)."""
    if not _OWNER_ID.fullmatch(owner_id):
        raise ValueError("an owner id must be a ULID")
    return "u" + owner_id.lower()


def _text_bytes(name: str, body: str) -> int:
    return len(name.encode()) + len(body.encode())


# The same in SQL, over file_texts AS t (UTF-8 bytes: the database's encoding).
_SQL_TEXT_BYTES = "coalesce(sum(length(CAST(t.name AS BLOB)) + length(CAST(t.body AS BLOB))), 0)"


@dataclass(frozen=True, slots=True)
class _Assignment:
    shard_id: int
    kind: ShardKind
    files: int  # the owner's indexed files and bytes
    text_bytes: int
    reserved_files: int  # the owner's room in a shared shard (0 in their own)
    reserved_bytes: int
    shard_reserved_files: int  # the room all the shard's owners hold
    shard_reserved_bytes: int


async def _assignment(conn: aiosqlite.Connection, owner_id: str) -> _Assignment | None:
    row = await fetch_one(
        conn,
        "SELECT o.shard_id, s.kind, o.file_count, o.text_bytes, o.reserved_files, "
        "o.reserved_bytes, s.reserved_files AS shard_files, s.reserved_bytes AS shard_bytes "
        "FROM file_search_owners AS o JOIN search_shards AS s ON s.id = o.shard_id "
        "WHERE o.owner_id = ?",
        (owner_id,),
    )
    if row is None:
        return None
    return _Assignment(*(row[i] for i in range(8)))


async def _create_table(conn: aiosqlite.Connection, shard_id: int) -> None:
    table = shard_table(shard_id)
    await conn.execute(
        f"CREATE VIRTUAL TABLE {table} USING fts5(otok, name, body, "
        f"content='file_docs', content_rowid='doc_id', tokenize='{_TOKENIZER}')"
    )
    await _configure(conn, table)


async def _configure(conn: aiosqlite.Connection, table: str) -> None:
    # Stored in the table's configuration: every "ORDER BY rank" uses it.
    # Only what differs is written: a configuration write makes every other
    # connection that has the table open fail its next query on it once
    # ("SQL logic error", SQLite 3.40.1), so a rebuild must not rewrite
    # settings that are already right.
    stored = {
        row[0]: row[1] for row in await fetch_all(conn, f"SELECT k, v FROM {table}_config", ())
    }
    changes = [(key, value) for key, value in _CONFIG if stored.get(key) != value]
    if changes:
        await conn.executemany(f"INSERT INTO {table} ({table}, rank) VALUES (?, ?)", changes)


async def _new_shard(conn: aiosqlite.Connection, kind: ShardKind, owner_id: str | None) -> int:
    row = await fetch_one(
        conn,
        "INSERT INTO search_shards (kind, owner_id) VALUES (?, ?) RETURNING id",
        (kind, owner_id),
    )
    assert row is not None
    await _create_table(conn, row["id"])
    return int(row["id"])


def _room(reserved: int, needed: int, first: int, own: int) -> int:
    """The room for ``needed``: ``first``, doubled until it fits, at most
    ``own``. Doubling is what bounds the moves (see the module docstring)."""
    room = max(reserved, first)
    while room < needed:
        room *= 2
    return min(room, own)


async def _place(
    conn: aiosqlite.Connection,
    owner_id: str,
    files: int,
    text_bytes: int,
    reserved: tuple[int, int],
    limits: ShardLimits,
) -> tuple[int, int, int]:
    """(shard, room in files, room in bytes) for an owner who will have
    ``files`` / ``text_bytes`` and holds ``reserved`` room now: their own
    shard past the own limits (no room needed there), else the newest shared
    shard with room for the doubled room, else a new shared shard. Only the
    newest takes anyone: the room left in the older ones is for the growth
    of their owners. Never the owner's current shard, which had no room."""
    if files > limits.own_files or text_bytes > limits.own_text_bytes:
        return await _new_shard(conn, "own", owner_id), 0, 0
    room_files = _room(reserved[0], files, limits.first_files, limits.own_files)
    room_bytes = _room(reserved[1], text_bytes, limits.first_text_bytes, limits.own_text_bytes)
    newest = await fetch_one(
        conn,
        "SELECT id, reserved_files, reserved_bytes FROM search_shards WHERE kind = 'shared' "
        "ORDER BY id DESC LIMIT 1",
        (),
    )
    if (
        newest is not None
        and newest["reserved_files"] + room_files <= limits.files
        and newest["reserved_bytes"] + room_bytes <= limits.text_bytes
    ):
        return int(newest["id"]), room_files, room_bytes
    return await _new_shard(conn, "shared", None), room_files, room_bytes


async def _shard_for_new_files(
    conn: aiosqlite.Connection, owner_id: str, count: int, size: int, limits: ShardLimits
) -> int:
    """The shard the owner's next ``count`` files (``size`` bytes of text in
    all) go to: where they are if their room there holds them or can
    double; else they move (or, for first files, are placed) with ``_place``."""
    current = await _assignment(conn, owner_id)
    if current is None:
        shard_id, room_files, room_bytes = await _place(conn, owner_id, count, size, (0, 0), limits)
        await conn.execute(
            "INSERT INTO file_search_owners (owner_id, shard_id) VALUES (?, ?)",
            (owner_id, shard_id),
        )
        await _reserve(conn, owner_id, shard_id, room_files, room_bytes)
        return shard_id
    if current.kind == "own":
        return current.shard_id
    files = current.files + count
    text_bytes = current.text_bytes + size
    if files <= current.reserved_files and text_bytes <= current.reserved_bytes:
        return current.shard_id
    if files <= limits.own_files and text_bytes <= limits.own_text_bytes:
        more_files = (
            _room(current.reserved_files, files, limits.first_files, limits.own_files)
            - current.reserved_files
        )
        more_bytes = (
            _room(
                current.reserved_bytes,
                text_bytes,
                limits.first_text_bytes,
                limits.own_text_bytes,
            )
            - current.reserved_bytes
        )
        if (
            current.shard_reserved_files + more_files <= limits.files
            and current.shard_reserved_bytes + more_bytes <= limits.text_bytes
        ):
            await _reserve(conn, owner_id, current.shard_id, more_files, more_bytes)
            return current.shard_id
    target, room_files, room_bytes = await _place(
        conn,
        owner_id,
        files,
        text_bytes,
        (current.reserved_files, current.reserved_bytes),
        limits,
    )
    await _move(conn, owner_id, current, target)
    await _reserve(conn, owner_id, target, room_files, room_bytes)
    return target


async def _move(
    conn: aiosqlite.Connection, owner_id: str, current: _Assignment, target: int
) -> None:
    """Moves the owner's entries and counts to ``target``, giving back their
    room in the old shard (the caller reserves it in the new one)."""
    # The indexed values are file_texts' (kept equal to what each shard was
    # given), so 'delete' removes exactly what was added. Two statements
    # that stay inside SQLite: no text passes through Python.
    source_table = shard_table(current.shard_id)
    target_table = shard_table(target)
    token = owner_token(owner_id)
    owned = "FROM files AS f JOIN file_texts AS t ON t.doc_id = f.doc_id WHERE f.owner_id = ?"
    await conn.execute(
        f"INSERT INTO {source_table} ({source_table}, rowid, otok, name, body) "
        f"SELECT 'delete', t.doc_id, ?, t.name, t.body {owned}",
        (token, owner_id),
    )
    await conn.execute(
        f"INSERT INTO {target_table} (rowid, otok, name, body) "
        f"SELECT t.doc_id, ?, t.name, t.body {owned}",
        (token, owner_id),
    )
    await conn.execute(
        "UPDATE file_search_owners SET shard_id = ?, reserved_files = 0, reserved_bytes = 0 "
        "WHERE owner_id = ?",
        (target, owner_id),
    )
    await _count_shard(conn, current.shard_id, -current.files, -current.text_bytes)
    await _count_shard(conn, target, current.files, current.text_bytes)
    await _reserve_in_shard(
        conn, current.shard_id, -current.reserved_files, -current.reserved_bytes
    )


async def _reserve(
    conn: aiosqlite.Connection, owner_id: str, shard_id: int, files: int, text_bytes: int
) -> None:
    if files or text_bytes:
        await conn.execute(
            "UPDATE file_search_owners SET reserved_files = reserved_files + ?, "
            "reserved_bytes = reserved_bytes + ? WHERE owner_id = ?",
            (files, text_bytes, owner_id),
        )
        await _reserve_in_shard(conn, shard_id, files, text_bytes)


async def _reserve_in_shard(
    conn: aiosqlite.Connection, shard_id: int, files: int, text_bytes: int
) -> None:
    await conn.execute(
        "UPDATE search_shards SET reserved_files = reserved_files + ?, "
        "reserved_bytes = reserved_bytes + ? WHERE id = ?",
        (files, text_bytes, shard_id),
    )


async def _count_shard(conn: aiosqlite.Connection, shard_id: int, files: int, size: int) -> None:
    await conn.execute(
        "UPDATE search_shards SET file_count = file_count + ?, text_bytes = text_bytes + ? "
        "WHERE id = ?",
        (files, size, shard_id),
    )


async def _count(
    conn: aiosqlite.Connection, owner_id: str, shard_id: int, files: int, size: int
) -> None:
    await conn.execute(
        "UPDATE file_search_owners SET file_count = file_count + ?, text_bytes = text_bytes + ? "
        "WHERE owner_id = ?",
        (files, size, owner_id),
    )
    await _count_shard(conn, shard_id, files, size)


async def add(
    conn: aiosqlite.Connection,
    owner_id: str,
    doc_id: int,
    name: str,
    body: str,
    *,
    limits: ShardLimits = DEFAULT_LIMITS,
) -> None:
    """Indexes a new file (inside the caller's write transaction)."""
    await add_many(conn, owner_id, [(doc_id, name, body)], limits=limits)


async def add_many(
    conn: aiosqlite.Connection,
    owner_id: str,
    documents: list[tuple[int, str, str]],
    *,
    limits: ShardLimits = DEFAULT_LIMITS,
) -> None:
    """Indexes an owner's new files, (doc_id, name, body) each, inside the
    caller's write transaction: one placement and a few statements for the
    lot, where one upload of many files used to pay them per file."""
    if not documents:
        return
    size = sum(_text_bytes(name, body) for _, name, body in documents)
    # Before the texts are stored: a move takes every file_texts row of the
    # owner from the old shard, and these are not in it.
    shard_id = await _shard_for_new_files(conn, owner_id, len(documents), size, limits)
    table = shard_table(shard_id)
    token = owner_token(owner_id)
    await conn.executemany(
        "INSERT INTO file_texts (doc_id, name, body) VALUES (?, ?, ?)", documents
    )
    await conn.executemany(
        f"INSERT INTO {table} (rowid, otok, name, body) VALUES (?, ?, ?, ?)",
        [(doc_id, token, name, body) for doc_id, name, body in documents],
    )
    await _count(conn, owner_id, shard_id, len(documents), size)


async def rename(conn: aiosqlite.Connection, owner_id: str, doc_id: int, name: str) -> None:
    """Re-indexes a file under its new name; nothing for an unindexed file.
    The few bytes a name adds never move the owner (limits are checked when
    files are added)."""
    old = await _indexed(conn, doc_id)
    if old is None:
        return
    shard_id = await _remove_entry(conn, owner_id, doc_id, old)
    await conn.execute("UPDATE file_texts SET name = ? WHERE doc_id = ?", (name, doc_id))
    await conn.execute(
        f"INSERT INTO {shard_table(shard_id)} (rowid, otok, name, body) VALUES (?, ?, ?, ?)",
        (doc_id, owner_token(owner_id), name, old["body"]),
    )
    await _count(conn, owner_id, shard_id, 0, len(name.encode()) - len(old["name"].encode()))


async def remove(conn: aiosqlite.Connection, owner_id: str, doc_id: int) -> None:
    """Takes a file out of the index; nothing for an unindexed file."""
    old = await _indexed(conn, doc_id)
    if old is None:
        return
    shard_id = await _remove_entry(conn, owner_id, doc_id, old)
    await conn.execute("DELETE FROM file_texts WHERE doc_id = ?", (doc_id,))
    await _count(conn, owner_id, shard_id, -1, -_text_bytes(old["name"], old["body"]))


async def drop(conn: aiosqlite.Connection, owner_id: str) -> None:
    """Takes all of the owner's files out of the index, their texts too, and
    forgets their shard (dropping it if it was their own): for removing a
    user, before their ``files`` rows go."""
    current = await _assignment(conn, owner_id)
    if current is not None:
        if current.kind == "own":
            await conn.execute(f"DROP TABLE {shard_table(current.shard_id)}")
            await conn.execute("DELETE FROM file_search_owners WHERE owner_id = ?", (owner_id,))
            await conn.execute("DELETE FROM search_shards WHERE id = ?", (current.shard_id,))
        else:
            table = shard_table(current.shard_id)
            await conn.execute(
                f"INSERT INTO {table} ({table}, rowid, otok, name, body) "
                "SELECT 'delete', t.doc_id, ?, t.name, t.body "
                "FROM files AS f JOIN file_texts AS t ON t.doc_id = f.doc_id "
                "WHERE f.owner_id = ?",
                (owner_token(owner_id), owner_id),
            )
            await _count_shard(conn, current.shard_id, -current.files, -current.text_bytes)
            await _reserve_in_shard(
                conn, current.shard_id, -current.reserved_files, -current.reserved_bytes
            )
            await conn.execute("DELETE FROM file_search_owners WHERE owner_id = ?", (owner_id,))
    await conn.execute(
        "DELETE FROM file_texts WHERE doc_id IN (SELECT doc_id FROM files WHERE owner_id = ?)",
        (owner_id,),
    )


async def _indexed(conn: aiosqlite.Connection, doc_id: int) -> sqlite3.Row | None:
    return await fetch_one(conn, "SELECT name, body FROM file_texts WHERE doc_id = ?", (doc_id,))


async def _remove_entry(
    conn: aiosqlite.Connection, owner_id: str, doc_id: int, old: sqlite3.Row
) -> int:
    # External content: FTS5 cannot read what it indexed, so it is told.
    row = await fetch_one(
        conn, "SELECT shard_id FROM file_search_owners WHERE owner_id = ?", (owner_id,)
    )
    if row is None:
        raise RuntimeError("an indexed file whose owner has no search shard")
    shard_id = int(row["shard_id"])
    table = shard_table(shard_id)
    await conn.execute(
        f"INSERT INTO {table} ({table}, rowid, otok, name, body) VALUES ('delete', ?, ?, ?, ?)",
        (doc_id, owner_token(owner_id), old["name"], old["body"]),
    )
    return shard_id


async def search(
    conn: aiosqlite.Connection,
    owner_id: str,
    match: str,
    *,
    marks: tuple[str, str],
    limit: int,
    offset: int,
) -> list[sqlite3.Row]:
    """The owner's best matches, best first: ``doc_id``, ``rank`` (bm25,
    lower is better), ``name_marked`` (the name with every match between
    ``marks``) and ``snippet`` (a passage of the body, marked alike).
    ``match`` is an expression of fts_match.py: it names no column but
    ``name`` and ``body``, and it is confined to those two here as well, so
    no query reaches ``otok``."""
    shard = await _shard_of(conn, owner_id)
    while shard is not None:
        rows = await _match(conn, owner_id, shard, match, marks=marks, limit=limit, offset=offset)
        if rows:
            return rows
        # Each statement reads its own snapshot: had a move committed since
        # the shard was looked up, the owner's entries are all in the new
        # one (a move commits whole), so nothing found means look again.
        moved = await _shard_of(conn, owner_id)
        if moved == shard:
            return rows
        shard = moved
    return []


async def _shard_of(conn: aiosqlite.Connection, owner_id: str) -> tuple[int, str] | None:
    row = await fetch_one(
        conn,
        "SELECT o.shard_id, s.kind FROM file_search_owners AS o "
        "JOIN search_shards AS s ON s.id = o.shard_id WHERE o.owner_id = ?",
        (owner_id,),
    )
    return None if row is None else (int(row[0]), str(row[1]))


async def _match(
    conn: aiosqlite.Connection,
    owner_id: str,
    shard: tuple[int, str],
    match: str,
    *,
    marks: tuple[str, str],
    limit: int,
    offset: int,
) -> list[sqlite3.Row]:
    shard_id, kind = shard
    table = shard_table(shard_id)
    expression = f"{{name body}} : ({match})"
    if kind == "shared":
        expression = f'otok : "{owner_token(owner_id)}" AND {expression}'
    start, end = marks
    # "ORDER BY rank LIMIT" inside FTS5 picks the best rows before any
    # column is computed, so snippets are made for the rows returned only;
    # no join here, or SQLite would sort instead (FINDINGS.md).
    return await fetch_all(
        conn,
        f"SELECT rowid AS doc_id, rank, highlight({table}, {_NAME_COLUMN}, ?, ?) AS name_marked, "
        f"snippet({table}, {_BODY_COLUMN}, ?, ?, ?, ?) AS snippet "
        f"FROM {table} WHERE {table} MATCH ? ORDER BY rank LIMIT ? OFFSET ?",
        (start, end, start, end, _ELLIPSIS, _SNIPPET_TOKENS, expression, limit, offset),
    )


async def rebuild(
    conn: aiosqlite.Connection, progress: Progress, *, limits: ShardLimits = DEFAULT_LIMITS
) -> int:
    """Empties every shard and indexes every stored text again into its
    owner's shard, inside the caller's write transaction; recounts the
    shards and merges each one. For repairs (``gortc reindex``): owners keep
    their shards (an owner with indexed texts but none is placed), a shard
    whose table is missing gets it back, the settings are applied anew, and
    an owner's room grows to hold their files. Reports after each shard;
    returns the number of files indexed."""
    total_row = await fetch_one(conn, "SELECT count(*) FROM file_texts", ())
    total = int(total_row[0]) if total_row else 0
    progress(0, total)
    unplaced = await fetch_all(
        conn,
        f"SELECT f.owner_id, count(*), {_SQL_TEXT_BYTES} "
        "FROM files AS f JOIN file_texts AS t ON t.doc_id = f.doc_id "
        "WHERE f.owner_id NOT IN (SELECT owner_id FROM file_search_owners) "
        "GROUP BY f.owner_id",
        (),
    )
    for owner_id, files, text_bytes in unplaced:
        shard_id, room_files, room_bytes = await _place(
            conn, owner_id, files, text_bytes, (0, 0), limits
        )
        await conn.execute(
            "INSERT INTO file_search_owners (owner_id, shard_id) VALUES (?, ?)",
            (owner_id, shard_id),
        )
        # Now, so that the next one is placed knowing of it.
        await _reserve(conn, owner_id, shard_id, room_files, room_bytes)
    existing = {
        row[0]
        for row in await fetch_all(
            conn,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?",
            (_TABLE_PREFIX + "%",),
        )
    }
    done = 0
    for shard in await fetch_all(conn, "SELECT id FROM search_shards ORDER BY id", ()):
        shard_id = int(shard["id"])
        table = shard_table(shard_id)
        if table in existing:
            await conn.execute(f"INSERT INTO {table} ({table}) VALUES ('delete-all')")
            await _configure(conn, table)
        else:
            await _create_table(conn, shard_id)
        cursor = await conn.execute(
            f"INSERT INTO {table} (rowid, otok, name, body) "
            "SELECT t.doc_id, 'u' || lower(f.owner_id), t.name, t.body "
            "FROM file_search_owners AS o JOIN files AS f ON f.owner_id = o.owner_id "
            "JOIN file_texts AS t ON t.doc_id = f.doc_id WHERE o.shard_id = ?",
            (shard_id,),
        )
        done += cursor.rowcount
        await conn.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")
        progress(done, max(total, done))
    await conn.execute(
        f"UPDATE file_search_owners SET (file_count, text_bytes) = (SELECT count(*), "
        f"{_SQL_TEXT_BYTES} FROM files AS f JOIN file_texts AS t ON t.doc_id = f.doc_id "
        "WHERE f.owner_id = file_search_owners.owner_id)"
    )
    outgrown = await fetch_all(
        conn,
        "SELECT o.owner_id, o.file_count, o.text_bytes, o.reserved_files, o.reserved_bytes "
        "FROM file_search_owners AS o JOIN search_shards AS s ON s.id = o.shard_id "
        "WHERE s.kind = 'shared' "
        "AND (o.file_count > o.reserved_files OR o.text_bytes > o.reserved_bytes)",
        (),
    )
    for owner_id, files, text_bytes, reserved_files, reserved_bytes in outgrown:
        # Past the own limits, the owner's next upload moves them.
        await conn.execute(
            "UPDATE file_search_owners SET reserved_files = ?, reserved_bytes = ? "
            "WHERE owner_id = ?",
            (
                _room(reserved_files, files, limits.first_files, limits.own_files),
                _room(reserved_bytes, text_bytes, limits.first_text_bytes, limits.own_text_bytes),
                owner_id,
            ),
        )
    await conn.execute(
        "UPDATE search_shards SET (file_count, text_bytes, reserved_files, reserved_bytes) = ("
        "SELECT coalesce(sum(file_count), 0), coalesce(sum(text_bytes), 0), "
        "coalesce(sum(reserved_files), 0), coalesce(sum(reserved_bytes), 0) "
        "FROM file_search_owners AS o WHERE o.shard_id = search_shards.id)"
    )
    return done
