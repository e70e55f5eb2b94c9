"""Call placement shared by instances through one real redis-server: the
first to claim a group's call hosts it, the others send joiners there, and a
host that dies stops pinning its calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.exceptions import RedisError

from gortc.adapters.redis_call_placement import RedisCallPlacement
from gortc.entities.calls import CallParticipant
from tests.redis_server import RedisServer

# Short pins (renewed every third), so that an expiry shows within seconds.
PIN_SECONDS = 1.0
DEADLINE_SECONDS = 10.0
GROUP = "01HZCALLGROUP0000000000000"
ROSTER = (CallParticipant("ann", video_muted=True), CallParticipant("ben", audio_muted=True))


def ws_url(name: str) -> str:
    return f"ws://{name}.example.org:8080/api/v1/ws"


@asynccontextmanager
async def instance(url: str, name: str) -> AsyncIterator[RedisCallPlacement]:
    placement = RedisCallPlacement(
        url, instance_id=f"instance-{name}", ws_url=ws_url(name), pin_seconds=PIN_SECONDS
    )
    try:
        yield placement
    finally:
        async with asyncio.timeout(DEADLINE_SECONDS):
            await placement.close()


def pin_renewals() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task.get_name() == "gortc-call-pins"}


async def claim_then_crash(placement: RedisCallPlacement, group_id: str) -> None:
    """Claims the call, then stops renewing its pin the way a killed process
    does (nothing released). The placement must not host anything yet."""
    before = pin_renewals()
    assert await placement.claim(group_id) is None
    (renewal,) = pin_renewals() - before
    renewal.cancel()
    await asyncio.wait([renewal])


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> float:
    """Polls until true (bounded); returns how long it took."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > DEADLINE_SECONDS:
            raise AssertionError(f"still waiting for {what} after {DEADLINE_SECONDS} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_the_first_to_claim_hosts_and_the_others_are_sent_there(
    redis_server: RedisServer,
) -> None:
    async with instance(redis_server.url, "a") as a, instance(redis_server.url, "b") as b:
        assert await a.claim(GROUP) is None
        assert await b.claim(GROUP) == ws_url("a")
        assert await a.claim(GROUP) is None  # the host claiming again still hosts
        assert await b.claim(GROUP) == ws_url("a")
        # Another group's call is independent.
        assert await b.claim("01HZOTHERGROUP000000000000") is None
        assert await a.claim("01HZOTHERGROUP000000000000") == ws_url("b")


async def test_the_hosts_participants_are_seen_by_the_others(redis_server: RedisServer) -> None:
    async with instance(redis_server.url, "a") as a, instance(redis_server.url, "b") as b:
        assert await b.participants(GROUP) is None  # no call known
        assert await a.claim(GROUP) is None

        await a.publish(GROUP, ROSTER)
        assert await b.participants(GROUP) == ROSTER

        await a.publish(GROUP, ROSTER[1:])
        assert await b.participants(GROUP) == ROSTER[1:]


async def test_a_released_call_may_start_on_another_instance(redis_server: RedisServer) -> None:
    async with instance(redis_server.url, "a") as a, instance(redis_server.url, "b") as b:
        assert await a.claim(GROUP) is None
        await a.publish(GROUP, ROSTER)

        await a.publish(GROUP, ())  # the last one left...
        await a.release(GROUP)  # ...and the call is over

        assert await b.participants(GROUP) is None
        assert await b.claim(GROUP) is None
        assert await a.claim(GROUP) == ws_url("b")


async def test_a_live_host_keeps_its_pin_past_the_pin_lifetime(redis_server: RedisServer) -> None:
    async with instance(redis_server.url, "a") as a, instance(redis_server.url, "b") as b:
        assert await a.claim(GROUP) is None
        await a.publish(GROUP, ROSTER)

        await asyncio.sleep(PIN_SECONDS * 2.5)  # renewed every third of it

        assert await b.claim(GROUP) == ws_url("a")
        assert await b.participants(GROUP) == ROSTER


async def test_a_host_that_stops_renewing_loses_its_calls(redis_server: RedisServer) -> None:
    async with instance(redis_server.url, "a") as a, instance(redis_server.url, "b") as b:
        await claim_then_crash(a, GROUP)
        await a.publish(GROUP, ROSTER)
        assert await b.claim(GROUP) == ws_url("a")

        async def b_hosts() -> bool:
            return await b.claim(GROUP) is None

        waited = await eventually(b_hosts, "A's pin to expire")

        assert waited < PIN_SECONDS + 1.0
        assert await b.participants(GROUP) is None  # A's roster went with its pin
        assert await a.claim(GROUP) == ws_url("b")


async def test_only_the_owner_releases_its_pin(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with instance(url, "a") as a, instance(url, "b") as b, instance(url, "c") as c:
        assert await a.claim(GROUP) is None
        await a.publish(GROUP, ROSTER)

        await b.release(GROUP)  # b never hosted it

        assert await c.claim(GROUP) == ws_url("a")
        assert await c.participants(GROUP) == ROSTER


async def test_a_split_call_is_pinned_to_whichever_host_remains(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    async with instance(url, "a") as a, instance(url, "b") as b, instance(url, "c") as c:
        # A stalls long enough for its pin to lapse, and B takes the call.
        await claim_then_crash(a, GROUP)
        before = pin_renewals()

        async def b_hosts() -> bool:
            return await b.claim(GROUP) is None

        await eventually(b_hosts, "A's pin to expire")
        (b_renewal,) = pin_renewals() - before
        # A comes back still believing it hosts the call; hosting another
        # one restarts its renewals, which cover both.
        assert await a.claim("01HZOTHERGROUP000000000000") is None
        assert await c.claim(GROUP) == ws_url("b")

        # B dies in turn. A still hosts its part of the split call, so once
        # B's pin lapses A pins the group again: joiners go where a call is.
        b_renewal.cancel()
        await asyncio.wait([b_renewal])

        async def a_pinned_again() -> bool:
            return await c.claim(GROUP) == ws_url("a")

        waited = await eventually(a_pinned_again, "B's pin to expire and A's to return")
        assert waited < PIN_SECONDS + 1.0

        # B's late release leaves A's pin in place; A's own release frees it.
        await b.release(GROUP)
        assert await c.claim(GROUP) == ws_url("a")
        await a.release(GROUP)
        assert await c.claim(GROUP) is None
        assert await b.claim(GROUP) == ws_url("c")


async def test_without_redis_calls_are_hosted_where_they_are_joined(
    redis_server: RedisServer,
) -> None:
    async with instance(redis_server.url, "a") as a, instance(redis_server.url, "b") as b:
        assert await a.claim(GROUP) is None
        redis_server.stop()

        async with asyncio.timeout(5):
            # B cannot know A hosts it: hosting it here beats no call at all.
            assert await b.claim(GROUP) is None
            assert await b.claim("01HZOTHERGROUP000000000000") is None
            assert await b.participants(GROUP) is None
        with pytest.raises(RedisError):  # the call service logs these and goes on
            await b.publish(GROUP, ROSTER)
        with pytest.raises(RedisError):
            await b.release(GROUP)
    # And both closed promptly (bounded in instance()), Redis still down.


async def test_only_the_host_publishes_the_participants(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with instance(url, "a") as a, instance(url, "b") as b, instance(url, "c") as c:
        assert await a.claim(GROUP) is None
        await a.publish(GROUP, ROSTER)
        # B hosts a stray part of the call (e.g. joined while Redis was down).
        await b.publish(GROUP, (CallParticipant("eve"),))
        assert await c.participants(GROUP) == ROSTER
