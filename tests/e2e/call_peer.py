"""A call participant for tests: a real aiortc peer connection that sends
encoded video (a solid colour of its own, so a receiver can tell whose frames
it decoded) and Opus audio, and a WebSocket that does its signaling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack

from gortc.media.aiortc_hooks import on_keyframe_request, use_host_addresses

WIDTH, HEIGHT = 160, 120
VP8_ONLY = ("VP8", "rtx")


class ColourTrack(VideoStreamTrack):
    """30 fps VP8 of one grey level (the Y plane), from an encoder of its own
    that makes a keyframe first and then only when a keyframe request
    arrives (aiortc's own encoder also makes one whenever the bandwidth
    estimate moves, which would hide a missing request relay)."""

    def __init__(self, luma: int) -> None:
        super().__init__()
        self.luma = luma
        self.keyframe_requests: list[float] = []
        self._force_keyframe = True
        self._encoder = av.CodecContext.create("libvpx", "w")
        self._encoder.width = WIDTH
        self._encoder.height = HEIGHT
        self._encoder.pix_fmt = "yuv420p"
        self._encoder.time_base = Fraction(1, 30)
        self._encoder.bit_rate = 300_000
        self._encoder.gop_size = 100_000  # no keyframes but the requested ones
        self._encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        self._index = 0

    def request_keyframe(self) -> None:
        self.keyframe_requests.append(time.monotonic())
        self._force_keyframe = True

    async def recv(self) -> av.Packet:  # type: ignore[override]
        await self.next_timestamp()  # paces at 30 fps
        planes = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
        planes[:HEIGHT] = self.luma
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = self._index
        frame.time_base = Fraction(1, 30)
        if self._force_keyframe:
            frame.pict_type = av.video.frame.PictureType.I
            self._force_keyframe = False
        self._index += 1
        packets = self._encoder.encode(frame)
        assert len(packets) == 1
        return packets[0]


class Received:
    """What one remote track delivered, decoded."""

    def __init__(self) -> None:
        self.frames = 0
        self.first_at: float | None = None
        self.lumas: list[float] = []


class CallPeer:
    def __init__(
        self,
        client: TestClient | ClientSession,  # a session with a base_url: a real process
        user: dict[str, Any],
        tokens: dict[str, Any],
    ) -> None:
        use_host_addresses(["127.0.0.1"])
        self.client = client
        self.user_id: str = user["id"]
        self.tokens = tokens
        self.ws: ClientWebSocketResponse | None = None
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames: list[dict[str, Any]] = []  # every frame the server sent
        self.received: dict[tuple[str, str], Received] = defaultdict(Received)
        # mid -> (user_id, kind), or (user_id, "screen") for a shared screen
        self.track_owner: dict[str, tuple[str, str]] = {}
        self.offers = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._arrived = asyncio.Event()
        self.video: ColourTrack | None = None
        self.screen: ColourTrack | None = None
        self.sources: dict[str, str] = {}  # mid -> what the offer said it shows

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
            owner = self.track_owner.get(transceiver.mid or "", ("?", track.kind))
            self._tasks.append(asyncio.create_task(self._consume(track, owner)))

    async def connect(self) -> None:
        self.ws = await self.client.ws_connect(
            "/api/v1/ws", headers={"Authorization": f"Bearer {self.tokens['access_token']}"}
        )
        self._tasks.append(asyncio.create_task(self._read()))
        await self.wait_for("ready")

    async def join(
        self,
        group_id: str,
        *,
        luma: int = 200,
        audio: bool = True,
        video: bool = True,
        screen_luma: int | None = None,
    ) -> dict[str, Any]:
        """Sends call.join with a full offer; returns the server's reply
        (call.answer, or the error) once it arrived and was applied. With
        ``screen_luma``, a second video section sends a screen of that grey
        (shared once call.mute kind "screen" muted false says so)."""
        if video:
            self.video = ColourTrack(luma)
            self._send_video(self.video)
        if screen_luma is not None:
            self.screen = ColourTrack(screen_luma)
            self._send_video(self.screen)
        if audio:
            self.pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        mark = len(self.frames)
        await self.send(type="call.join", group_id=group_id, sdp=self.pc.localDescription.sdp)
        # The read loop applies the answer (before any offer that follows it).
        return await self.wait_for("call.answer", "error", after=mark)

    def _send_video(self, track: ColourTrack) -> None:
        transceiver = self.pc.addTransceiver(track, direction="sendrecv")
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.name in VP8_ONLY]
        )
        on_keyframe_request(transceiver.sender, track.request_keyframe)

    async def send(self, **frame: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(frame))

    async def wait_for(self, *types: str, after: int = 0, timeout: float = 10.0) -> dict[str, Any]:
        """The first frame of one of ``types`` at or after index ``after``."""
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames[after:]:
                    if frame["type"] in types:
                        return frame
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_until(self, check: Any, timeout: float = 10.0) -> None:
        """Polls ``check()`` (bounded) until it is true."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.user_id}: condition not met in {timeout} s")
            await asyncio.sleep(0.05)

    def frames_from(self, user_id: str, kind: str) -> int:
        return self.received[(user_id, kind)].frames

    def participants(self) -> list[dict[str, Any]] | None:
        last = [f for f in self.frames if f["type"] == "call.participants"]
        return last[-1]["participants"] if last else None

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type is not WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame["type"] == "call.answer":
                await self.pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "answer"))
            elif frame["type"] == "call.offer":
                await self._answer(frame)
            self.frames.append(frame)
            self._arrived.set()
        self._arrived.set()

    async def _answer(self, offer: dict[str, Any]) -> None:
        self.offers += 1
        for track in offer["tracks"]:
            shows = "screen" if track.get("source") == "screen" else track["kind"]
            self.track_owner[track["mid"]] = (track["user_id"], shows)
            self.sources[track["mid"]] = track.get("source", "")
        await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.send(
            type="call.answer", group_id=offer["group_id"], sdp=self.pc.localDescription.sdp
        )

    async def _consume(self, track: MediaStreamTrack, owner: tuple[str, str]) -> None:
        got = self.received[owner]
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                got.frames += 1
                if got.first_at is None:
                    got.first_at = time.monotonic()
                if isinstance(frame, av.VideoFrame) and len(got.lumas) < 50:
                    got.lumas.append(float(frame.to_ndarray(format="gray").mean()))

    async def close(self, *, abruptly: bool = False) -> None:
        """Closes the connection; ``abruptly``: the socket drops without a
        WebSocket close handshake and the media stops without a goodbye."""
        if self.ws is not None:
            if abruptly:
                transport = self.ws._response.connection
                if transport is not None and transport.transport is not None:
                    transport.transport.abort()
            else:
                await self.ws.close()
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
