"""The people search index: the FTS5 table ``users_fts`` (trigram tokenizer).

Each enabled user has one entry: ``user_id`` (not indexed) and the *search
keys* of the username and the display name (``entities/name_search.py``:
folded, padded with a space at each end), under the rowid of the user's row.
It is an ordinary (not external-content) FTS5 table: the keys are not the
names, and the few bytes per user buy deletions that need no old values.
The users repository keeps it current in the transaction that writes the
user (``put``); a disabled user has no entry.

SQLite 3.40's trigram tokenizer finds substrings (three characters or more)
and folds case, not accents: hence the folded keys. Typos need more than
``MATCH``; ``candidate_ids`` gathers possible matches, and the use case ranks
them with ``score_name``.
"""

from __future__ import annotations

from collections.abc import Callable

import aiosqlite

from gortc.entities.name_search import TRIGRAM_MIN_LENGTH, query_trigrams, search_key
from gortc.repositories.database import fetch_all, fetch_one

Progress = Callable[[int, int], None]  # (done, total)

# Usernames are [a-z0-9_.-]: every one that starts with q sorts below q + DEL.
_AFTER_USERNAME_CHARACTERS = "\x7f"
_PREFIX_CANDIDATES = 100
_SUBSTRING_CANDIDATES = 200
_SIMILAR_CANDIDATES = 100


async def put(conn: aiosqlite.Connection, user_id: str, username: str, display_name: str) -> None:
    """Replaces the user's entry with one for these names, or with none if
    the user is disabled (as stored: call it after writing the row)."""
    await conn.execute(
        "DELETE FROM users_fts WHERE rowid = (SELECT rowid FROM users WHERE id = ?)", (user_id,)
    )
    await conn.execute(
        "INSERT INTO users_fts (rowid, user_id, username, display_name) "
        "SELECT rowid, id, ?, ? FROM users WHERE id = ? AND disabled_at IS NULL",
        (search_key(username), search_key(display_name), user_id),
    )


async def rebuild(conn: aiosqlite.Connection, progress: Progress, *, batch: int = 5000) -> int:
    """Empties the index and adds every enabled user again, in batches,
    inside the caller's transaction. Returns the number of users indexed."""
    row = await fetch_one(conn, "SELECT count(*) FROM users WHERE disabled_at IS NULL", ())
    total = int(row[0]) if row else 0
    await conn.execute("DELETE FROM users_fts")
    done = 0
    last = -1
    progress(done, total)
    while True:
        rows = await fetch_all(
            conn,
            "SELECT rowid, id, username, display_name FROM users "
            "WHERE rowid > ? AND disabled_at IS NULL ORDER BY rowid LIMIT ?",
            (last, batch),
        )
        if not rows:
            break
        await conn.executemany(
            "INSERT INTO users_fts (rowid, user_id, username, display_name) VALUES (?, ?, ?, ?)",
            [(row[0], row[1], search_key(row[2]), search_key(row[3] or "")) for row in rows],
        )
        done += len(rows)
        last = int(rows[-1][0])
        progress(done, max(total, done))
    await conn.execute("INSERT INTO users_fts (users_fts) VALUES ('optimize')")
    return done


async def candidate_ids(conn: aiosqlite.Connection, folded_query: str, *, enough: int) -> list[str]:
    """Ids of users who may match ``folded_query`` (disabled ones may be
    among them: the caller loads enabled users only):

    - usernames starting with it (the username index), which is all there is
      for a query shorter than a trigram;
    - names containing it (a trigram phrase: a substring match);
    - unless those are ``enough`` already (similar names rank below names
      containing the query, so they could not make the page), names sharing
      trigrams with it, the most (by bm25) first: misspellings.
    """
    ids = [
        row[0]
        for row in await fetch_all(
            conn,
            "SELECT id FROM users WHERE username >= ? AND username < ? ORDER BY username LIMIT ?",
            (folded_query, folded_query + _AFTER_USERNAME_CHARACTERS, _PREFIX_CANDIDATES),
        )
    ]
    if len(folded_query) < TRIGRAM_MIN_LENGTH:
        return ids
    ids += await _matching(conn, _quoted(folded_query), "", _SUBSTRING_CANDIDATES)
    ids = list(dict.fromkeys(ids))
    if len(ids) >= enough:
        return ids
    similar = " OR ".join(_quoted(gram) for gram in query_trigrams(folded_query))
    ids += await _matching(conn, similar, "ORDER BY rank", _SIMILAR_CANDIDATES)
    return list(dict.fromkeys(ids))


async def _matching(conn: aiosqlite.Connection, match: str, ordering: str, limit: int) -> list[str]:
    rows = await fetch_all(
        conn,
        f"SELECT user_id FROM users_fts WHERE users_fts MATCH ? {ordering} LIMIT ?",
        (match, limit),
    )
    return [row[0] for row in rows]


def _quoted(text: str) -> str:
    # An FTS5 string: the trigram tokenizer sees exactly these characters.
    return '"' + text.replace('"', '""') + '"'
