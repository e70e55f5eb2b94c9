"""Where an RTMP publisher's stream goes: the live service decides whether
its key may go live, and an HLS packager turns its media into a playlist
and segments under ``<data_dir>/live/<room>/``.

RTMP is, like HTTP, a way in; this module is its handler, the way
``delivery/websocket.py`` is the WebSocket's.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gortc.delivery.live import hls_directory
from gortc.entities.errors import Conflict, Unauthenticated, Unavailable
from gortc.entities.live import LiveRoom
from gortc.media.rtmp import PublishRefused
from gortc.media.stream_sink import StreamSink
from gortc.usecases.live import LiveService

log = logging.getLogger(__name__)


class Packager(StreamSink, Protocol):
    """A StreamSink that writes HLS; ``aclose`` waits until it is done."""

    @property
    def reason(self) -> str | None:
        """Why it gave up on the stream (malformed media...), or None."""
        ...

    @property
    def playlist_path(self) -> Path:
        """The playlist it keeps rewriting (its age is the stream's lag)."""
        ...

    async def aclose(self) -> None: ...


PackagerFactory = Callable[[Path], Packager]


class VideoFeed(Protocol):
    """Where a stream's video also goes (WHEP viewers)."""

    def video(self, timestamp_ms: int, body: bytes) -> None: ...


class StreamBroken(PublishRefused):
    """The stream's media cannot be packaged: the ingest tells the publisher
    why and closes its connection."""


class LiveIngest:
    """Implements the RTMP server's PublishAuthorizer."""

    def __init__(
        self,
        live: LiveService,
        data_path: Path,
        make_packager: PackagerFactory,
        *,
        max_publishers: int,
        stall_seconds: float | None = None,
        video_feed: Callable[[str], VideoFeed] | None = None,
    ) -> None:
        self._video_feed = video_feed
        self._live = live
        self._data_path = data_path
        self._make_packager = make_packager
        self._max_publishers = max_publishers
        self._streams: dict[str, _LiveStream] = {}
        self._finishing: set[asyncio.Task[None]] = set()
        # The ingest cuts off a publisher silent this long; a publish that
        # ends that silent was such a cut ("stalled", not "ended").
        self._stall_seconds = stall_seconds

    async def start_publishing(self, app: str, stream_name: str, peer: str) -> StreamSink:
        key = stream_name.split("?", 1)[0]
        if len(self._streams) >= self._max_publishers:
            raise PublishRefused("this server takes no more streams right now")
        try:
            room = await self._live.start(key)
        except Unauthenticated:
            log.info("refused a publisher from %s: invalid stream key", peer)
            raise PublishRefused("invalid stream key") from None
        except Conflict:
            raise PublishRefused("this stream key is already live") from None
        except Unavailable as exc:
            raise PublishRefused(exc.message) from None
        try:
            directory = hls_directory(self._data_path, room.id)
            await asyncio.to_thread(_fresh_directory, directory)
            packager = self._make_packager(directory)
        except Exception:
            log.exception("could not start packaging %s's stream", room.username)
            await self._live.end(room.id, "broken")
            raise PublishRefused("the server could not start your stream") from None
        log.info("%s is live (from %s)", room.username, peer)
        feed = self._video_feed(room.id) if self._video_feed is not None else None
        stream = _LiveStream(self, room, packager, feed)
        self._streams[room.id] = stream
        return stream

    def playlist_ages(self) -> list[float]:
        """Seconds since each stream's playlist last changed, or since the
        stream began if it has none yet (a stream that never makes a
        segment shows as ever later, not as fine)."""
        now = time.time()
        ages = []
        for stream in self._streams.values():
            try:
                changed = stream.packager.playlist_path.stat().st_mtime
            except OSError:
                changed = stream.started
            ages.append(max(0.0, now - changed))
        return ages

    def _finished(self, stream: _LiveStream) -> None:
        self._streams.pop(stream.room.id, None)
        task = asyncio.create_task(self._finish(stream))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(self, stream: _LiveStream) -> None:
        try:
            await stream.packager.aclose()
        except Exception:  # one stream's packaging must not take others down
            log.exception("packaging %s's stream ended badly", stream.room.username)
        failure = stream.packager.reason
        silent = time.monotonic() - stream.last_media
        if self._stall_seconds is not None and silent >= self._stall_seconds * 0.9:
            reason = "stalled"  # (what the packager then made of the rest is beside it)
        elif failure:
            reason = "broken"
        else:
            reason = "ended"
        if failure:
            log.warning("%s's stream was cut: %s", stream.room.username, failure)
        await self._live.end(stream.room.id, reason)
        log.info("%s's stream ended (%s)", stream.room.username, reason)

    async def close(self) -> None:
        """After the RTMP server stopped (every stream's end() was called)."""
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)


class _LiveStream:
    """One publisher's media on their way to the packager."""

    def __init__(
        self,
        ingest: LiveIngest,
        room: LiveRoom,
        packager: Packager,
        feed: VideoFeed | None,
    ) -> None:
        self._ingest = ingest
        self.room = room
        self.packager = packager
        self.started = time.time()
        self._feed = feed
        self._ended = False
        self.last_media = time.monotonic()

    def metadata(self, values: dict[str, object]) -> None:
        self.packager.metadata(values)

    def video(self, timestamp_ms: int, body: bytes) -> None:
        self.last_media = time.monotonic()
        self.packager.video(timestamp_ms, body)
        self._check()
        if self._feed is not None:
            self._feed.video(timestamp_ms, body)

    def audio(self, timestamp_ms: int, body: bytes) -> None:
        self.last_media = time.monotonic()
        self.packager.audio(timestamp_ms, body)
        self._check()

    def _check(self) -> None:
        # The ingest closes a publisher whose sink raises: a stream the
        # packager gave up on (a malformed frame, found as it is handed over;
        # a backlog it cannot clear) ends now rather than feeding nothing.
        reason = self.packager.reason
        if reason is not None:
            raise StreamBroken(reason)

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self.packager.end()
        self._ingest._finished(self)


def _fresh_directory(directory: Path) -> None:
    # A previous stream's playlist and segments are not this one's.
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
