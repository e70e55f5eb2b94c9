"""Events shared between gortc instances through Redis pub/sub.

Channel layout: every instance of one deployment publishes to and subscribes
to ONE channel, ``prefix`` (``gortc:events`` by default); two deployments on
one Redis use two prefixes. A channel per topic (or a pattern subscription)
would spare an instance the events of topics it has no client for, but an
instance holds thousands of topics (one per group and per user): it would
SUBSCRIBE and UNSUBSCRIBE as clients come and go, replay all of them after
every reconnection, and pattern subscriptions make every PUBLISH on the
server cost one match per pattern. With one channel a PUBLISH costs one
write per instance, there is nothing to replay, and all events from one
instance arrive at the others in the order they were published. What an
instance receives for a topic without local subscribers costs one dict
lookup in the hub.

Frame: each Redis message is ``!BBI`` (format version, sender length, topic
length in bytes), the sender id, the topic in UTF-8 and then the payload up
to the end of the message. Lengths, never separators, delimit the fields, so
no byte of a topic or payload can be mistaken for framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from gortc.hub.backplane import Deliver
from gortc.hub.redis_support import (
    Backoff,
    client_from_url,
    describe_failure,
    reraise_if_cancelled,
)

log = logging.getLogger(__name__)

FRAME_VERSION = 1
_HEADER = struct.Struct("!BBI")
# Topics keep any str, lone surrogates included, through a round trip.
_TOPIC_ERRORS = "surrogatepass"


_SUBSCRIBER = "subscriber"
_PUBLISHER = "publisher"


def encode_frame(sender: bytes, topic: str, payload: bytes) -> bytes:
    """One Redis message carrying who sent ``payload`` and for which topic."""
    encoded_topic = topic.encode("utf-8", _TOPIC_ERRORS)
    header = _HEADER.pack(FRAME_VERSION, len(sender), len(encoded_topic))
    return b"".join((header, sender, encoded_topic, payload))


def decode_frame(frame: bytes) -> tuple[bytes, str, bytes]:
    """(sender, topic, payload); raises ValueError for anything else."""
    if len(frame) < _HEADER.size:
        raise ValueError(f"frame of {len(frame)} bytes is shorter than its header")
    version, sender_length, topic_length = _HEADER.unpack_from(frame)
    if version != FRAME_VERSION:
        raise ValueError(f"unknown frame version {version}")
    topic_start = _HEADER.size + sender_length
    payload_start = topic_start + topic_length
    if payload_start > len(frame):
        raise ValueError("frame is shorter than its header says")
    sender = frame[_HEADER.size : topic_start]
    try:
        topic = frame[topic_start:payload_start].decode("utf-8", _TOPIC_ERRORS)
    except UnicodeDecodeError as exc:
        raise ValueError(f"topic is not UTF-8: {exc}") from exc
    return sender, topic, frame[payload_start:]


class RedisBackplane:
    """Delivers each event here at once and to the other instances through Redis.

    ``redis`` is a URL (``redis://host:6379/0``) or a function returning a
    new ``redis.asyncio.Redis``; either way the backplane owns that client
    and closes it. A client from a factory should not retry by itself (the
    ``from_url`` default): its retries would hide an outage for seconds.

    ``publish`` never waits on Redis: the event goes to ``deliver`` first,
    then into a backlog of at most ``backlog`` events (plus one batch of at
    most ``batch_size`` being sent) that one task forwards in order. When the
    backlog is full the oldest events are dropped and counted (the newest
    matter most: presence and typing are current, and missed messages are
    recovered by ``sync``).

    Cross-instance delivery during an outage is best effort. Local delivery
    never stops; the subscriber and the publisher reconnect by themselves
    with exponential backoff and jitter; what other instances published
    while this one was not subscribed is lost, and what this one published
    is forwarded after the reconnection only if it is still in the backlog
    (and reaches only the instances already subscribed again). A batch cut by
    a lost connection is sent again, so an event may rarely arrive twice.
    Clients recover both ways with ``sync``.
    """

    def __init__(
        self,
        redis: str | Callable[[], Redis],
        *,
        prefix: str = "gortc:events",
        instance_id: str | None = None,
        backlog: int = 10_000,
        batch_size: int = 256,
        backoff_min: float = 0.1,
        backoff_max: float = 5.0,
        ping_interval: float = 5.0,
        start_timeout: float = 5.0,
        flush_timeout: float = 2.0,
    ) -> None:
        self.instance_id = instance_id if instance_id is not None else uuid.uuid4().hex
        self._sender = self.instance_id.encode("utf-8")
        if not 0 < len(self._sender) <= 255:
            raise ValueError("instance_id must be 1 to 255 bytes in UTF-8")
        if backlog < 1 or batch_size < 1:
            raise ValueError("backlog and batch_size must be positive")
        if not 0 < backoff_min <= backoff_max:
            raise ValueError("backoff needs 0 < backoff_min <= backoff_max")
        if min(ping_interval, start_timeout, flush_timeout) <= 0:
            raise ValueError("ping_interval, start_timeout and flush_timeout must be positive")
        self.channel = prefix
        self._redis = redis
        self._backlog_size = backlog
        self._batch_size = batch_size
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._ping_interval = ping_interval
        self._start_timeout = start_timeout
        self._flush_timeout = flush_timeout

        self._deliver: Deliver | None = None
        self._client: Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._closed = False
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=backlog)
        # The batch being sent stays here until Redis took it, so a lost
        # connection does not lose it.
        self._in_flight: list[bytes] = []
        # Set while nothing waits to be forwarded; close() waits on it.
        self._idle = asyncio.Event()
        self._idle.set()
        self._first_attempt = asyncio.Event()

        self._dropped = 0
        self._dropping = False
        self._dropped_before_episode = 0
        self._dropped_at_outage = 0
        self._malformed = 0
        # role -> why it cannot reach Redis; empty when healthy.
        self._failing: dict[str, str] = {}
        self._down_since: datetime | None = None

    # -- the Backplane protocol ------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        """Begins delivering; returns once subscribed, or once the first
        attempt failed (then keeps trying in the background), or after
        ``start_timeout`` seconds."""
        if self._started:
            raise RuntimeError("the backplane is already started")
        self._started = True
        self._deliver = deliver
        client = self._redis() if callable(self._redis) else client_from_url(self._redis)
        self._client = client
        self._tasks = [
            asyncio.create_task(self._subscribe_forever(client), name="gortc-backplane-subscriber"),
            asyncio.create_task(self._publish_forever(client), name="gortc-backplane-publisher"),
        ]
        # Waiting for the subscription means an instance that reports itself
        # started already receives the others' events.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._start_timeout):
                await self._first_attempt.wait()

    def publish(self, topic: str, payload: bytes) -> None:
        if self._closed:
            return
        if self._deliver is not None:
            self._deliver(topic, payload)
        frame = encode_frame(self._sender, topic, payload)
        self._idle.clear()
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(frame)
            self._count_drop()

    def status(self) -> str:
        if self._closed:
            return "closed"
        if not self._started:
            return "not started"
        if not self._failing or self._down_since is None:
            return "ok"
        reason = next(reversed(self._failing.values()))
        dropped = self._dropped - self._dropped_at_outage
        return (
            f"redis unreachable since {self._down_since:%Y-%m-%d %H:%M:%S} UTC: {reason}; "
            f"{self.pending + dropped} events not forwarded ({dropped} dropped)"
        )

    @property
    def healthy(self) -> bool:
        return self._started and not self._closed and not self._failing

    async def close(self) -> None:
        """Forwards what is left (for up to ``flush_timeout`` seconds, and only
        while Redis is reachable), then stops both tasks and the client."""
        if self._closed:
            return
        if self._started and not self._failing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_timeout):
                    await self._idle.wait()
        self._closed = True
        self._deliver = None
        for task in self._tasks:
            task.cancel()
        # Bounded: shutting down must never hang on a task stuck in a driver.
        _, stuck = await asyncio.wait(self._tasks, timeout=5.0)
        for task in stuck:
            log.warning("backplane task %s did not stop in time", task.get_name())
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- figures for tests and metrics ----------------------------------

    @property
    def pending(self) -> int:
        """Events waiting to be forwarded to the other instances."""
        return self._queue.qsize() + len(self._in_flight)

    @property
    def dropped(self) -> int:
        """Events never forwarded because the backlog was full."""
        return self._dropped

    @property
    def malformed(self) -> int:
        """Messages on the channel that were not frames and were ignored."""
        return self._malformed

    # -- the two tasks ----------------------------------------------------

    async def _subscribe_forever(self, client: Redis) -> None:
        backoff = Backoff(self._backoff_min, self._backoff_max)
        while True:
            pubsub = client.pubsub()
            try:
                await self._listen(pubsub, backoff)
            except Exception as exc:  # any failure means: reconnect
                reraise_if_cancelled(exc)
                self._failed(_SUBSCRIBER, exc)
            finally:
                self._first_attempt.set()
                await _close_quietly(pubsub)
            await asyncio.sleep(backoff.next_delay())

    async def _listen(self, pubsub: PubSub, backoff: Backoff) -> None:
        await pubsub.subscribe(self.channel)
        # SUBSCRIBE is only sent above; until Redis confirms it, events
        # published by the others would not reach us.
        confirmation = await pubsub.get_message(timeout=self._ping_interval)
        if confirmation is None or confirmation["type"] != "subscribe":
            raise RedisConnectionError(f"Redis did not confirm SUBSCRIBE: {confirmation!r}")
        backoff.reset()
        self._recovered(_SUBSCRIBER)
        self._first_attempt.set()
        loop = asyncio.get_running_loop()
        # A connection cut without a FIN (a network partition) would stay
        # silent forever; a PING after a quiet spell finds it out.
        quiet_until = loop.time() + self._ping_interval
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=max(0.0, quiet_until - loop.time()))
            if message is None:
                if loop.time() < quiet_until:
                    continue
                if pinged:
                    raise RedisConnectionError(f"no answer to PING in {self._ping_interval} s")
                await pubsub.ping()
                pinged = True
                quiet_until = loop.time() + self._ping_interval
                continue
            pinged = False
            quiet_until = loop.time() + self._ping_interval
            if message["type"] == "message":
                self._receive(message["data"])

    def _receive(self, frame: Any) -> None:
        try:
            sender, topic, payload = decode_frame(bytes(frame))
        except ValueError as exc:
            self._malformed += 1
            if self._malformed == 1:
                # Someone else publishes on our channel: say it once, not per message.
                log.warning(
                    "ignoring a message on %s that is not a gortc frame: %s", self.channel, exc
                )
            return
        # Our own events were delivered by publish() already.
        if sender == self._sender or self._deliver is None:
            return
        try:
            self._deliver(topic, payload)
        except Exception:  # a bug in the hub must not stop the subscription
            log.exception("delivering a remote event for %s failed", topic)

    async def _publish_forever(self, client: Redis) -> None:
        backoff = Backoff(self._backoff_min, self._backoff_max)
        while True:
            if not self._in_flight:
                self._in_flight.append(await self._queue.get())
                while len(self._in_flight) < self._batch_size and not self._queue.empty():
                    self._in_flight.append(self._queue.get_nowait())
            try:
                # One round trip per batch, and one connection, which keeps
                # the publish order.
                async with client.pipeline(transaction=False) as pipe:
                    for frame in self._in_flight:
                        pipe.publish(self.channel, frame)
                    await pipe.execute()
            except Exception as exc:  # any failure means: reconnect and resend
                reraise_if_cancelled(exc)
                self._failed(_PUBLISHER, exc)
                await asyncio.sleep(backoff.next_delay())
                continue
            self._in_flight.clear()
            backoff.reset()
            self._recovered(_PUBLISHER)
            if self._queue.empty():
                self._backlog_forwarded()

    # -- bookkeeping ------------------------------------------------------

    def _count_drop(self) -> None:
        self._dropped += 1
        if not self._dropping:
            self._dropping = True
            self._dropped_before_episode = self._dropped - 1
            log.warning(
                "backplane backlog full (%d events): dropping the oldest events for the "
                "other instances until Redis takes them again",
                self._backlog_size,
            )

    def _backlog_forwarded(self) -> None:
        self._idle.set()
        if self._dropping:
            self._dropping = False
            log.info(
                "backplane backlog forwarded; %d events for the other instances were dropped",
                self._dropped - self._dropped_before_episode,
            )

    def _failed(self, role: str, exc: Exception) -> None:
        if not isinstance(exc, RedisError | OSError):
            log.error("backplane %s failed unexpectedly", role, exc_info=exc)
        reason = describe_failure(exc)
        outage_begins = not self._failing
        # Re-inserted so that status() tells the latest reason.
        self._failing.pop(role, None)
        self._failing[role] = reason
        if outage_begins:
            self._down_since = datetime.now(UTC)
            self._dropped_at_outage = self._dropped
            log.warning(
                "Redis unreachable (%s): events reach this instance's clients only; "
                "up to %d are kept for the other instances",
                reason,
                self._backlog_size,
            )

    def _recovered(self, role: str) -> None:
        if self._failing.pop(role, None) is None or self._failing:
            return
        since = self._down_since
        self._down_since = None
        seconds = (datetime.now(UTC) - since).total_seconds() if since else 0.0
        log.info("Redis reachable again after %.1f s", seconds)


async def _close_quietly(pubsub: PubSub) -> None:
    try:
        await pubsub.aclose()
    except Exception:  # the connection is being discarded anyway
        log.debug("closing the pub/sub connection failed", exc_info=True)
