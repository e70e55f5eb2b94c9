"""The revoked-access-token list in Redis, shared by every gortc instance."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as redis


class RedisRevokedTokenStore:
    def __init__(self, client: redis.Redis, prefix: str = "gortc:revoked:") -> None:
        self._client = client
        self._prefix = prefix

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        # The entry lives exactly as long as the token could have.
        ttl = int((expires_at - datetime.now(UTC)).total_seconds()) + 1
        if ttl > 0:
            await self._client.set(self._prefix + jti, b"1", ex=ttl)

    async def is_revoked(self, jti: str) -> bool:
        return bool(await self._client.exists(self._prefix + jti))
