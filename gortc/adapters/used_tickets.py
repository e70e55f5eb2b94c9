"""Where used WebSocket tickets are remembered until they expire (see
usecases/ws_tickets.py): in the process for one instance, in Redis for
several, so a ticket used on one instance is refused by every other."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

_PREFIX = "gortc:ws-ticket:"
# Past this many remembered tickets, the expired ones are swept (a sweep is
# cheap; doing it on every use would be wasteful).
_SWEEP_ABOVE = 1024


class MemoryUsedTickets:
    def __init__(self) -> None:
        self._until: dict[str, int] = {}  # nonce -> its ticket's expiry (Unix seconds)

    async def first_use(self, ticket_id: str, expires_at: int) -> bool:
        if len(self._until) > _SWEEP_ABOVE:
            now = time.time()
            self._until = {k: v for k, v in self._until.items() if v > now}
        if ticket_id in self._until:
            return False
        self._until[ticket_id] = expires_at
        return True


class RedisUsedTickets:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client

    async def first_use(self, ticket_id: str, expires_at: int) -> bool:
        from redis.exceptions import RedisError

        try:
            return bool(
                await self._redis.set(_PREFIX + ticket_id, b"1", nx=True, exat=expires_at + 1)
            )
        except RedisError as exc:
            # Redis down breaks much more than this: let the ticket in (it
            # is still signed, short-lived and checked against its sign-in)
            # rather than keep everyone out of calls on other instances.
            log.warning("used tickets unavailable (%s): not checking this one", exc)
            return True
