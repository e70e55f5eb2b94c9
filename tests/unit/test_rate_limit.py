"""MemoryRateLimiter on an injected monotonic clock.

Capacities and periods are chosen so refill rates are powers of two and the
arithmetic is exact.
"""

from __future__ import annotations

import pytest

from gortc.adapters.rate_limit import MemoryRateLimiter


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


async def test_a_full_bucket_allows_a_burst_of_its_capacity(ticks: Ticks) -> None:
    limiter = MemoryRateLimiter(monotonic=ticks)

    waits = [await limiter.hit("login:1.2.3.4", 4, 2.0) for _ in range(5)]

    assert waits[:4] == [0.0, 0.0, 0.0, 0.0]
    assert waits[4] > 0


async def test_retry_after_is_the_time_until_the_next_token(ticks: Ticks) -> None:
    limiter = MemoryRateLimiter(monotonic=ticks)
    for _ in range(4):
        await limiter.hit("k", 4, 2.0)  # 2 tokens per second

    assert await limiter.hit("k", 4, 2.0) == pytest.approx(0.5)
    ticks.now += 0.125
    assert await limiter.hit("k", 4, 2.0) == pytest.approx(0.375)


async def test_refused_attempts_do_not_use_up_tokens(ticks: Ticks) -> None:
    limiter = MemoryRateLimiter(monotonic=ticks)
    for _ in range(4):
        await limiter.hit("k", 4, 2.0)
    for _ in range(10):
        assert await limiter.hit("k", 4, 2.0) > 0

    ticks.now += 0.5

    assert await limiter.hit("k", 4, 2.0) == 0.0


async def test_tokens_refill_at_capacity_per_period(ticks: Ticks) -> None:
    limiter = MemoryRateLimiter(monotonic=ticks)
    for _ in range(4):
        await limiter.hit("k", 4, 2.0)

    ticks.now += 1.0  # two tokens back

    assert await limiter.hit("k", 4, 2.0) == 0.0
    assert await limiter.hit("k", 4, 2.0) == 0.0
    assert await limiter.hit("k", 4, 2.0) > 0


async def test_a_long_pause_refills_no_more_than_the_capacity(ticks: Ticks) -> None:
    limiter = MemoryRateLimiter(monotonic=ticks)
    await limiter.hit("k", 4, 2.0)

    ticks.now += 3600.0

    waits = [await limiter.hit("k", 4, 2.0) for _ in range(5)]
    assert waits[:4] == [0.0] * 4
    assert waits[4] == pytest.approx(0.5)


async def test_buckets_are_independent(ticks: Ticks) -> None:
    limiter = MemoryRateLimiter(monotonic=ticks)
    assert await limiter.hit("a", 1, 60.0) == 0.0
    assert await limiter.hit("a", 1, 60.0) > 0

    assert await limiter.hit("b", 1, 60.0) == 0.0


async def test_past_max_keys_the_least_recently_used_bucket_is_forgotten(ticks: Ticks) -> None:
    limiter = MemoryRateLimiter(max_keys=2, monotonic=ticks)
    for key in ("a", "b"):
        await limiter.hit(key, 1, 60.0)  # both now empty
    assert await limiter.hit("a", 1, 60.0) > 0  # "a" is now the most recent

    await limiter.hit("c", 1, 60.0)  # pushes "b" out

    assert await limiter.hit("a", 1, 60.0) > 0  # remembered: still empty
    assert await limiter.hit("b", 1, 60.0) == 0.0  # forgotten: back full
