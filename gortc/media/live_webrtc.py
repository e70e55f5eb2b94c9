"""Live rooms over WebRTC: WHIP publishers (RFC 9725) and WHEP viewers.

A room's media are :class:`~gortc.media.forwarding.Source` objects, as in a
call: from a WHIP publisher's connection (its receivers tapped, nothing
decoded), or, for a stream that came in over RTMP, its H.264 video
converted from FLV's length-prefixed form to the Annex-B form WebRTC senders
packetise (still no re-encoding). A WHEP viewer's connection gets a
send-only section per source, pinned to the source's codec.

RTMP's AAC audio has no WebRTC codec, and turning it into Opus means
decoding and encoding it; WHEP viewers of an RTMP stream get its video only
(HLS viewers get both).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpTransceiver,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcconfiguration import RTCBundlePolicy

from gortc.entities.calls import invalid_sdp
from gortc.entities.errors import Conflict, NotFound
from gortc.media import aiortc_hooks
from gortc.media.closing import close_quietly
from gortc.media.forwarding import FORWARDABLE_CODECS, ForwardedTrack, Source
from gortc.media.sfu import SfuSettings, describe_error, prefer_codec, session_description

log = logging.getLogger(__name__)

# What an RTMP stream's video is announced as to WHEP viewers: H.264 in
# packetization mode 1 (FU-A), the mode browsers offer first.
RTMP_VIDEO_CODEC = RTCRtpCodecParameters(
    mimeType="video/H264",
    clockRate=90000,
    parameters={
        "packetization-mode": "1",
        "level-asymmetry-allowed": "1",
        "profile-level-id": "42e01f",
    },
)
_START_CODE = b"\x00\x00\x00\x01"


@dataclass(eq=False)
class _Room:
    sources: list[Source] = field(default_factory=list)
    publisher: RTCPeerConnection | None = None
    viewers: dict[str, RTCPeerConnection] = field(default_factory=dict)
    viewer_ids: dict[str, str] = field(default_factory=dict)  # resource -> who watches


class LiveWebRtc:
    def __init__(self, settings: SfuSettings) -> None:
        aiortc_hooks.check_aiortc()
        if settings.host_addresses:
            aiortc_hooks.use_host_addresses(settings.host_addresses)
        self._settings = settings
        self._rooms: dict[str, _Room] = {}
        self._viewer_tracks: dict[str, list[tuple[Source, ForwardedTrack]]] = {}
        # Viewers being closed because their connection failed: held here
        # (the loop keeps only weak references to tasks) and awaited by
        # close(), so no socket outlives the server.
        self._closing: set[asyncio.Task[bool]] = set()

    # -- WHIP -------------------------------------------------------------------

    async def publish(self, room_id: str, offer_sdp: str, on_gone: Callable[[], None]) -> str:
        """A WHIP publisher's offer; returns the answer. ``on_gone`` runs
        when its connection fails or closes (not on :meth:`end_room`)."""
        if room_id in self._rooms:
            raise Conflict("this room already has media", code="already_live")
        pc = self._connection()
        room = _Room(publisher=pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            receiver = transceiver.receiver
            source = Source(
                kind=transceiver.kind,
                publisher_id=room_id,
                send_keyframe_request=lambda: aiortc_hooks.request_keyframe(receiver),
                keyframe_interval=self._settings.keyframe_interval,
            )
            aiortc_hooks.tap_encoded_frames(receiver, source.on_frame)
            room.sources.append(source)
            transceivers[source] = transceiver

        transceivers: dict[Source, RTCRtpTransceiver] = {}

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self._rooms.get(room_id) is room:
                on_gone()

        await _answer(pc, offer_sdp)
        for source, transceiver in transceivers.items():
            codec = aiortc_hooks.negotiated_codec(transceiver)
            if codec is not None and codec.mimeType.lower() in FORWARDABLE_CODECS:
                source.set_codec(codec)
        room.sources = [s for s in room.sources if s.codec is not None]
        self._rooms[room_id] = room
        return pc.localDescription.sdp

    # -- RTMP -------------------------------------------------------------------

    def rtmp_video(self, room_id: str) -> RtmpVideoFeed:
        """Where an RTMP stream's video goes for WHEP viewers."""
        source = Source(
            kind="video",
            publisher_id=room_id,
            # RTMP has no way to ask the publisher for a keyframe: viewers
            # start at the next one (OBS's keyframe interval, 1–2 s).
            send_keyframe_request=_nobody_to_ask,
            keyframe_interval=self._settings.keyframe_interval,
        )
        source.set_codec(RTMP_VIDEO_CODEC)
        self._rooms[room_id] = _Room(sources=[source])
        return RtmpVideoFeed(source)

    # -- WHEP -------------------------------------------------------------------

    async def watch(self, room_id: str, offer_sdp: str, viewer_id: str) -> tuple[str, str]:
        """A WHEP viewer's offer; returns (resource id, answer)."""
        room = self._rooms.get(room_id)
        if room is None or not room.sources:
            raise NotFound("nobody is live there (over WebRTC)", code="not_live")
        # A transceiver of a kind the offer has no section for makes aiortc
        # fail its answer: offer only the kinds the viewer asked for.
        offered = _offered_kinds(offer_sdp)
        wanted = [source for source in room.sources if source.kind in offered]
        if not wanted:
            raise _takes_none(room)
        pc = self._connection()
        pending: list[tuple[RTCRtpTransceiver, Source]] = []
        for source in wanted:
            transceiver = pc.addTransceiver(source.kind, direction="sendonly")
            prefer_codec(transceiver, source)
            pending.append((transceiver, source))
        await _answer(pc, offer_sdp)
        resource = secrets.token_urlsafe(12)
        tracks: list[tuple[Source, ForwardedTrack]] = []
        for transceiver, source in pending:
            codec = aiortc_hooks.negotiated_codec(transceiver)
            if (
                transceiver.mid is None
                or codec is None
                or codec.mimeType.lower() != source.mime_type
            ):
                continue  # the viewer did not take this kind, or not in this codec
            track = ForwardedTrack(source.kind, f"{source.kind}-{resource}")
            transceiver.sender.replaceTrack(track)
            aiortc_hooks.set_stream_id(transceiver.sender, room_id)
            aiortc_hooks.on_keyframe_request(transceiver.sender, source.ask_for_keyframe)
            source.subscribe(track)
            tracks.append((source, track))
        if not tracks:
            await close_quietly(pc)
            raise _takes_none(room)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                task = asyncio.ensure_future(self.stop_watching(room_id, resource, viewer_id))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

        room.viewers[resource] = pc
        room.viewer_ids[resource] = viewer_id
        self._viewer_tracks[resource] = tracks
        return resource, pc.localDescription.sdp

    async def stop_watching(self, room_id: str, resource: str, viewer_id: str) -> bool:
        """Ends a WHEP viewer's session; False when there was none of
        ``viewer_id``'s (the resource URL alone is not enough)."""
        room = self._rooms.get(room_id)
        if room is None or room.viewer_ids.get(resource) != viewer_id:
            return False
        return await self._stop_viewer(room, resource)

    async def _stop_viewer(self, room: _Room, resource: str) -> bool:
        room.viewer_ids.pop(resource, None)
        pc = room.viewers.pop(resource, None)
        for source, track in self._viewer_tracks.pop(resource, []):
            source.unsubscribe(track)
            track.stop()
        if pc is None:
            return False
        await _close(pc)
        return True

    async def end_room(self, room_id: str) -> None:
        """The stream is over: its publisher (WHIP) and viewers are closed."""
        room = self._rooms.pop(room_id, None)
        if room is None:
            return
        for resource in list(room.viewers):
            await self._stop_viewer(room, resource)
        for source in room.sources:
            await source.close()
        if room.publisher is not None:
            await _close(room.publisher)

    async def close(self) -> None:
        for room_id in list(self._rooms):
            await self.end_room(room_id)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def viewers(self, room_id: str) -> int:
        room = self._rooms.get(room_id)
        return len(room.viewers) if room else 0

    def _connection(self) -> RTCPeerConnection:
        stun = list(self._settings.stun_urls)
        return RTCPeerConnection(
            RTCConfiguration(
                iceServers=[RTCIceServer(urls=stun)] if stun else [],
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
            )
        )


