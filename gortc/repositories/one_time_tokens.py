"""Mailed single-use tokens and invite codes in SQLite."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import aiosqlite

from gortc.entities.sessions import Invite, OneTimePurpose, OneTimeToken
from gortc.entities.timestamps import from_text, to_text
from gortc.repositories.database import fetch_all, fetch_one


def _optional_time(text: str | None) -> datetime | None:
    return from_text(text) if text else None


class SqliteOneTimeTokenRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(self, token: OneTimeToken) -> None:
        await self._conn.execute(
            "INSERT INTO one_time_tokens (token_hash, user_id, purpose, email, created_at, "
            "expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
            (
                token.token_hash,
                token.user_id,
                token.purpose.value,
                token.email,
                to_text(token.created_at),
                to_text(token.expires_at),
            ),
        )

    async def consume(
        self, token_hash: str, purpose: OneTimePurpose, now: datetime
    ) -> OneTimeToken | None:
        row = await fetch_one(
            self._conn,
            "UPDATE one_time_tokens SET used_at = ?1 WHERE token_hash = ?2 AND purpose = ?3 "
            "AND used_at IS NULL AND expires_at > ?1 RETURNING *",
            (to_text(now), token_hash, purpose.value),
        )
        if row is None:
            return None
        return OneTimeToken(
            token_hash=row["token_hash"],
            user_id=row["user_id"],
            purpose=OneTimePurpose(row["purpose"]),
            email=row["email"],
            created_at=from_text(row["created_at"]),
            expires_at=from_text(row["expires_at"]),
            used_at=_optional_time(row["used_at"]),
        )

    async def invalidate_for_user(
        self, user_id: str, purpose: OneTimePurpose, now: datetime
    ) -> None:
        await self._conn.execute(
            "UPDATE one_time_tokens SET used_at = ? "
            "WHERE user_id = ? AND purpose = ? AND used_at IS NULL",
            (to_text(now), user_id, purpose.value),
        )


def _invite(row: sqlite3.Row) -> Invite:
    return Invite(
        id=row["id"],
        code_hash=row["code_hash"],
        created_by=row["created_by"],
        note=row["note"],
        created_at=from_text(row["created_at"]),
        expires_at=from_text(row["expires_at"]),
        used_by=row["used_by"],
        used_at=_optional_time(row["used_at"]),
    )


class SqliteInviteRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(self, invite: Invite) -> None:
        await self._conn.execute(
            "INSERT INTO invites (id, code_hash, created_by, note, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                invite.id,
                invite.code_hash,
                invite.created_by,
                invite.note,
                to_text(invite.created_at),
                to_text(invite.expires_at),
            ),
        )

    async def consume(self, code_hash: str, user_id: str, now: datetime) -> bool:
        cursor = await self._conn.execute(
            "UPDATE invites SET used_by = ?1, used_at = ?2 "
            "WHERE code_hash = ?3 AND used_at IS NULL AND expires_at > ?2",
            (user_id, to_text(now), code_hash),
        )
        return cursor.rowcount == 1

    async def list(self, *, limit: int) -> list[Invite]:
        return [
            _invite(row)
            for row in await fetch_all(
                self._conn, "SELECT * FROM invites ORDER BY id DESC LIMIT ?", (limit,)
            )
        ]
