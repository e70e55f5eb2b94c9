"""Token-bucket rate limiting kept in this process's memory."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryRateLimiter:
    """Buckets keyed by string, refilled continuously. The least recently
    used buckets are forgotten past ``max_keys``, so a flood of distinct keys
    cannot exhaust memory (a forgotten bucket is a full one: lenient)."""

    def __init__(
        self, max_keys: int = 100_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_keys = max_keys
        self._monotonic = monotonic

    async def hit(self, key: str, capacity: int, period_seconds: float) -> float:
        now = self._monotonic()
        rate = capacity / period_seconds
        tokens, stamp = self._buckets.pop(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - stamp) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / rate
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait

    async def close(self) -> None:
        """Nothing to release (the Redis limiter has a connection)."""