class RtmpVideoFeed:
    """FLV video bodies (H.264, AVCC) in, Annex-B frames out to a Source."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._length_size = 4
        self._parameter_sets = b""  # SPS and PPS, Annex-B, put before each keyframe

    def video(self, timestamp_ms: int, body: bytes) -> None:
        if len(body) < 5 or body[0] & 0x0F != 7:  # not AVC
            return
        keyframe = body[0] >> 4 == 1
        packet_type = body[1]
        if packet_type == 0:
            self._configure(body[5:])
            return
        if packet_type != 1:
            return
        composition = int.from_bytes(body[2:5], "big", signed=True)
        frame = self._annex_b(body[5:])
        if not frame:
            return
        if keyframe:
            frame = self._parameter_sets + frame
        pts = (timestamp_ms + composition) * 90
        self.source.on_frame(RTMP_VIDEO_CODEC, JitterFrame(frame, pts))

    def _configure(self, record: bytes) -> None:
        """AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1)."""
        if len(record) < 7:
            return
        self._length_size = (record[4] & 0x03) + 1
        sets = bytearray()
        offset = 5
        for count_mask in (0x1F, 0xFF):  # SPS count has 5 bits, PPS count 8
            if offset >= len(record):
                return
            count = record[offset] & count_mask
            offset += 1
            for _ in range(count):
                size = int.from_bytes(record[offset : offset + 2], "big")
                offset += 2
                sets += _START_CODE + record[offset : offset + size]
                offset += size
        self._parameter_sets = bytes(sets)

    def _annex_b(self, data: bytes) -> bytes:
        out = bytearray()
        size_bytes = self._length_size
        offset = 0
        while offset + size_bytes <= len(data):
            size = int.from_bytes(data[offset : offset + size_bytes], "big")
            offset += size_bytes
            if size == 0 or offset + size > len(data):
                break
            out += _START_CODE + data[offset : offset + size]
            offset += size
        return bytes(out)


def _takes_none(room: _Room) -> Exception:
    return invalid_sdp(
        "the offer takes none of the stream's media (it is "
        + ", ".join(s.mime_type or "?" for s in room.sources)
        + ")"
    )


def _offered_kinds(offer_sdp: str) -> set[str]:
    """The media kinds (audio, video) an offer has a section for."""
    return {line[2:].split(" ", 1)[0] for line in offer_sdp.splitlines() if line.startswith("m=")}


async def _answer(pc: RTCPeerConnection, offer_sdp: str) -> None:
    """Takes the offer and makes the answer; an unusable offer closes the
    connection and raises InvalidInput (invalid_sdp)."""
    try:
        await pc.setRemoteDescription(session_description(offer_sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:
        await close_quietly(pc)  # a half-negotiated one too
        raise invalid_sdp(describe_error(exc)) from None


async def _nobody_to_ask() -> bool:
    return True


async def _close(pc: RTCPeerConnection) -> None:
    await close_quietly(pc)
