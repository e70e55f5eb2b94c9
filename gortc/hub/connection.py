"""One client's WebSocket: a bounded outgoing queue and its one writer task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from aiohttp import WSMsgType, web

from gortc.hub.frames import Frame

log = logging.getLogger(__name__)

CLOSE_SESSION_ENDED = 4001
CLOSE_TOO_SLOW = 4008


@dataclass(frozen=True, slots=True)
class QueueLimits:
    max_frames: int = 1024  # past this the client is too slow: evicted
    high_water: int = 256  # above this for evict_after seconds: evicted
    evict_after: float = 5.0
    # Frames go straight to the socket while its kernel-side backlog in the
    # transport stays under this; above it they queue.
    transport_buffer: int = 64 * 1024


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...

    def abort(self) -> None: ...


class WriteBatcher:
    """Gathers the frames sent to each connection during one turn of the
    event loop and writes them with one system call per connection.

    A group commit wakes dozens of senders in the same turn, and each of
    their messages goes to every member: written one by one, that is one
    ``send()`` per frame per member, which is where a busy server spent
    most of its time. Frames wait at most until the next turn."""

    def __init__(self) -> None:
        self._due: list[Connection] = []

    def add(self, connection: Connection) -> None:
        if not self._due:
            asyncio.get_running_loop().call_soon(self._flush)
        self._due.append(connection)

    def _flush(self) -> None:
        due, self._due = self._due, []
        for connection in due:
            connection.flush()


class Connection:
    """Publishing to a connection never waits. A frame is written to the
    socket at the end of the current event-loop turn, together with the
    others sent to it in that turn, when nothing is queued ahead of it and
    the socket keeps up; otherwise it joins a bounded queue that the writer
    task drains at the pace the client reads. A client that falls too far
    behind is closed with 4008 "too slow"; it can reconnect and catch up
    with ``sync``."""

    def __init__(
        self,
        *,
        connection_id: str,
        user_id: str,
        session_id: str,
        jti: str | None,
        ws: web.WebSocketResponse,
        transport: Transport,
        limits: QueueLimits,
        batcher: WriteBatcher,
    ) -> None:
        self.id = connection_id
        self.user_id = user_id
        self.session_id = session_id
        self.jti = jti  # the access token it was opened with, if any
        self.topics: set[str] = set()
        self._ws = ws
        self._transport = transport
        self._limits = limits
        self._batcher = batcher
        # Frames of this turn, not yet written; None (not an empty list) at
        # rest, as most of 10,000 connections are most of the time.
        self._outbox: list[Frame] | None = None
        self._queue: deque[Frame] = deque()
        self._wakeup = asyncio.Event()
        self._above_high_water_since: float | None = None
        self._closing = False
        self.evicted = False  # closed for being too slow
        # Started the first time this client falls behind: most never do,
        # and an idle task per connection costs memory at 10,000 sockets.
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    def send(self, frame: Frame) -> None:
        if self._closing:
            return
        if self._queue:
            self._enqueue(frame)  # behind the frames already waiting
            return
        outbox = self._outbox
        if outbox is None:
            self._outbox = [frame]
            self._batcher.add(self)
        else:
            outbox.append(frame)

    def flush(self) -> None:
        """Writes this turn's frames (called by the batcher)."""
        frames, self._outbox = self._outbox, None
        if frames is None or self._closing:
            return
        transport = self._transport
        if transport.is_closing() or self._ws.closed:
            return  # no data may follow a close frame; the client is leaving
        if not self._queue and transport.get_write_buffer_size() < self._limits.transport_buffer:
            if len(frames) == 1:
                transport.write(frames[0].wire)
            else:
                transport.write(b"".join([frame.wire for frame in frames]))
            return
        for frame in frames:
            self._enqueue(frame)

    def _enqueue(self, frame: Frame) -> None:
        if self._closing:
            return
        if len(self._queue) >= self._limits.max_frames:
            self.close(CLOSE_TOO_SLOW, "too slow")
            return
        self._queue.append(frame)
        if len(self._queue) > self._limits.high_water:
            now = time.monotonic()
            if self._above_high_water_since is None:
                self._above_high_water_since = now
            elif now - self._above_high_water_since > self._limits.evict_after:
                self.close(CLOSE_TOO_SLOW, "too slow")
                return
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name=f"gortc-writer-{self.id}")
        self._wakeup.set()

    async def _drain(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue and not self._closing:
                frame = self._queue.popleft()
                try:
                    # Waits while the socket's buffers are full: the pace of
                    # a slow reader is absorbed here, never by publishers.
                    await self._ws.send_frame(frame.payload, WSMsgType.TEXT)
                except (ConnectionError, RuntimeError):
                    self._closing = True
                    self._queue.clear()
                    return
                if len(self._queue) <= self._limits.high_water:
                    self._above_high_water_since = None

    @property
    def queued(self) -> int:
        """Frames waiting for the writer task."""
        return len(self._queue)

    def close(self, code: int, reason: str) -> None:
        """Closes with a close frame if the client still reads, else cuts it."""
        if self._closing:
            return
        self._closing = True
        self.evicted = code == CLOSE_TOO_SLOW
        self._queue.clear()
        self._outbox = None
        log.info("closing connection %s of user %s: %d %s", self.id, self.user_id, code, reason)
        self._closer = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(2.0):
                await self._ws.close(code=code, message=reason.encode())
        except (TimeoutError, ConnectionError, RuntimeError):
            self._transport.abort()

    async def stop(self) -> None:
        """Ends the writer (the socket is gone)."""
        self._closing = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._closer is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._closer
