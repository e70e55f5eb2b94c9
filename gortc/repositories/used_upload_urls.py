"""Signed upload URLs already used, by nonce, until they expire."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from gortc.entities.timestamps import to_text
from gortc.repositories.database import fetch_one


class SqliteUsedUploadUrls:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def is_used(self, nonce: str) -> bool:
        row = await fetch_one(
            self._conn, "SELECT 1 FROM used_upload_urls WHERE nonce = ?", (nonce,)
        )
        return row is not None

    async def use(self, nonce: str, expires_at: datetime) -> bool:
        # In the upload's write transaction: of two uploads racing with one
        # URL, the second to commit finds the first's row.
        row = await fetch_one(
            self._conn,
            "INSERT INTO used_upload_urls (nonce, expires_at) VALUES (?, ?) "
            "ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
            (nonce, to_text(expires_at)),
        )
        return row is not None
