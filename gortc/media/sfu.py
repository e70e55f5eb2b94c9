"""The in-process SFU: the MediaRouter port over aiortc.

Each participant has one peer connection with the server. The SDP sections
the participant offered carry its own tracks to the server (each becomes a
:class:`~gortc.media.forwarding.Source`); the server then offers one
send-only section per track of every other participant, and forwards the
encoded frames into it. When a participant leaves, the sections that carried
its tracks become inactive in everyone else's connection.

What a participant's sections carry is told by their order: the first audio
section is the microphone, the first video section the camera, the second
video section the shared screen (sent with no track until the client shares,
and not forwarded until it says so: ``set_muted(..., SCREEN, False)``).

Only the server makes offers after the join (aiortc has no
``negotiationneeded``), one at a time per participant: changes that come
while an offer waits for its answer are gathered into the next offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from gortc.entities.calls import EndReason, MediaKind, TrackInfo, TrackSource, invalid_sdp
from gortc.entities.errors import Conflict
from gortc.media import aiortc_hooks
from gortc.media.closing import close_quietly
from gortc.media.forwarding import FORWARDABLE_CODECS, ForwardedTrack, Source
from gortc.media.sdp_check import check_description
from gortc.usecases.ports import MediaSessionEvents

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SfuSettings:
    stun_urls: tuple[str, ...] = ()
    host_addresses: tuple[str, ...] = ()
    keyframe_interval: float = 1.0
    answer_timeout: float = 10.0
    transcode: bool = False  # decode and re-encode: for comparison only


@dataclass(eq=False)
class _Subscription:
    """One send-only section in a subscriber's connection."""

    transceiver: RTCRtpTransceiver
    publisher_id: str
    kind: str
    source: Source | None
    track: MediaStreamTrack | None = None
    attached: bool = False  # frames flow (after the answer confirmed the codec)


@dataclass(eq=False)
class _Peer:
    id: str
    pc: RTCPeerConnection
    events: MediaSessionEvents
    sources: dict[RTCRtpTransceiver, Source] = field(default_factory=dict)
    subscriptions: list[_Subscription] = field(default_factory=list)
    started: bool = False
    awaiting_answer: bool = False
    needs_offer: bool = False
    sections_changed: bool = False  # some went inactive since the last offer
    negotiation: asyncio.Task[None] | None = None
    answer_timer: asyncio.TimerHandle | None = None
    closed: bool = False
    # Payload types and extension ids as the client numbered them (offers
    # must keep them).
    numbering: aiortc_hooks.Numbering | None = None


@dataclass(frozen=True, slots=True)
class SfuFigures:
    participants: int = 0
    frames_received: int = 0
    frames_forwarded: int = 0
    keyframe_requests: int = 0

    def plus(self, source: Source) -> SfuFigures:
        return dataclasses.replace(
            self,
            frames_received=self.frames_received + source.frames,
            frames_forwarded=self.frames_forwarded + source.forwarded,
            keyframe_requests=self.keyframe_requests + source.keyframe_requests,
        )


