"""Mailed single-use tokens and invite codes on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from gortc.entities.sessions import Invite, OneTimePurpose, OneTimeToken
from gortc.repositories.postgres.database import Connection

_INVITE_COLUMNS = "id, code_hash, created_by, note, created_at, expires_at, used_by, used_at"


class PostgresOneTimeTokenRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, token: OneTimeToken) -> None:
        await self._conn.execute(
            "INSERT INTO one_time_tokens (token_hash, user_id, purpose, email, created_at, "
            "expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)",
            token.token_hash,
            token.user_id,
            token.purpose.value,
            token.email,
            token.created_at,
            token.expires_at,
        )

    async def consume(
        self, token_hash: str, purpose: OneTimePurpose, now: datetime
    ) -> OneTimeToken | None:
        row = await self._conn.fetchrow(
            "UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 "
            "AND used_at IS NULL AND expires_at > $1 "
            "RETURNING token_hash, user_id, purpose, email, created_at, expires_at, used_at",
            now,
            token_hash,
            purpose.value,
        )
        if row is None:
            return None
        return OneTimeToken(
            token_hash=row["token_hash"],
            user_id=row["user_id"],
            purpose=OneTimePurpose(row["purpose"]),
            email=row["email"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            used_at=row["used_at"],
        )

    async def invalidate_for_user(
        self, user_id: str, purpose: OneTimePurpose, now: datetime
    ) -> None:
        await self._conn.execute(
            "UPDATE one_time_tokens SET used_at = $1 "
            "WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
            now,
            user_id,
            purpose.value,
        )


def _invite(row: asyncpg.Record) -> Invite:
    return Invite(
        id=row["id"],
        code_hash=row["code_hash"],
        created_by=row["created_by"],
        note=row["note"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used_by=row["used_by"],
        used_at=row["used_at"],
    )


class PostgresInviteRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, invite: Invite) -> None:
        await self._conn.execute(
            "INSERT INTO invites (id, code_hash, created_by, note, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            invite.id,
            invite.code_hash,
            invite.created_by,
            invite.note,
            invite.created_at,
            invite.expires_at,
        )

    async def consume(self, code_hash: str, user_id: str, now: datetime) -> bool:
        row = await self._conn.fetchrow(
            "UPDATE invites SET used_by = $1, used_at = $2 "
            "WHERE code_hash = $3 AND used_at IS NULL AND expires_at > $2 RETURNING 1",
            user_id,
            now,
            code_hash,
        )
        return row is not None

    async def list(self, *, limit: int) -> list[Invite]:
        rows = await self._conn.fetch(
            f"SELECT {_INVITE_COLUMNS} FROM invites ORDER BY id DESC LIMIT $1", limit
        )
        return [_invite(row) for row in rows]
