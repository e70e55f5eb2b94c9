"""Encoded frames from one publisher to many subscribers, never decoded.

A :class:`Source` is one track a participant publishes; it receives the
encoded frames the receiver tapped (see aiortc_hooks) and hands each, as one
shared ``av.Packet``, to a :class:`ForwardedTrack` per subscriber. aiortc's
sender packetises an ``av.Packet`` without encoding it.

A decoder that starts mid-stream, or after a gap, shows garbage or nothing
until the next keyframe, so a video subscriber takes frames only from a
keyframe on, and asks the publisher for one when it starts, overflows or
resumes after a mute: the source relays those requests, at most one per
``keyframe_interval`` (the publisher's encoder pays for each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction

import av
from aiortc import MediaStreamTrack, RTCRtpCodecParameters
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from gortc.entities.calls import TrackSource

log = logging.getLogger(__name__)

# Video frames a subscriber may have waiting before it is deemed too slow:
# about two seconds at 30 fps. Audio frames are 20 ms each: about one second.
VIDEO_QUEUE_FRAMES = 60
AUDIO_QUEUE_FRAMES = 50

FORWARDABLE_CODECS = frozenset({"video/vp8", "video/h264", "audio/opus"})


def is_keyframe(mime_type: str, data: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own. VP8: the frame
    tag's P bit is 0 (RFC 6386 9.1). H.264 (Annex-B, as aiortc depacketises
    it): an IDR slice (NAL type 5) or a sequence parameter set (7) is in it."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return bool(data) and data[0] & 0x01 == 0
    if mime == "video/h264":
        start = data.find(b"\x00\x00\x01")
        while start != -1 and start + 3 < len(data):
            if data[start + 3] & 0x1F in (5, 7):
                return True
            start = data.find(b"\x00\x00\x01", start + 3)
        return False
    return True  # audio: every frame stands alone


class ForwardedTrack(MediaStreamTrack):
    """The track a subscriber's sender reads: a bounded queue of encoded
    packets from one source at a time. It lives as long as its SDP section,
    which carries another publisher's track after the first one left (so a
    long call does not pile up sections, and the sender's loop goes on)."""

    def __init__(self, kind: str, track_id: str) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_id
        self._on_keyframe_needed: Callable[[], None] | None = None
        self._limit = VIDEO_QUEUE_FRAMES if kind == "video" else AUDIO_QUEUE_FRAMES
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()
        self.waiting_for_keyframe = kind == "video"
        self.dropped = 0
        self.forwarded = 0

    def push(self, packet: av.Packet, keyframe: bool) -> None:
        if self.readyState == "ended":
            return
        if self.waiting_for_keyframe:
            if not keyframe:
                self.dropped += 1
                return
            self.waiting_for_keyframe = False
        if self._queue.qsize() >= self._limit:
            # The subscriber's sender is not keeping up: start again from a
            # keyframe rather than send it an ever older backlog.
            self.dropped += self._queue.qsize()
            while not self._queue.empty():
                self._queue.get_nowait()
            if self.kind == "video" and not keyframe:
                self.restart_at_keyframe()
                return
        self._queue.put_nowait(packet)

    def restart_at_keyframe(self) -> None:
        """Skips frames until the next keyframe, and asks for one."""
        if self.kind != "video":
            return
        self.waiting_for_keyframe = True
        if self._on_keyframe_needed is not None:
            self._on_keyframe_needed()

    def connect(self, on_keyframe_needed: Callable[[], None]) -> None:
        """Frames now come from a (new) source: they start at a keyframe."""
        self._on_keyframe_needed = on_keyframe_needed
        self.waiting_for_keyframe = self.kind == "video"

    def disconnect(self) -> None:
        """The source is gone: what it left waiting is of no use."""
        self._on_keyframe_needed = None
        while not self._queue.empty():
            self._queue.get_nowait()

    async def recv(self) -> av.Packet:
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.forwarded += 1
        return packet

    def stop(self) -> None:
        if self.readyState != "ended":
            self._queue.put_nowait(None)  # ends the sender's loop
        super().stop()


