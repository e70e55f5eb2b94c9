"""Token-bucket rate limiting in Redis, shared by every gortc instance (for
the account limits: sign-in, registration, mail; see app.py for why the
per-user sending limits stay local).

The same buckets as :class:`~gortc.adapters.rate_limit.MemoryRateLimiter`
(``capacity`` tokens, refilled evenly over ``period_seconds``; a hit takes
one or answers how long until one is there), so a limit means the same
total whether a client's requests reach one instance or are spread over
several. One Lua script reads, refills and takes in a single step (no two
instances can both take the last token), on Redis's own clock (instances'
clocks need not agree).

When Redis cannot be reached, each instance falls back to its own
in-memory buckets until Redis answers again: a per-instance limit is
weaker than the shared one (an attacker spread over N instances gets N
times the attempts), but failing open would hand a password guesser
unlimited attempts for as long as Redis is down, and failing closed would
lock every user out of signing in over an outage they cannot fix. The
switch each way is logged once, as a warning and as a recovery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gortc.adapters.rate_limit import MemoryRateLimiter
from gortc.hub.redis_support import describe_failure, reraise_if_cancelled

log = logging.getLogger(__name__)

PREFIX = "gortc:ratelimit:"

# KEYS[1] the bucket; ARGV[1] capacity (tokens), ARGV[2] period (ms).
# Returns the wait in ms as a string (Lua numbers come back as integers).
# A bucket untouched for a whole period is full again, so the key expires
# then: a missing key and a full bucket mean the same.
_HIT = """
local capacity = tonumber(ARGV[1])
local period_ms = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local rate = capacity / period_ms
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(bucket[1]) or capacity
local stamp = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'stamp', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(period_ms))
return string.format('%.17g', wait)
"""

# How long the in-memory buckets stand in after a failure before Redis is
# tried again: a sign-in during an outage should not wait for a timeout.
RETRY_SECONDS = 5.0
# A Redis that accepts connections but does not answer must not hold a
# sign-in for long either.
_TIMEOUT_SECONDS = 1.0


class RedisRateLimiter:
    def __init__(
        self,
        url: str,
        *,
        fallback: MemoryRateLimiter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # No retries inside redis-py: a failure goes to the fallback at once.
        self._redis: Redis = Redis.from_url(
            url,
            socket_connect_timeout=_TIMEOUT_SECONDS,
            socket_timeout=_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self._hit = self._redis.register_script(_HIT)
        self._fallback = fallback or MemoryRateLimiter()
        self._monotonic = monotonic
        self._local_until: float | None = None  # set while Redis is out

    @property
    def shared(self) -> bool:
        """False while the in-memory buckets stand in for Redis."""
        return self._local_until is None

    async def hit(self, key: str, capacity: int, period_seconds: float) -> float:
        if self._local_until is not None and self._monotonic() < self._local_until:
            return await self._fallback.hit(key, capacity, period_seconds)
        try:
            raw = await self._hit(keys=[PREFIX + key], args=[capacity, period_seconds * 1000])
        except RedisError as exc:
            reraise_if_cancelled(exc)
            if self._local_until is None:
                log.warning(
                    "rate limits are per instance until Redis answers again: %s",
                    describe_failure(exc),
                )
            self._local_until = self._monotonic() + RETRY_SECONDS
            return await self._fallback.hit(key, capacity, period_seconds)
        if self._local_until is not None:
            log.info("rate limits are shared through Redis again")
            self._local_until = None
        return float(raw) / 1000

    async def close(self) -> None:
        await self._redis.aclose()
