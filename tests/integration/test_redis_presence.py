"""Presence counted across two gortc instances sharing one real redis-server,
including an instance that crashes and Redis going away and coming back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as redis

from gortc.hub.presence import LocalPresence
from gortc.hub.redis_presence import RedisPresence
from tests.redis_server import RedisServer

DEADLINE_SECONDS = 10.0
# A heartbeat that lapses in a second, so that a crash shows quickly.
FAST: dict[str, Any] = {
    "ttl": 1.0,
    "heartbeat_interval": 0.2,
    "command_timeout": 0.5,
    "close_timeout": 0.5,
    "backoff_min": 0.02,
    "backoff_max": 0.2,
}
OUTAGE_LOGGED = "Redis unreachable for presence"
RECOVERY_LOGGED = "Redis reachable again for presence"


@asynccontextmanager
async def instance(url: str, **options: Any) -> AsyncIterator[RedisPresence]:
    presence = RedisPresence(url, **(FAST | options))
    try:
        yield presence
    finally:
        async with asyncio.timeout(DEADLINE_SECONDS):
            await presence.close()


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {DEADLINE_SECONDS} s")
        await asyncio.sleep(0.02)


async def fields(url: str, presence: RedisPresence, user_id: str) -> dict[str, int]:
    """The user's hash as Redis holds it: instance id -> connections there.
    A new client each time, so that one from before a restart is never reused."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        stored = await client.hgetall(presence.user_key(user_id))
        return {str(instance_id): int(count) for instance_id, count in stored.items()}
    finally:
        await client.aclose()


async def keys(url: str, pattern: str) -> list[str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return sorted(str(key) for key in await client.keys(pattern))
    finally:
        await client.aclose()


def presence_tasks() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task.get_name().startswith("gortc-presence")}


async def crash(presence: RedisPresence) -> None:
    """Stops the instance the way a killed process does: no more heartbeats,
    nothing removed."""
    (task,) = [t for t in presence_tasks() if t.get_name().endswith(presence.instance_id)]
    task.cancel()
    await asyncio.wait([task])


def logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


async def test_local_presence_counts_each_users_connections() -> None:
    presence = LocalPresence()

    assert await presence.connected("ann") is True
    assert await presence.connected("ann") is False
    assert await presence.connected("bob") is True
    assert await presence.disconnected("ann") is False
    assert await presence.disconnected("ann") is True
    assert await presence.connected("ann") is True
    await presence.close()
    assert await presence.connected("ann") is True


