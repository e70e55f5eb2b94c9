"""Users on PostgreSQL, and the people search over them (pg_trgm).

Each user row carries the *search keys* of its names
(``entities/name_search.py``: folded, padded with a space at each end;
empty while the user is disabled), under one trigram GIN index. The
candidates for a query are gathered as on SQLite (users_fts): usernames
starting with it, names containing it (``LIKE`` on the trigram index), and
unless those are enough, names sharing trigrams with it, the most similar
first. ``score_name`` in the use case ranks them.
"""

from __future__ import annotations

import asyncpg

from gortc.entities.errors import Conflict
from gortc.entities.name_search import TRIGRAM_MIN_LENGTH, search_key
from gortc.entities.users import User
from gortc.repositories.postgres.database import Connection

_COLUMNS = (
    "id, username, email, display_name, password_hash, is_admin, email_verified, "
    "disabled_at, created_at, updated_at, avatar_sha256, avatar_type"
)
_PREFIX_CANDIDATES = 100
_SUBSTRING_CANDIDATES = 200
_SIMILAR_CANDIDATES = 100
_SIMILAR_THRESHOLD = 0.01
# Usernames are [a-z0-9_.-]: every one that starts with q sorts below q + DEL.
_AFTER_USERNAME_CHARACTERS = "\x7f"


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        display_name=row["display_name"],
        password_hash=row["password_hash"],
        is_admin=row["is_admin"],
        email_verified=row["email_verified"],
        disabled_at=row["disabled_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        avatar_sha256=row["avatar_sha256"],
        avatar_type=row["avatar_type"],
    )


def _conflict(exc: asyncpg.UniqueViolationError) -> Conflict:
    if exc.constraint_name == "users_username":
        return Conflict("that username is taken", code="username_taken")
    if exc.constraint_name == "users_email":
        return Conflict("that email is already registered", code="email_taken")
    raise exc


def _values(user: User) -> tuple[object, ...]:
    enabled = user.disabled_at is None
    return (
        user.id,
        user.username,
        user.email,
        user.display_name,
        user.password_hash,
        user.is_admin,
        user.email_verified,
        user.disabled_at,
        user.created_at,
        user.updated_at,
        user.avatar_sha256,
        user.avatar_type,
        search_key(user.username) if enabled else "",
        search_key(user.display_name) if enabled else "",
    )


class PostgresUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def get(self, user_id: str) -> User | None:
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
        return _user(row) if row else None

    async def get_by_login(self, login: str) -> User | None:
        # Each arm of the OR is a lookup in its unique index on lower().
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM users "
            "WHERE lower(username) = lower($1) OR lower(email) = lower($1) LIMIT 1",
            login,
        )
        return _user(row) if row else None

    async def add(self, user: User) -> None:
        try:
            await self._conn.execute(
                f"INSERT INTO users ({_COLUMNS}, search_username, search_display_name) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                *_values(user),
            )
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc) from None

    async def update(self, user: User) -> None:
        try:
            await self._conn.execute(
                "UPDATE users SET username = $2, email = $3, display_name = $4, "
                "password_hash = $5, is_admin = $6, email_verified = $7, disabled_at = $8, "
                "created_at = $9, updated_at = $10, avatar_sha256 = $11, avatar_type = $12, "
                "search_username = $13, search_display_name = $14 WHERE id = $1",
                *_values(user),
            )
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc) from None

    async def search_candidates(self, folded_query: str, *, enough: int) -> list[User]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM users WHERE disabled_at IS NULL "
            'AND lower(username) COLLATE "C" >= $1 AND lower(username) COLLATE "C" < $2 '
            'ORDER BY lower(username) COLLATE "C" LIMIT $3',
            folded_query,
            folded_query + _AFTER_USERNAME_CHARACTERS,
            _PREFIX_CANDIDATES,
        )
        found = {row["id"]: _user(row) for row in rows}
        if len(folded_query) < TRIGRAM_MIN_LENGTH:
            return list(found.values())
        pattern = "%" + _like_escaped(folded_query) + "%"
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM users WHERE disabled_at IS NULL "
            "AND (search_username LIKE $1 OR search_display_name LIKE $1) LIMIT $2",
            pattern,
            _SUBSTRING_CANDIDATES,
        )
        found.update((row["id"], _user(row)) for row in rows)
        if len(found) >= enough:
            return list(found.values())
        # Similar names: those sharing a trigram with the query (pg_trgm pads
        # and folds as search_key does), the most similar first. pg_trgm's
        # default threshold (0.3) would miss a swapped pair of letters in a
        # short name ("alcie" is 0.2 from "alice"); a threshold this low
        # keeps any name sharing one trigram, as on SQLite, and score_name
        # has the last word.
        async with self._conn.transaction():
            await self._conn.execute(
                "SELECT set_config('pg_trgm.similarity_threshold', $1, true)",
                str(_SIMILAR_THRESHOLD),
            )
            rows = await self._conn.fetch(
                f"SELECT {_COLUMNS} FROM users WHERE disabled_at IS NULL "
                "AND (search_username % $1 OR search_display_name % $1) "
                "ORDER BY greatest(similarity(search_username, $1), "
                "similarity(search_display_name, $1)) DESC LIMIT $2",
                folded_query,
                _SIMILAR_CANDIDATES,
            )
        found.update((row["id"], _user(row)) for row in rows)
        return list(found.values())

    async def list(self, *, limit: int, after: str | None = None) -> list[User]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2",
            after or "",
            limit,
        )
        return [_user(row) for row in rows]

    async def count(self) -> int:
        return int(await self._conn.fetchval("SELECT count(*) FROM users"))


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
