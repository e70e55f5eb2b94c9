"""The revoked-access-token list in SQLite (the default; Redis when configured)."""

from __future__ import annotations

from datetime import datetime

from gortc.entities.timestamps import to_text
from gortc.repositories.database import Database, fetch_one


class SqliteRevokedTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)",
                (jti, to_text(expires_at)),
            )

    async def is_revoked(self, jti: str) -> bool:
        async with self._db.read() as conn:
            row = await fetch_one(conn, "SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,))
        return row is not None
