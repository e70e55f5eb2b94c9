"""Users in SQLite."""

from __future__ import annotations

import json
import sqlite3

import aiosqlite

from gortc.entities.errors import Conflict
from gortc.entities.timestamps import from_text, to_text
from gortc.entities.users import User
from gortc.repositories import user_index
from gortc.repositories.database import fetch_all, fetch_one

_COLUMNS = (
    "id, username, email, display_name, password_hash, is_admin, email_verified, "
    "disabled_at, created_at, updated_at, avatar_sha256, avatar_type"
)


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        display_name=row["display_name"],
        password_hash=row["password_hash"],
        is_admin=bool(row["is_admin"]),
        email_verified=bool(row["email_verified"]),
        disabled_at=from_text(row["disabled_at"]) if row["disabled_at"] else None,
        created_at=from_text(row["created_at"]),
        updated_at=from_text(row["updated_at"]),
        avatar_sha256=row["avatar_sha256"],
        avatar_type=row["avatar_type"],
    )


def _conflict(exc: sqlite3.IntegrityError) -> Conflict:
    text = str(exc)
    if "users.username" in text:
        return Conflict("that username is taken", code="username_taken")
    if "users.email" in text:
        return Conflict("that email is already registered", code="email_taken")
    raise exc


class SqliteUserRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def get(self, user_id: str) -> User | None:
        row = await fetch_one(self._conn, f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def get_by_login(self, login: str) -> User | None:
        # Both columns are COLLATE NOCASE with unique indexes, so each arm
        # of the OR is an index lookup.
        row = await fetch_one(
            self._conn,
            f"SELECT {_COLUMNS} FROM users WHERE username = ?1 OR email = ?1 LIMIT 1",
            (login,),
        )
        return _user(row) if row else None

    async def add(self, user: User) -> None:
        try:
            await self._conn.execute(
                f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _values(user),
            )
        except sqlite3.IntegrityError as exc:
            raise _conflict(exc) from None
        await user_index.put(self._conn, user.id, user.username, user.display_name)

    async def update(self, user: User) -> None:
        try:
            await self._conn.execute(
                "UPDATE users SET username = ?2, email = ?3, display_name = ?4, "
                "password_hash = ?5, is_admin = ?6, email_verified = ?7, disabled_at = ?8, "
                "created_at = ?9, updated_at = ?10, avatar_sha256 = ?11, avatar_type = ?12 "
                "WHERE id = ?1",
                _values(user),
            )
        except sqlite3.IntegrityError as exc:
            raise _conflict(exc) from None
        # Names and whether the user is enabled decide the search entry; the
        # rest of a user changes more often (passwords, pictures) but costs
        # two statements on one small row here.
        await user_index.put(self._conn, user.id, user.username, user.display_name)

    async def search_candidates(self, folded_query: str, *, enough: int) -> list[User]:
        """Enabled users who may match the folded query (see user_index);
        unranked."""
        ids = await user_index.candidate_ids(self._conn, folded_query, enough=enough)
        if not ids:
            return []
        rows = await fetch_all(
            self._conn,
            f"SELECT {_COLUMNS} FROM users WHERE id IN (SELECT value FROM json_each(?)) "
            "AND disabled_at IS NULL",
            (json.dumps(ids),),
        )
        return [_user(row) for row in rows]

    async def list(self, *, limit: int, after: str | None = None) -> list[User]:
        return [
            _user(row)
            for row in await fetch_all(
                self._conn,
                f"SELECT {_COLUMNS} FROM users WHERE id > ? ORDER BY id LIMIT ?",
                (after or "", limit),
            )
        ]

    async def count(self) -> int:
        row = await fetch_one(self._conn, "SELECT count(*) FROM users", ())
        return int(row[0]) if row else 0


def _values(user: User) -> tuple[object, ...]:
    return (
        user.id,
        user.username,
        user.email,
        user.display_name,
        user.password_hash,
        int(user.is_admin),
        int(user.email_verified),
        to_text(user.disabled_at) if user.disabled_at else None,
        to_text(user.created_at),
        to_text(user.updated_at),
        user.avatar_sha256,
        user.avatar_type,
    )