class Source:
    """One published track and the subscribers it is forwarded to."""

    def __init__(
        self,
        *,
        kind: str,
        publisher_id: str,
        send_keyframe_request: Callable[[], Awaitable[bool]],
        keyframe_interval: float,
        shows: TrackSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.publisher_id = publisher_id
        # What subscribers are told the track is (call.offer's "source").
        self.shows = shows or (TrackSource.MICROPHONE if kind == "audio" else TrackSource.CAMERA)
        self.codec: RTCRtpCodecParameters | None = None
        self.muted = False
        self.frames = 0
        self.forwarded = 0  # frames handed to subscribers (one per subscriber)
        self.keyframe_requests = 0
        self._sinks: set[ForwardedTrack] = set()
        self._time_base = Fraction(1, 90000)
        self._send_keyframe_request = send_keyframe_request
        self._keyframe_interval = keyframe_interval
        self._clock = clock
        self._last_request = -keyframe_interval
        self._pending_request: asyncio.TimerHandle | None = None
        self._request_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def mime_type(self) -> str | None:
        return self.codec.mimeType.lower() if self.codec else None

    def set_codec(self, codec: RTCRtpCodecParameters) -> None:
        self.codec = codec
        self._time_base = Fraction(1, codec.clockRate)

    def on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        """The tap's sink: runs on the event loop for every received frame."""
        self.frames += 1
        if self.muted or not self._sinks:
            return
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = self._time_base
        keyframe = is_keyframe(codec.mimeType, frame.data)
        self.forwarded += len(self._sinks)
        for sink in self._sinks:
            sink.push(packet, keyframe)

    def subscribe(self, sink: ForwardedTrack) -> None:
        """Forwards to ``sink`` from the next keyframe on, which is asked for now."""
        sink.connect(self.ask_for_keyframe)
        self._sinks.add(sink)
        if self.kind == "video":
            self.ask_for_keyframe()

    def unsubscribe(self, sink: ForwardedTrack) -> None:
        self._sinks.discard(sink)
        sink.disconnect()

    @property
    def subscribers(self) -> int:
        return len(self._sinks)

    def set_muted(self, muted: bool) -> None:
        was_muted, self.muted = self.muted, muted
        if was_muted and not muted:
            # The frames skipped while muted are what the next ones refer to.
            for sink in self._sinks:
                sink.waiting_for_keyframe = True
            self.ask_for_keyframe()

    def ask_for_keyframe(self) -> None:
        """Asks the publisher for a keyframe: now, or when the interval since
        the last request is over (one request then covers every asker)."""
        if self.kind != "video" or self._closed or self._pending_request is not None:
            return
        if self.muted:
            # Nothing is forwarded (a screen not shared may send nothing to
            # address at all): unmuting asks.
            return
        wait = self._last_request + self._keyframe_interval - self._clock()
        loop = asyncio.get_running_loop()
        self._pending_request = loop.call_later(max(wait, 0.0), self._send_request)

    def _send_request(self) -> None:
        self._pending_request = None
        if self._closed:
            return
        self._last_request = self._clock()
        self.keyframe_requests += 1
        if self._request_task is None or self._request_task.done():
            self._request_task = asyncio.create_task(self._request())

    async def _request(self) -> None:
        try:
            if not await self._send_keyframe_request():
                # Nothing received yet to address: try again shortly.
                self._last_request = self._clock() - self._keyframe_interval + 0.1
                self.ask_for_keyframe()
        except ConnectionError:
            pass  # the publisher is going; its departure is handled elsewhere
        except Exception:
            log.exception("keyframe request to %s failed", self.publisher_id)

    async def close(self) -> None:
        self._closed = True
        if self._pending_request is not None:
            self._pending_request.cancel()
            self._pending_request = None
        for sink in list(self._sinks):
            self.unsubscribe(sink)
        if self._request_task is not None:
            self._request_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._request_task
