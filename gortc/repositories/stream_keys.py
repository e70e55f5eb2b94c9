"""Users' stream keys (as nonces and hashes) and their live titles."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from gortc.entities.live import StreamKeyRecord
from gortc.entities.timestamps import from_text, to_text
from gortc.repositories.database import fetch_one


class SqliteStreamKeyRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def get(self, user_id: str) -> StreamKeyRecord | None:
        row = await fetch_one(
            self._conn,
            "SELECT user_id, nonce, title, created_at, public FROM stream_keys WHERE user_id = ?",
            (user_id,),
        )
        return _record(row) if row else None

    async def owner_of(self, key_hash: str) -> StreamKeyRecord | None:
        row = await fetch_one(
            self._conn,
            "SELECT user_id, nonce, title, created_at, public FROM stream_keys WHERE key_hash = ?",
            (key_hash,),
        )
        return _record(row) if row else None

    async def put(self, user_id: str, nonce: str, key_hash: str, now: datetime) -> None:
        """A new key for the user (the old one, if any, stops matching)."""
        await self._conn.execute(
            "INSERT INTO stream_keys (user_id, nonce, key_hash, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET nonce = excluded.nonce, "
            "key_hash = excluded.key_hash, created_at = excluded.created_at",
            (user_id, nonce, key_hash, to_text(now)),
        )

    async def set_title(self, user_id: str, title: str) -> bool:
        cursor = await self._conn.execute(
            "UPDATE stream_keys SET title = ? WHERE user_id = ?", (title, user_id)
        )
        return cursor.rowcount > 0

    async def set_public(self, user_id: str, public: bool) -> bool:
        cursor = await self._conn.execute(
            "UPDATE stream_keys SET public = ? WHERE user_id = ?", (int(public), user_id)
        )
        return cursor.rowcount > 0


def _record(row: aiosqlite.Row) -> StreamKeyRecord:
    return StreamKeyRecord(
        user_id=row[0],
        nonce=row[1],
        title=row[2],
        created_at=from_text(row[3]),
        public=bool(row[4]),
    )
