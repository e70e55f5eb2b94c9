"""Housekeeping on PostgreSQL: forgetting what has expired."""

from __future__ import annotations

from datetime import datetime

from gortc.repositories.maintenance import SESSION_GRACE
from gortc.repositories.postgres.database import PostgresDatabase


async def purge_expired_postgres(db: PostgresDatabase, now: datetime) -> int:
    """Deletes expired revocations, sessions, mailed tokens and used upload
    URLs; returns the count (as ``maintenance.purge_expired`` on SQLite)."""
    old = now - SESSION_GRACE
    removed = 0
    async with db.write() as conn:
        for sql, params in (
            ("DELETE FROM revoked_tokens WHERE expires_at <= $1", (now,)),
            ("DELETE FROM sessions WHERE expires_at <= $1 OR revoked_at <= $1", (old,)),
            ("DELETE FROM one_time_tokens WHERE expires_at <= $1", (old,)),
            ("DELETE FROM used_upload_urls WHERE expires_at <= $1", (now,)),
        ):
            status = await conn.execute(sql, *params)
            removed += int(status.rsplit(" ", 1)[-1])  # "DELETE <count>"
    return removed
