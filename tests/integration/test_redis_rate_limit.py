"""RedisRateLimiter against a real redis-server: the buckets of
MemoryRateLimiter, shared by every instance and taken atomically; while
Redis is down each instance limits on its own, and shares again once
Redis is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from gortc.adapters.redis_rate_limit import PREFIX, RETRY_SECONDS, RedisRateLimiter
from tests.redis_server import RedisServer


class Ticks:
    """A monotonic clock the test moves by hand (only for the limiter's
    own retry timer: Redis keeps time for the buckets)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[tuple[RedisRateLimiter, ...]]:
    """Two limiters as two instances would have them."""
    limiters = (RedisRateLimiter(redis_server.url), RedisRateLimiter(redis_server.url))
    yield limiters
    for limiter in limiters:
        await limiter.close()


async def test_two_instances_draw_from_one_bucket(pair: tuple[RedisRateLimiter, ...]) -> None:
    a, b = pair
    # 4 tokens per 40 s: one comes back every 10 s, far beyond this test.
    waits = [await (a if n % 2 else b).hit("login:ip:203.0.113.1", 4, 40.0) for n in range(6)]
    assert waits[:4] == [0.0] * 4
    # The fifth and sixth wait for the next token, whichever instance asks.
    assert 8.0 < waits[4] <= 10.0
    assert 8.0 < waits[5] <= waits[4]
    # Another key is another bucket.
    assert await a.hit("login:ip:203.0.113.2", 4, 40.0) == 0.0


async def test_concurrent_hits_never_take_more_than_the_capacity(
    pair: tuple[RedisRateLimiter, ...],
) -> None:
    a, b = pair
    hits = [(a if n % 2 else b).hit("messages:u1", 10, 60.0) for n in range(60)]
    waits = await asyncio.gather(*hits)
    assert sum(1 for wait in waits if wait == 0.0) == 10


async def test_tokens_come_back_at_capacity_per_period(
    pair: tuple[RedisRateLimiter, ...],
) -> None:
    a, b = pair
    for _ in range(2):
        assert await a.hit("k", 2, 1.0) == 0.0  # 2 tokens per second
    wait = await b.hit("k", 2, 1.0)
    assert 0.0 < wait <= 0.5
    await asyncio.sleep(wait + 0.05)
    assert await b.hit("k", 2, 1.0) == 0.0
    assert await a.hit("k", 2, 1.0) > 0.0


async def test_a_bucket_is_forgotten_once_it_would_be_full_again(
    redis_server: RedisServer, pair: tuple[RedisRateLimiter, ...]
) -> None:
    a, _ = pair
    await a.hit("register:ip:203.0.113.1", 20, 3600.0)
    client = redis.Redis.from_url(redis_server.url)
    try:
        ttl_ms = await client.pttl(PREFIX + "register:ip:203.0.113.1")
        assert 3_590_000 < ttl_ms <= 3_600_000  # no key lingers past its period
    finally:
        await client.aclose()


async def test_while_redis_is_down_each_instance_limits_alone(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = Ticks()
    limiter = RedisRateLimiter(redis_server.url, monotonic=ticks)
    try:
        assert await limiter.hit("k", 2, 60.0) == 0.0
        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="gortc.adapters.redis_rate_limit"):
            # The local bucket starts full: two more, then refused (a
            # password guesser gains nothing from the outage but a refill).
            waits = [await limiter.hit("k", 2, 60.0) for _ in range(3)]
        assert waits[:2] == [0.0, 0.0] and waits[2] > 0
        assert not limiter.shared
        outage = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(outage) == 1, outage  # once, not per request
        assert outage[0].startswith("rate limits are per instance until Redis answers again: ")

        redis_server.start()  # an empty Redis: the shared bucket starts full
        assert await limiter.hit("k", 2, 60.0) > 0  # local until the retry time
        ticks.now += RETRY_SECONDS
        assert await limiter.hit("k", 2, 60.0) == 0.0
        assert limiter.shared
    finally:
        await limiter.close()
