"""Users' stream keys (as nonces and hashes), live titles, and used upload
URLs, on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from gortc.entities.live import StreamKeyRecord
from gortc.repositories.postgres.database import Connection

_COLUMNS = "user_id, nonce, title, created_at, public"


def _record(row: asyncpg.Record) -> StreamKeyRecord:
    return StreamKeyRecord(
        user_id=row["user_id"],
        nonce=row["nonce"],
        title=row["title"],
        created_at=row["created_at"],
        public=row["public"],
    )


class PostgresStreamKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def get(self, user_id: str) -> StreamKeyRecord | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM stream_keys WHERE user_id = $1", user_id
        )
        return _record(row) if row else None

    async def owner_of(self, key_hash: str) -> StreamKeyRecord | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM stream_keys WHERE key_hash = $1", key_hash
        )
        return _record(row) if row else None

    async def put(self, user_id: str, nonce: str, key_hash: str, now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO stream_keys (user_id, nonce, key_hash, created_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET nonce = excluded.nonce, "
            "key_hash = excluded.key_hash, created_at = excluded.created_at",
            user_id,
            nonce,
            key_hash,
            now,
        )

    async def set_title(self, user_id: str, title: str) -> bool:
        row = await self._conn.fetchrow(
            "UPDATE stream_keys SET title = $1 WHERE user_id = $2 RETURNING 1", title, user_id
        )
        return row is not None

    async def set_public(self, user_id: str, public: bool) -> bool:
        row = await self._conn.fetchrow(
            "UPDATE stream_keys SET public = $1 WHERE user_id = $2 RETURNING 1", public, user_id
        )
        return row is not None


class PostgresUsedUploadUrls:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def is_used(self, nonce: str) -> bool:
        row = await self._conn.fetchrow("SELECT 1 FROM used_upload_urls WHERE nonce = $1", nonce)
        return row is not None

    async def use(self, nonce: str, expires_at: datetime) -> bool:
        # The primary key decides between two uploads racing with one URL,
        # on one instance or two.
        row = await self._conn.fetchrow(
            "INSERT INTO used_upload_urls (nonce, expires_at) VALUES ($1, $2) "
            "ON CONFLICT (nonce) DO NOTHING RETURNING 1",
            nonce,
            expires_at,
        )
        return row is not None
