"""Two gortc instances sharing one real redis-server through RedisBackplane,
including Redis going away and coming back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as redis

from gortc.hub.backplane import LocalBackplane
from gortc.hub.redis_backplane import RedisBackplane, decode_frame, encode_frame
from tests.redis_server import RedisServer

Event = tuple[str, bytes]
# Generous: reconnection takes a few backoff steps (capped at 0.2 s here).
DEADLINE_SECONDS = 10.0
FAST_BACKOFF: dict[str, Any] = {"backoff_min": 0.02, "backoff_max": 0.2, "ping_interval": 1.0}

AWKWARD_EVENTS: list[Event] = [
    ("group:1", b'{"type":"message.created","message":{"body":"hi"}}'),
    ("group:1", b"line one\nline two\r\n\n"),
    ("user:7", b"\x00\x00nul\x00inside\x00"),
    ("user:7", bytes(range(256))),
    ("user:7", b"\xff\xfe\x80 not utf-8 \xc3\x28"),
    ("presence", b""),
    ("a:b|c\x00d\ne\r\x01\xff-", b"topic with separators"),
    ("grüße:😀", b"unicode topic"),
    ("group:2", b"x" * 200_000),
]


class Inbox:
    """What one instance's hub received, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.events.append((topic, payload))

    async def wait_for(self, count: int) -> list[Event]:
        await eventually(lambda: len(self.events) >= count, f"{count} events")
        return self.events


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {DEADLINE_SECONDS} s")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def instance(
    url: str | Callable[[], redis.Redis], **options: Any
) -> AsyncIterator[tuple[RedisBackplane, Inbox]]:
    backplane = RedisBackplane(url, **(FAST_BACKOFF | options))
    inbox = Inbox()
    await backplane.start(inbox)
    try:
        yield backplane, inbox
    finally:
        await backplane.close()


async def crossed(sender: RedisBackplane, receiver: Inbox, marker: bytes) -> None:
    """Publishes ``marker`` on ``sender`` and waits for it on ``receiver``;
    one instance's events arrive in order, so every earlier one has too."""
    sender.publish("marker", marker)
    await eventually(lambda: ("marker", marker) in receiver.events, f"marker {marker!r}")


def backplane_tasks() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task.get_name().startswith("gortc-backplane")}


