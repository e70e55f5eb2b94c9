"""Reference counts of content-addressed blobs in SQLite."""

from __future__ import annotations

import aiosqlite

from gortc.repositories.database import fetch_all, fetch_one


class SqliteBlobReferences:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def acquire(self, sha256: str, size: int) -> None:
        await self._conn.execute(
            "INSERT INTO blobs (sha256, size, refcount) VALUES (?, ?, 1) "
            "ON CONFLICT (sha256) DO UPDATE SET refcount = refcount + 1",
            (sha256, size),
        )

    async def is_referenced(self, sha256: str) -> bool:
        return (
            await fetch_one(
                self._conn, "SELECT 1 FROM blobs WHERE sha256 = ? AND refcount > 0", (sha256,)
            )
            is not None
        )

    async def list_referenced(self) -> set[str]:
        rows = await fetch_all(self._conn, "SELECT sha256 FROM blobs WHERE refcount > 0", ())
        return {row[0] for row in rows}

    async def release(self, sha256: str) -> bool:
        row = await fetch_one(
            self._conn,
            "UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = ? AND refcount > 0 "
            "RETURNING refcount",
            (sha256,),
        )
        if row is None or row[0] > 0:
            return False
        # users.avatar_sha256 references blobs; the caller cleared it first.
        await self._conn.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
        return True
