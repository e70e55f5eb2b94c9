"""Housekeeping: forgetting what has expired, so tables do not grow forever."""

from __future__ import annotations

from datetime import datetime, timedelta

from gortc.entities.timestamps import to_text
from gortc.repositories.database import Database

# Ended sessions stay a while, so a stolen refresh token presented late is
# still recognised as reuse rather than as merely unknown.
SESSION_GRACE = timedelta(days=7)


async def purge_expired(db: Database, now: datetime) -> int:
    """Deletes expired revocations, sessions, mailed tokens and used upload
    URLs; returns the count."""
    stamp = to_text(now)
    old = to_text(now - SESSION_GRACE)
    removed = 0
    async with db.write() as conn:
        for sql, params in (
            ("DELETE FROM revoked_tokens WHERE expires_at <= ?", (stamp,)),
            ("DELETE FROM sessions WHERE expires_at <= ? OR revoked_at <= ?", (old, old)),
            ("DELETE FROM one_time_tokens WHERE expires_at <= ?", (old,)),
            # Past its expiry a signed upload URL is refused anyway.
            ("DELETE FROM used_upload_urls WHERE expires_at <= ?", (stamp,)),
        ):
            cursor = await conn.execute(sql, params)
            removed += max(cursor.rowcount, 0)
    return removed