class Partition:
    """A TCP relay to Redis that can go silent without closing anything, as a
    cut network does: bytes are swallowed, no connection sees an end."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Partition:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self._writers += [writer, upstream_writer]
        for source, target in ((reader, upstream_writer), (upstream_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, target))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                if not self.cut:
                    target.write(data)
                    await target.drain()
        except ConnectionError:
            pass
        finally:
            target.close()


async def test_local_backplane_delivers_synchronously() -> None:
    backplane = LocalBackplane()
    inbox = Inbox()
    backplane.publish("group:1", b"before start")
    await backplane.start(inbox)

    backplane.publish("group:1", b"now")

    assert inbox.events == [("group:1", b"now")]
    assert backplane.healthy and backplane.status() == "ok"
    await backplane.close()
    backplane.publish("group:1", b"after close")
    assert inbox.events == [("group:1", b"now")]


@pytest.mark.parametrize(("topic", "payload"), AWKWARD_EVENTS)
def test_frames_carry_any_topic_and_payload(topic: str, payload: bytes) -> None:
    frame = encode_frame(b"instance-a", topic, payload)
    assert decode_frame(frame) == (b"instance-a", topic, payload)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x01\x00",
        b"\x02" + bytes(6),
        b"\x01\x05\x00\x00\x00\x09abc",
        b"\x01\x00\x00\x00\x00\x01\xff",
    ],
)
def test_broken_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (each case has its own message)
        decode_frame(frame)


async def test_event_reaches_each_instance_exactly_once(redis_server: RedisServer) -> None:
    async with (
        instance(redis_server.url) as (a, a_inbox),
        instance(redis_server.url) as (b, b_inbox),
    ):
        assert a.healthy and b.healthy and a.status() == "ok"

        for index, (topic, payload) in enumerate(AWKWARD_EVENTS, start=1):
            a.publish(topic, payload)
            # Local delivery happens inside publish, before any Redis round trip.
            assert a_inbox.events[-1] == (topic, payload) and len(a_inbox.events) == index

        assert await b_inbox.wait_for(len(AWKWARD_EVENTS)) == AWKWARD_EVENTS
        # A's own events came back to it from Redis before B's marker did,
        # and were ignored.
        await crossed(b, a_inbox, b"from b")
        await crossed(a, b_inbox, b"from a")
        assert a_inbox.events == [*AWKWARD_EVENTS, ("marker", b"from b"), ("marker", b"from a")]
        assert b_inbox.events == [*AWKWARD_EVENTS, ("marker", b"from b"), ("marker", b"from a")]
        # The batch stays pending until Redis answers, which may be after B has it.
        await eventually(lambda: a.pending == 0, "A's answer from Redis")
        assert a.dropped == 0


async def test_thousands_of_events_arrive_in_publish_order(redis_server: RedisServer) -> None:
    async with instance(redis_server.url) as (a, _), instance(redis_server.url) as (_, b_inbox):
        sent = [(f"group:{n % 7}", f'{{"seq":{n}}}'.encode()) for n in range(2000)]
        for topic, payload in sent:
            a.publish(topic, payload)

        assert await b_inbox.wait_for(len(sent)) == sent
        assert a.dropped == 0


async def test_instances_of_another_deployment_are_not_heard(redis_server: RedisServer) -> None:
    async with (
        instance(redis_server.url) as (a, _),
        instance(redis_server.url, prefix="other:events") as (_, other_inbox),
        instance(redis_server.url) as (_, b_inbox),
    ):
        a.publish("group:1", b"ours")
        await b_inbox.wait_for(1)
        assert other_inbox.events == []


async def test_foreign_messages_on_the_channel_are_ignored(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with instance(redis_server.url) as (a, _), instance(redis_server.url) as (b, b_inbox):
        intruder = redis.Redis.from_url(redis_server.url)
        try:
            for _ in range(3):
                await intruder.publish(a.channel, b"not a frame")
        finally:
            await intruder.aclose()
        await crossed(a, b_inbox, b"after the noise")

        assert b_inbox.events == [("marker", b"after the noise")]
        assert b.malformed == 3 and b.healthy
        await eventually(lambda: a.malformed == 3, "A to skip the noise too")
        assert sum("not a gortc frame" in r.message for r in caplog.records) == 2  # once each


async def test_outage_keeps_local_delivery_and_heals_by_itself(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gortc.hub.redis_backplane")
    async with (
        instance(redis_server.url) as (a, a_inbox),
        instance(redis_server.url) as (b, b_inbox),
    ):
        await crossed(a, b_inbox, b"before")

        redis_server.stop()
        a.publish("group:1", b"during the outage")
        assert a_inbox.events[-1] == ("group:1", b"during the outage")
        await eventually(lambda: not a.healthy and not b.healthy, "both to notice")
        for n in range(5):
            a.publish("group:1", f"still local {n}".encode())
        assert a_inbox.events[-1] == ("group:1", b"still local 4")
        # The first error may be the closed connection; reconnecting is refused.
        await eventually(lambda: "Connection refused" in a.status(), "the latest reason")
        status = a.status()
        assert status.startswith("redis unreachable since "), status
        assert "6 events not forwarded (0 dropped)" in status, status

        redis_server.start()
        await eventually(lambda: a.healthy and b.healthy, "both to reconnect")
        assert a.status() == "ok" and b.status() == "ok"
        await eventually(lambda: a.pending == 0, "A's backlog to be forwarded")
        await crossed(a, b_inbox, b"after, from a")
        await crossed(b, a_inbox, b"after, from b")

    # One line when each outage began and one when it ended, per instance,
    # however many events and reconnection attempts there were.
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("Redis unreachable") for m in messages) == 2, messages
    assert sum(m.startswith("Redis reachable again") for m in messages) == 2, messages


async def test_backlog_stays_bounded_while_redis_is_down(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gortc.hub.redis_backplane")
    bound, batch = 50, 10
    async with (
        instance(redis_server.url, backlog=bound, batch_size=batch) as (a, a_inbox),
        instance(redis_server.url) as (b, b_inbox),
    ):
        redis_server.stop()
        await eventually(lambda: not a.healthy, "A to notice")
        sent = [("group:1", f"{n}".encode()) for n in range(1000)]
        for n, (topic, payload) in enumerate(sent):
            a.publish(topic, payload)
            if n % 100 == 0:
                await asyncio.sleep(0.01)  # lets the publisher take a batch and fail
            assert a.pending <= bound + batch

        assert a_inbox.events == sent
        assert a.dropped == len(sent) - a.pending >= len(sent) - bound - batch
        assert f"({a.dropped} dropped)" in a.status()
        full = [r for r in caplog.records if "backlog full" in r.getMessage()]
        assert len(full) == 1

        redis_server.start()
        await eventually(lambda: a.healthy and b.healthy, "both to reconnect")
        await eventually(lambda: a.pending == 0, "A to forward its backlog")
        await crossed(a, b_inbox, b"after")
        # Best effort: what crossed did so in order, and no more than was kept.
        outage = [event for event in b_inbox.events if event[0] == "group:1"]
        assert outage == sorted(outage, key=lambda event: int(event[1]))
        assert len(outage) <= bound + batch
        assert any("were dropped" in r.getMessage() for r in caplog.records)


async def test_start_while_redis_is_down_then_connects(redis_server: RedisServer) -> None:
    redis_server.stop()
    async with (
        instance(redis_server.url) as (a, a_inbox),
        instance(redis_server.url) as (b, b_inbox),
    ):
        assert not a.healthy and "redis unreachable" in a.status()
        a.publish("group:1", b"local anyway")
        assert a_inbox.events == [("group:1", b"local anyway")]

        redis_server.start()
        await eventually(lambda: a.healthy and b.healthy, "both to connect")
        await crossed(b, a_inbox, b"hello")
        await crossed(a, b_inbox, b"hello back")


async def test_a_silent_network_is_noticed_and_survived(redis_server: RedisServer) -> None:
    async with Partition(redis_server.port) as partition:
        url = f"redis://127.0.0.1:{partition.port}/0"

        def through_partition() -> redis.Redis:
            # Each attempt through the cut network gives up quickly.
            return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

        async with (
            instance(redis_server.url) as (b, b_inbox),
            instance(through_partition, ping_interval=0.2) as (a, a_inbox),
        ):
            await crossed(a, b_inbox, b"before")
            partition.cut = True
            # Nothing closed: only the unanswered PING tells.
            await eventually(lambda: not a.healthy, "A to notice the silence")
            assert "no answer to PING" in a.status() or "Timeout" in a.status()

            partition.cut = False
            await eventually(lambda: a.healthy, "A to reconnect")
            await crossed(b, a_inbox, b"after, from b")
            await crossed(a, b_inbox, b"after, from a")


async def test_close_leaves_nothing_running(redis_server: RedisServer) -> None:
    assert backplane_tasks() == set()
    backplane = RedisBackplane(redis_server.url, **FAST_BACKOFF)
    assert backplane.status() == "not started" and not backplane.healthy
    inbox = Inbox()
    await backplane.start(inbox)
    assert len(backplane_tasks()) == 2
    backplane.publish("group:1", b"last words")

    await backplane.close()

    assert backplane_tasks() == set()
    assert backplane.pending == 0  # forwarded before closing
    assert backplane.status() == "closed" and not backplane.healthy
    backplane.publish("group:1", b"too late")
    assert inbox.events == [("group:1", b"last words")]
    await backplane.close()


async def test_close_does_not_wait_to_forward_during_an_outage(redis_server: RedisServer) -> None:
    # A flush that cannot happen would hold shutdown for the whole minute.
    backplane = RedisBackplane(redis_server.url, flush_timeout=60.0, **FAST_BACKOFF)
    await backplane.start(Inbox())
    redis_server.stop()
    await eventually(lambda: not backplane.healthy, "the outage to be noticed")
    backplane.publish("group:1", b"never forwarded")

    async with asyncio.timeout(DEADLINE_SECONDS):
        await backplane.close()

    assert backplane_tasks() == set()