class AiortcSfu:
    """Implements MediaRouter; rooms are kept only while someone is in them."""

    def __init__(self, settings: SfuSettings) -> None:
        aiortc_hooks.check_aiortc()
        aiortc_hooks.use_fast_clock()
        if settings.host_addresses:
            aiortc_hooks.use_host_addresses(settings.host_addresses)
        self._settings = settings
        self._rooms: dict[str, dict[str, _Peer]] = {}
        self._relay = MediaRelay() if settings.transcode else None
        # The counts of sources gone, so that the totals never go down.
        self._gone = SfuFigures()

    # -- MediaRouter ------------------------------------------------------------

    async def join(
        self, room_id: str, participant_id: str, offer_sdp: str, events: MediaSessionEvents
    ) -> str:
        if participant_id in self._rooms.get(room_id, {}):
            await self.leave(room_id, participant_id)
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=[RTCIceServer(urls=list(self._settings.stun_urls))]
                if self._settings.stun_urls
                else [],
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
            )
        )
        peer = _Peer(participant_id, pc, events)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            self._add_source(peer, transceiver)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and not peer.closed:
                events.failed(EndReason.CONNECTION_FAILED)

        try:
            await pc.setRemoteDescription(session_description(offer_sdp, "offer"))
            peer.numbering = aiortc_hooks.numbering_of(offer_sdp)
            await pc.setLocalDescription(await pc.createAnswer())
        except Conflict:
            raise
        except Exception as exc:
            await self._close_peer(peer)
            raise invalid_sdp(describe_error(exc)) from None
        for transceiver, source in peer.sources.items():
            codec = aiortc_hooks.negotiated_codec(transceiver)
            if codec is not None and codec.mimeType.lower() in FORWARDABLE_CODECS:
                source.set_codec(codec)
            else:
                log.info("not forwarding %s's %s: codec %s", participant_id, source.kind, codec)
        self._rooms.setdefault(room_id, {})[participant_id] = peer
        return pc.localDescription.sdp

    def start(self, room_id: str, participant_id: str) -> None:
        room = self._rooms.get(room_id, {})
        peer = room.get(participant_id)
        if peer is None or peer.started:
            return
        peer.started = True
        for other in room.values():
            if other is not peer and other.started:
                self._renegotiate(other)
        self._renegotiate(peer)

    async def answer(self, room_id: str, participant_id: str, sdp: str) -> None:
        peer = self._rooms.get(room_id, {}).get(participant_id)
        if peer is None or not peer.awaiting_answer:
            raise Conflict("there is no call.offer waiting for an answer", code="no_offer_pending")
        try:
            await peer.pc.setRemoteDescription(session_description(sdp, "answer"))
        except Exception as exc:
            raise invalid_sdp(describe_error(exc)) from None
        peer.awaiting_answer = False
        if peer.answer_timer is not None:
            peer.answer_timer.cancel()
            peer.answer_timer = None
        for subscription in peer.subscriptions:
            if subscription.source is not None and not subscription.attached:
                self._attach(peer, subscription)
        if peer.needs_offer:
            self._renegotiate(peer)

    def set_muted(self, room_id: str, participant_id: str, kind: MediaKind, muted: bool) -> None:
        peer = self._rooms.get(room_id, {}).get(participant_id)
        if peer is None:
            return
        shows = {
            MediaKind.AUDIO: TrackSource.MICROPHONE,
            MediaKind.VIDEO: TrackSource.CAMERA,
            MediaKind.SCREEN: TrackSource.SCREEN,
        }[kind]
        for source in peer.sources.values():
            if source.shows is shows:
                source.set_muted(muted)

    async def leave(self, room_id: str, participant_id: str) -> None:
        room = self._rooms.get(room_id)
        peer = room.pop(participant_id, None) if room is not None else None
        if peer is None:
            return
        if not room:
            del self._rooms[room_id]
        await self._close_peer(peer)
        for other in (room or {}).values():
            changed = False
            for subscription in other.subscriptions:
                if subscription.publisher_id == participant_id and subscription.source is not None:
                    self._deactivate(subscription)
                    changed = True
            if changed and other.started:
                other.sections_changed = True
                self._renegotiate(other)

    async def close(self) -> None:
        for room_id, room in list(self._rooms.items()):
            for participant_id in list(room):
                await self.leave(room_id, participant_id)

    # -- figures, for tests and benchmarks ------------------------------------

    def figures(self) -> SfuFigures:
        """Participants now, and totals since start (read at scrape time)."""
        now = SfuFigures(participants=sum(len(room) for room in self._rooms.values()))
        for source in self.sources():
            now = now.plus(source)
        return dataclasses.replace(
            now,
            frames_received=now.frames_received + self._gone.frames_received,
            frames_forwarded=now.frames_forwarded + self._gone.frames_forwarded,
            keyframe_requests=now.keyframe_requests + self._gone.keyframe_requests,
        )

    def peer_connections(self) -> list[RTCPeerConnection]:
        return [peer.pc for room in self._rooms.values() for peer in room.values()]

    def sources(self) -> list[Source]:
        return [
            source
            for room in self._rooms.values()
            for peer in room.values()
            for source in peer.sources.values()
        ]

    # -- inside -----------------------------------------------------------------

    def _add_source(self, peer: _Peer, transceiver: RTCRtpTransceiver) -> None:
        receiver = transceiver.receiver
        shows = source_shown(peer.pc.getTransceivers(), transceiver)
        source = Source(
            kind=transceiver.kind,
            publisher_id=peer.id,
            send_keyframe_request=lambda: aiortc_hooks.request_keyframe(receiver),
            keyframe_interval=self._settings.keyframe_interval,
            shows=shows,
        )
        if shows is TrackSource.SCREEN:
            source.set_muted(True)  # not shared until the participant says so
        if self._relay is None:
            aiortc_hooks.tap_encoded_frames(receiver, source.on_frame)
        peer.sources[transceiver] = source

    def _renegotiate(self, peer: _Peer) -> None:
        peer.needs_offer = True
        if peer.negotiation is None or peer.negotiation.done():
            peer.negotiation = asyncio.create_task(self._negotiate(peer))

    async def _negotiate(self, peer: _Peer) -> None:
        try:
            if peer.closed or peer.awaiting_answer or not peer.needs_offer:
                return  # an answer to the offer out there will call again
            if peer.pc.signalingState == "closed":
                return  # the client hung up; its departure follows
            peer.needs_offer = False
            added = self._add_subscriptions(peer)
            if not added and not peer.sections_changed:
                return
            peer.sections_changed = False
            assert peer.numbering is not None
            with aiortc_hooks.offer_numbering(peer.numbering):
                offer = await peer.pc.createOffer()
            await peer.pc.setLocalDescription(offer)
            if peer.closed:
                return
            peer.awaiting_answer = True
            peer.answer_timer = asyncio.get_running_loop().call_later(
                self._settings.answer_timeout, peer.events.failed, EndReason.NO_ANSWER
            )
            peer.events.offer(peer.pc.localDescription.sdp, self._tracks(peer))
        except Exception:
            if not peer.closed:
                log.exception("renegotiation with %s failed", peer.id)
                peer.events.failed(EndReason.CONNECTION_FAILED)

    def _add_subscriptions(self, peer: _Peer) -> int:
        """A send-only section for each started participant's forwardable
        source the peer does not receive yet (an inactive section of the
        same kind and codec if there is one); returns how many."""
        room = next((r for r in self._rooms.values() if r.get(peer.id) is peer), {})
        have = {id(s.source) for s in peer.subscriptions if s.source is not None}
        added = 0
        for other in room.values():
            if other is peer or not other.started:
                continue
            for source in other.sources.values():
                if source.codec is None or id(source) in have:
                    continue
                subscription = self._free_section(peer, source)
                if subscription is None:
                    transceiver = peer.pc.addTransceiver(source.kind, direction="sendonly")
                    prefer_codec(transceiver, source)
                    subscription = _Subscription(transceiver, other.id, source.kind, source)
                    peer.subscriptions.append(subscription)
                else:
                    subscription.transceiver.direction = "sendonly"
                    subscription.publisher_id = other.id
                    subscription.source = source
                aiortc_hooks.set_stream_id(subscription.transceiver.sender, other.id)
                added += 1
        return added

    def _free_section(self, peer: _Peer, source: Source) -> _Subscription | None:
        if self._relay is not None:
            return None  # relayed tracks cannot be switched to another source
        for subscription in peer.subscriptions:
            codec = aiortc_hooks.negotiated_codec(subscription.transceiver)
            if (
                subscription.source is None
                and subscription.kind == source.kind
                and isinstance(subscription.track, ForwardedTrack)
                and codec is not None
                and codec.mimeType.lower() == source.mime_type
            ):
                return subscription
        return None

    def _attach(self, peer: _Peer, subscription: _Subscription) -> None:
        """Starts the frames of a newly negotiated section, if the subscriber
        accepted the publisher's codec (a decoder cannot take another)."""
        source = subscription.source
        assert source is not None
        codec = aiortc_hooks.negotiated_codec(subscription.transceiver)
        if codec is None or codec.mimeType.lower() != source.mime_type:
            log.info(
                "%s cannot receive %s's %s (%s offered, %s answered)",
                peer.id,
                source.publisher_id,
                source.kind,
                source.mime_type,
                codec and codec.mimeType,
            )
            return
        sender: RTCRtpSender = subscription.transceiver.sender
        if self._relay is not None:
            remote = next(
                t.receiver.track
                for t, s in self._peer_of(source).sources.items()
                if s is source and t.receiver.track is not None
            )
            subscription.track = self._relay.subscribe(remote)
            sender.replaceTrack(subscription.track)
        else:
            if not isinstance(subscription.track, ForwardedTrack):
                subscription.track = ForwardedTrack(
                    source.kind, f"{source.kind}-{subscription.transceiver.mid}"
                )
                sender.replaceTrack(subscription.track)
            source.subscribe(subscription.track)
            aiortc_hooks.on_keyframe_request(sender, source.ask_for_keyframe)
        subscription.attached = True

    def _deactivate(self, subscription: _Subscription, *, for_good: bool = False) -> None:
        """The section's publisher left: it goes inactive (and may carry
        another publisher's track later), or, ``for_good``, it stops."""
        source, track = subscription.source, subscription.track
        if isinstance(track, ForwardedTrack) and source is not None:
            source.unsubscribe(track)
        if for_good or not isinstance(track, ForwardedTrack):
            if track is not None:
                track.stop()
            subscription.track = None
        subscription.transceiver.direction = "inactive"
        subscription.source = None
        subscription.attached = False

    def _peer_of(self, source: Source) -> _Peer:
        for room in self._rooms.values():
            for peer in room.values():
                if source in peer.sources.values():
                    return peer
        raise LookupError(source.publisher_id)

    @staticmethod
    def _tracks(peer: _Peer) -> list[TrackInfo]:
        return [
            TrackInfo(
                mid=s.transceiver.mid or "",
                user_id=s.publisher_id,
                kind=s.kind,
                source=s.source.shows,
            )
            for s in peer.subscriptions
            if s.source is not None
        ]

    async def _close_peer(self, peer: _Peer) -> None:
        peer.closed = True
        if peer.answer_timer is not None:
            peer.answer_timer.cancel()
        if peer.negotiation is not None and not peer.negotiation.done():
            peer.negotiation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await peer.negotiation
        for subscription in peer.subscriptions:
            self._deactivate(subscription, for_good=True)
        for source in peer.sources.values():
            self._gone = self._gone.plus(source)
            await source.close()
        # Never raises: a half-dead connection must not keep the others waiting.
        await close_quietly(peer.pc)


