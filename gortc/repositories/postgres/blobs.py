"""Reference counts of content-addressed blobs, and revoked access tokens,
on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from gortc.repositories.postgres.database import Connection, PostgresDatabase


class PostgresBlobReferences:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def acquire(self, sha256: str, size: int) -> None:
        await self._conn.execute(
            "INSERT INTO blobs (sha256, size, refcount) VALUES ($1, $2, 1) "
            "ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1",
            sha256,
            size,
        )

    async def is_referenced(self, sha256: str) -> bool:
        row = await self._conn.fetchrow(
            "SELECT 1 FROM blobs WHERE sha256 = $1 AND refcount > 0", sha256
        )
        return row is not None

    async def list_referenced(self) -> set[str]:
        rows = await self._conn.fetch("SELECT sha256 FROM blobs WHERE refcount > 0")
        return {row[0] for row in rows}

    async def release(self, sha256: str) -> bool:
        # The UPDATE locks the row until commit: two instances releasing the
        # last two references agree on which one was the last.
        remaining = await self._conn.fetchval(
            "UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = $1 AND refcount > 0 "
            "RETURNING refcount",
            sha256,
        )
        if remaining is None or remaining > 0:
            return False
        await self._conn.execute("DELETE FROM blobs WHERE sha256 = $1", sha256)
        return True


class PostgresRevokedTokenStore:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING",
                jti,
                expires_at,
            )

    async def is_revoked(self, jti: str) -> bool:
        async with self._db.read() as conn:
            row = await conn.fetchrow("SELECT 1 FROM revoked_tokens WHERE jti = $1", jti)
        return row is not None
