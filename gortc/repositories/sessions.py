"""Sessions and their refresh tokens in SQLite."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import aiosqlite

from gortc.entities.sessions import RefreshToken, Session, SessionKind
from gortc.entities.timestamps import from_text, to_text
from gortc.repositories.database import fetch_all, fetch_one


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        kind=SessionKind(row["kind"]),
        created_at=from_text(row["created_at"]),
        expires_at=from_text(row["expires_at"]),
        revoked_at=from_text(row["revoked_at"]) if row["revoked_at"] else None,
        user_agent=row["user_agent"],
        ip=row["ip"],
    )


class SqliteSessionRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(self, session: Session) -> None:
        await self._conn.execute(
            "INSERT INTO sessions (id, user_id, kind, created_at, expires_at, revoked_at, "
            "user_agent, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.id,
                session.user_id,
                session.kind.value,
                to_text(session.created_at),
                to_text(session.expires_at),
                to_text(session.revoked_at) if session.revoked_at else None,
                session.user_agent,
                session.ip,
            ),
        )

    async def get(self, session_id: str) -> Session | None:
        row = await fetch_one(self._conn, "SELECT * FROM sessions WHERE id = ?", (session_id,))
        return _session(row) if row else None

    async def revoke(self, session_id: str, now: datetime) -> list[tuple[str, datetime]]:
        await self._conn.execute(
            "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (to_text(now), session_id),
        )
        return await self._live_access_tokens("session_id = ?", (session_id,), now)

    async def active_ids_for_user(self, user_id: str, now: datetime) -> list[str]:
        rows = await fetch_all(
            self._conn,
            "SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?",
            (user_id, to_text(now)),
        )
        return [row[0] for row in rows]

    async def active_for_user(
        self, user_id: str, now: datetime
    ) -> list[tuple[Session, datetime | None]]:
        rows = await fetch_all(
            self._conn,
            "SELECT s.*, (SELECT max(r.used_at) FROM refresh_tokens r "
            "WHERE r.session_id = s.id) AS last_used_at "
            "FROM sessions s WHERE s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? "
            "ORDER BY s.created_at DESC, s.id",
            (user_id, to_text(now)),
        )
        return [
            (_session(row), from_text(row["last_used_at"]) if row["last_used_at"] else None)
            for row in rows
        ]

    async def revoke_all_for_user(
        self, user_id: str, now: datetime, *, except_session_id: str | None = None
    ) -> list[tuple[str, datetime]]:
        await self._conn.execute(
            "UPDATE sessions SET revoked_at = ? "
            "WHERE user_id = ? AND revoked_at IS NULL AND id IS NOT ?",
            (to_text(now), user_id, except_session_id),
        )
        return await self._live_access_tokens(
            "session_id IN (SELECT id FROM sessions WHERE user_id = ? AND id IS NOT ?)",
            (user_id, except_session_id),
            now,
        )

    async def _live_access_tokens(
        self, where: str, params: tuple[object, ...], now: datetime
    ) -> list[tuple[str, datetime]]:
        rows = await fetch_all(
            self._conn,
            f"SELECT access_jti, access_expires_at FROM refresh_tokens "
            f"WHERE {where} AND access_expires_at > ?",
            (*params, to_text(now)),
        )
        return [(row[0], from_text(row[1])) for row in rows]


class SqliteRefreshTokenRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(self, token: RefreshToken) -> None:
        await self._conn.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, access_jti, "
            "access_expires_at, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                token.token_hash,
                token.session_id,
                token.access_jti,
                to_text(token.access_expires_at),
                to_text(token.created_at),
                to_text(token.used_at) if token.used_at else None,
            ),
        )

    async def get(self, token_hash: str) -> RefreshToken | None:
        row = await fetch_one(
            self._conn, "SELECT * FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
        )
        if row is None:
            return None
        return RefreshToken(
            token_hash=row["token_hash"],
            session_id=row["session_id"],
            access_jti=row["access_jti"],
            access_expires_at=from_text(row["access_expires_at"]),
            created_at=from_text(row["created_at"]),
            used_at=from_text(row["used_at"]) if row["used_at"] else None,
        )

    async def mark_used(self, token_hash: str, now: datetime) -> bool:
        cursor = await self._conn.execute(
            "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
            (to_text(now), token_hash),
        )
        return cursor.rowcount == 1
