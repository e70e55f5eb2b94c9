"""The revoked-access-token list in Redis, shared by every gortc instance."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as redis
from redis.exceptions import RedisError

from gortc.entities.errors import Unavailable


class RedisRevokedTokenStore:
    def __init__(self, client: redis.Redis, prefix: str = "gortc:revoked:") -> None:
        self._client = client
        self._prefix = prefix

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        # The entry lives exactly as long as the token could have.
        ttl = int((expires_at - datetime.now(UTC)).total_seconds()) + 1
        if ttl > 0:
            try:
                await self._client.set(self._prefix + jti, b"1", ex=ttl)
            except RedisError as exc:
                raise _unavailable(exc) from exc

    async def is_revoked(self, jti: str) -> bool:
        # Fails closed: when the list cannot be read, no token is accepted.
        try:
            return bool(await self._client.exists(self._prefix + jti))
        except RedisError as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: RedisError) -> Unavailable:
    return Unavailable(f"the token store (Redis) is unreachable: {exc}")