async def test_online_on_first_connection_anywhere_offline_after_last(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    async with instance(url) as a, instance(url) as b:
        assert await a.connected("ann") is True
        assert await b.connected("ann") is False
        assert await a.connected("ann") is False
        assert await fields(url, a, "ann") == {a.instance_id: 2, b.instance_id: 1}

        assert await a.disconnected("ann") is False
        assert await b.disconnected("ann") is False
        assert await a.disconnected("ann") is True
        assert await fields(url, a, "ann") == {}

        # And the other way round, starting on B.
        assert await b.connected("ann") is True
        assert await a.connected("ann") is False
        assert await b.disconnected("ann") is False
        assert await a.disconnected("ann") is True
        assert await keys(url, "gortc:presence:user:*") == []
        assert a.healthy and b.healthy


async def test_many_users_and_racing_calls_end_up_counted_once(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    users = [f"user-{n}" for n in range(300)]
    async with instance(url) as a, instance(url) as b:
        assert await asyncio.gather(*(a.connected(u) for u in users)) == [True] * 300
        assert await asyncio.gather(*(b.connected(u) for u in users)) == [False] * 300
        assert await asyncio.gather(*(a.disconnected(u) for u in users)) == [False] * 300
        assert await asyncio.gather(*(b.disconnected(u) for u in users)) == [True] * 300

        # One user's tabs connecting at once on both instances: online once.
        answers = await asyncio.gather(
            *(instance.connected("tabs") for instance in (a, b, a, b, a, b))
        )
        assert answers.count(True) == 1
        assert await fields(url, a, "tabs") == {a.instance_id: 3, b.instance_id: 3}
        answers = await asyncio.gather(
            *(instance.disconnected("tabs") for instance in (b, a, b, a, b, a))
        )
        assert answers.count(True) == 1

        # Arrivals and departures interleaved on one instance leave Redis
        # with its count, whatever order the writes were queued in.
        await asyncio.gather(
            *(a.connected("busy") for _ in range(5)), *(a.disconnected("busy") for _ in range(3))
        )
        assert await fields(url, a, "busy") == {a.instance_id: 2}
        assert await b.connected("busy") is False
        await asyncio.gather(a.disconnected("busy"), a.disconnected("busy"))
        assert await b.disconnected("busy") is True
        assert await keys(url, "gortc:presence:user:*") == []


async def test_a_crashed_instance_stops_keeping_its_users_online(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    async with instance(url) as a, instance(url) as b:
        assert await a.connected("ann") is True
        assert await a.connected("bob") is True
        assert await b.connected("bob") is False

        await crash(a)
        # Still alive for the TTL: B counts A's connections.
        assert await b.connected("ann") is False
        assert await b.disconnected("ann") is False

        async def heartbeat_lapsed() -> bool:
            return await keys(url, a.heartbeat_key) == []

        await eventually(heartbeat_lapsed, "A's heartbeat to expire")
        assert await b.connected("ann") is True
        assert await b.disconnected("bob") is True
        # The dead instance's fields went with the first write that saw them.
        assert await fields(url, a, "ann") == {b.instance_id: 1}
        assert await fields(url, a, "bob") == {}


async def test_close_takes_the_instance_off_at_once(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with instance(url) as b:
        a = RedisPresence(url, **FAST)
        await a.start()
        assert await keys(url, a.heartbeat_key) == [a.heartbeat_key]
        assert await a.connected("ann") is True
        assert await b.connected("ann") is False

        await a.close()

        assert await keys(url, a.heartbeat_key) == []
        assert await fields(url, a, "ann") == {b.instance_id: 1}
        assert await b.disconnected("ann") is True
        assert {t.get_name() for t in presence_tasks()} == {f"gortc-presence-{b.instance_id}"}
        # A closed registry still answers, from its own (empty) counts.
        assert await a.connected("ann") is True


async def test_outage_answers_locally_then_reregisters(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gortc.hub.redis_presence")
    url = redis_server.url
    async with instance(url) as a, instance(url) as b:
        assert await a.connected("ann") is True
        assert await b.connected("ann") is False
        assert await a.connected("gone") is True

        redis_server.stop()
        # Each instance decides from its own connections, and never raises.
        assert await a.connected("ann") is False
        assert await a.connected("cat") is True
        assert await b.disconnected("ann") is True
        assert await b.connected("dan") is True
        assert await a.disconnected("gone") is True
        for _ in range(20):
            assert await b.connected("eve") in (True, False)
        assert not a.healthy and not b.healthy
        assert logged(caplog, OUTAGE_LOGGED) == 2  # once per instance, not per call

        redis_server.start()  # empty: no persistence

        async def reregistered() -> bool:
            return (
                await fields(url, a, "ann") == {a.instance_id: 2}
                and await fields(url, a, "cat") == {a.instance_id: 1}
                and await fields(url, b, "dan") == {b.instance_id: 1}
                and await fields(url, b, "eve") == {b.instance_id: 20}
            )

        await eventually(reregistered, "both instances to re-register their counts")
        assert a.healthy and b.healthy
        assert logged(caplog, RECOVERY_LOGGED) == 2
        assert logged(caplog, OUTAGE_LOGGED) == 2
        assert await fields(url, a, "gone") == {}

        # Cross-instance answers again.
        assert await b.connected("ann") is False
        assert await a.disconnected("ann") is False
        assert await a.disconnected("ann") is False
        assert await b.disconnected("ann") is True
        assert await b.connected("cat") is False
        assert await a.disconnected("cat") is False
        assert await b.disconnected("cat") is True


async def test_departures_during_a_partition_reach_redis_afterwards(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis keeps its data but does not answer for a while: what changed
    meanwhile must be written once it answers, users who left included."""
    caplog.set_level(logging.INFO, logger="gortc.hub.redis_presence")
    url = redis_server.url
    # A TTL longer than the pause, so that A's heartbeat and fields survive it.
    async with instance(url, ttl=5.0) as a, instance(url, ttl=5.0) as b:
        for user in ("left-in-flight", "left-while-down", "stays"):
            assert await a.connected(user) is True
        client = redis.Redis.from_url(url)
        try:
            await client.execute_command("CLIENT", "PAUSE", 1000, "ALL")
        finally:
            await client.aclose()

        # Its write times out: the answer comes from A's own counts.
        assert await a.disconnected("left-in-flight") is True
        assert not a.healthy
        # Down now: answered at once, written later.
        assert await a.disconnected("left-while-down") is True
        assert await a.connected("stays") is False

        async def caught_up() -> bool:
            return (
                await fields(url, a, "left-in-flight") == {}
                and await fields(url, a, "left-while-down") == {}
                and await fields(url, a, "stays") == {a.instance_id: 2}
            )

        await eventually(caught_up, "A to write what changed during the pause")
        assert logged(caplog, OUTAGE_LOGGED) == 1 and logged(caplog, RECOVERY_LOGGED) == 1
        assert await b.connected("left-in-flight") is True
        assert await b.connected("left-while-down") is True
        assert await b.connected("stays") is False


async def test_fields_lost_without_an_outage_are_rewritten(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with instance(url) as a, instance(url) as b:
        assert await a.connected("ann") is True
        client = redis.Redis.from_url(url)
        try:
            await client.flushall()
        finally:
            await client.aclose()

        # A's next heartbeat finds its key gone and writes its fields again.
        async def rewritten() -> bool:
            return await fields(url, a, "ann") == {a.instance_id: 1}

        await eventually(rewritten, "A to rewrite its fields")
        assert a.healthy
        assert await b.connected("ann") is False


async def test_close_while_redis_is_down_does_not_hang(redis_server: RedisServer) -> None:
    presence = RedisPresence(redis_server.url, **FAST)
    await presence.start()
    assert await presence.connected("ann") is True
    redis_server.stop()

    assert await presence.connected("ann") is False
    assert await presence.disconnected("ann") is False
    async with asyncio.timeout(DEADLINE_SECONDS):
        await presence.close()
    assert not presence_tasks()


async def test_a_silent_redis_costs_a_bounded_wait(caplog: pytest.LogCaptureFixture) -> None:
    """A Redis that accepts connections and never answers (a cut network)."""
    caplog.set_level(logging.INFO, logger="gortc.hub.redis_presence")
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        presence = RedisPresence(f"redis://127.0.0.1:{port}/0", **FAST)
        async with asyncio.timeout(DEADLINE_SECONDS):
            assert await presence.connected("ann") is True
            assert await presence.connected("ann") is False
            assert await presence.disconnected("ann") is False
            await presence.close()
        assert logged(caplog, OUTAGE_LOGGED) == 1
        assert "no answer in 0.5 s" in caplog.text
        assert not presence_tasks()
    finally:
        server.close()
        for writer in accepted:
            writer.close()
        await server.wait_closed()


async def test_local_presence_says_who_is_online() -> None:
    presence = LocalPresence()
    assert await presence.connected("ann") is True
    assert await presence.connected("bob") is True
    assert await presence.disconnected("bob") is True
    assert await presence.online(["ann", "bob", "cat"]) == {"ann"}


async def test_who_is_online_counts_every_live_instance(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with instance(url) as a, instance(url) as b:
        assert await a.online(["ann"]) == set()  # nothing counted yet, anywhere
        assert await a.connected("ann") is True
        assert await b.connected("bob") is True
        assert await b.connected("both") is True
        assert await a.connected("both") is False
        everyone = ["ann", "bob", "both", "nobody"]
        assert await a.online(everyone) == await b.online(everyone) == {"ann", "bob", "both"}
        # More users than one script is given: several batches, one answer.
        many = [f"user-{n}" for n in range(600)]
        for user in many[::3]:
            assert await b.connected(user) is True
        assert await a.online(many) == set(many[::3])

        assert await b.disconnected("bob") is True
        assert await a.online(everyone) == {"ann", "both"}

        await crash(b)
        # B's connections count until its heartbeat lapses, then no longer,
        # even though its fields are still in Redis (nobody wrote since).
        assert await a.online(["both", "bob"]) == {"both"}
        assert await fields(url, b, "user-0") == {b.instance_id: 1}

        async def lapsed() -> bool:
            return await a.online(many) == set()

        await eventually(lapsed, "B's users to stop counting as online")
        assert await a.online(everyone) == {"ann", "both"}  # A's own


async def test_who_is_online_during_an_outage_is_this_instances_answer(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gortc.hub.redis_presence")
    url = redis_server.url
    async with instance(url) as a, instance(url) as b:
        assert await a.connected("ann") is True
        assert await b.connected("bob") is True
        assert await a.online(["ann", "bob"]) == {"ann", "bob"}

        redis_server.stop()
        # Before A's writer has noticed (the query finds out itself), and after.
        async with asyncio.timeout(DEADLINE_SECONDS):
            assert await a.online(["ann", "bob"]) == {"ann"}
            assert await a.connected("cat") is True  # the writer notices now
            assert not a.healthy
            assert await a.online(["ann", "bob", "cat"]) == {"ann", "cat"}
        assert logged(caplog, OUTAGE_LOGGED) == 1  # by A's writer; queries log nothing

        redis_server.start()

        async def recovered() -> bool:
            return await a.online(["ann", "bob", "cat"]) == {"ann", "bob", "cat"}

        await eventually(recovered, "B's users to count again once Redis is back")