def source_shown(
    transceivers: list[RTCRtpTransceiver], transceiver: RTCRtpTransceiver
) -> TrackSource:
    """What a section the participant offered carries, from its place among
    the sections of its kind (all of them the participant's at the join)."""
    if transceiver.kind == "audio":
        return TrackSource.MICROPHONE
    videos = [t for t in transceivers if t.kind == "video"]
    return TrackSource.SCREEN if videos.index(transceiver) == 1 else TrackSource.CAMERA


def prefer_codec(transceiver: RTCRtpTransceiver, source: Source) -> None:
    """Offers the subscriber exactly the publisher's codec (and its
    retransmission format): frames are forwarded, not converted."""
    assert source.codec is not None
    wanted = source.codec
    capabilities = RTCRtpSender.getCapabilities(source.kind).codecs
    same = [c for c in capabilities if c.mimeType.lower() == wanted.mimeType.lower()]
    if wanted.mimeType.lower() == "video/h264":
        # Packetization mode must match what the publisher's frames use.
        mode = str(wanted.parameters.get("packetization-mode", "0"))
        matching = [c for c in same if str(c.parameters.get("packetization-mode", "0")) == mode]
        same = matching or same
    chosen: list[RTCRtpCodecCapability] = same[:1]
    chosen += [c for c in capabilities if c.mimeType.lower().endswith("/rtx")]
    if chosen:
        transceiver.setCodecPreferences(chosen)


def session_description(sdp: str, kind: str) -> RTCSessionDescription:
    check_description(sdp)  # ValueError with a clear sentence
    return RTCSessionDescription(sdp=sdp, type=kind)


def describe_error(exc: Exception) -> str:
    """What to tell the client about a description aiortc refused. Its
    ValueErrors (and InvalidStateError, OperationError...) say what is wrong;
    an AssertionError, KeyError or AttributeError from deep in its parser
    says nothing a client could use."""
    if isinstance(exc, (AssertionError, AttributeError, KeyError, IndexError, TypeError)):
        return "it is malformed (the SDP parser could not read it)"
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
