"""Sessions and their refresh tokens on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from gortc.entities.sessions import RefreshToken, Session, SessionKind
from gortc.repositories.postgres.database import Connection

_SESSION_COLUMNS = "id, user_id, kind, created_at, expires_at, revoked_at, user_agent, ip"


def _session(row: asyncpg.Record) -> Session:
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        kind=SessionKind(row["kind"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        user_agent=row["user_agent"],
        ip=row["ip"],
    )


class PostgresSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, session: Session) -> None:
        await self._conn.execute(
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            session.id,
            session.user_id,
            session.kind.value,
            session.created_at,
            session.expires_at,
            session.revoked_at,
            session.user_agent,
            session.ip,
        )

    async def get(self, session_id: str) -> Session | None:
        row = await self._conn.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = $1", session_id
        )
        return _session(row) if row else None

    async def revoke(self, session_id: str, now: datetime) -> list[tuple[str, datetime]]:
        await self._conn.execute(
            "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            now,
            session_id,
        )
        rows = await self._conn.fetch(
            "SELECT access_jti, access_expires_at FROM refresh_tokens "
            "WHERE session_id = $1 AND access_expires_at > $2",
            session_id,
            now,
        )
        return [(row[0], row[1]) for row in rows]

    async def active_ids_for_user(self, user_id: str, now: datetime) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
            user_id,
            now,
        )
        return [row[0] for row in rows]

    async def active_for_user(
        self, user_id: str, now: datetime
    ) -> list[tuple[Session, datetime | None]]:
        rows = await self._conn.fetch(
            f"SELECT {_SESSION_COLUMNS}, (SELECT max(r.used_at) FROM refresh_tokens r "
            "WHERE r.session_id = s.id) AS last_used_at "
            "FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL "
            "AND s.expires_at > $2 ORDER BY s.created_at DESC, s.id",
            user_id,
            now,
        )
        return [(_session(row), row["last_used_at"]) for row in rows]

    async def revoke_all_for_user(
        self, user_id: str, now: datetime, *, except_session_id: str | None = None
    ) -> list[tuple[str, datetime]]:
        await self._conn.execute(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL "
            "AND id IS DISTINCT FROM $3",
            now,
            user_id,
            except_session_id,
        )
        rows = await self._conn.fetch(
            "SELECT r.access_jti, r.access_expires_at FROM refresh_tokens r "
            "JOIN sessions s ON s.id = r.session_id "
            "WHERE s.user_id = $1 AND s.id IS DISTINCT FROM $2 AND r.access_expires_at > $3",
            user_id,
            except_session_id,
            now,
        )
        return [(row[0], row[1]) for row in rows]


class PostgresRefreshTokenRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, token: RefreshToken) -> None:
        await self._conn.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, access_jti, "
            "access_expires_at, created_at, used_at) VALUES ($1, $2, $3, $4, $5, $6)",
            token.token_hash,
            token.session_id,
            token.access_jti,
            token.access_expires_at,
            token.created_at,
            token.used_at,
        )

    async def get(self, token_hash: str) -> RefreshToken | None:
        row = await self._conn.fetchrow(
            "SELECT token_hash, session_id, access_jti, access_expires_at, created_at, used_at "
            "FROM refresh_tokens WHERE token_hash = $1",
            token_hash,
        )
        if row is None:
            return None
        return RefreshToken(
            token_hash=row["token_hash"],
            session_id=row["session_id"],
            access_jti=row["access_jti"],
            access_expires_at=row["access_expires_at"],
            created_at=row["created_at"],
            used_at=row["used_at"],
        )

    async def mark_used(self, token_hash: str, now: datetime) -> bool:
        # One statement: of two instances rotating the same token at once,
        # the row lock lets exactly one see used_at still empty.
        row = await self._conn.fetchrow(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL "
            "RETURNING 1",
            now,
            token_hash,
        )
        return row is not None
