"""Group calls: who is in one, what they send, and how clients reach media."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from gortc.entities.errors import Conflict, DomainError, InvalidInput


class MediaKind(enum.StrEnum):
    """What a call.mute is about: the microphone, the camera, or the shared
    screen (whose "muted" means "not sharing", as it starts)."""

    AUDIO = "audio"
    VIDEO = "video"
    SCREEN = "screen"


class TrackSource(enum.StrEnum):
    """What a forwarded track shows: a participant's first audio section is
    their microphone, their first video section their camera and their
    second video section their shared screen."""

    MICROPHONE = "microphone"
    CAMERA = "camera"
    SCREEN = "screen"


class EndReason(enum.StrEnum):
    """Why a participant is no longer in a call (told in call.ended)."""

    LEFT = "left"
    CONNECTION_FAILED = "connection_failed"
    CONNECTION_CLOSED = "connection_closed"
    JOINED_ELSEWHERE = "joined_elsewhere"
    REMOVED_FROM_GROUP = "removed_from_group"
    NO_ANSWER = "no_answer"
    SERVER_SHUTDOWN = "server_shutdown"


@dataclass(frozen=True, slots=True)
class CallParticipant:
    user_id: str
    audio_muted: bool = False
    video_muted: bool = False
    screen_sharing: bool = False

    def muting(self, kind: MediaKind, muted: bool) -> CallParticipant:
        if kind is MediaKind.AUDIO:
            return dataclasses.replace(self, audio_muted=muted)
        if kind is MediaKind.VIDEO:
            return dataclasses.replace(self, video_muted=muted)
        return dataclasses.replace(self, screen_sharing=not muted)


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """One forwarded track in a participant's connection: the SDP section
    (mid) it arrives in, whose it is, and what it shows."""

    mid: str
    user_id: str
    kind: str
    source: TrackSource = TrackSource.CAMERA


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN or TURN server, as RTCPeerConnection's iceServers takes it."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


class HostedElsewhere(DomainError):
    """The group's call is hosted by another instance: signal there (421)."""

    code = "call_elsewhere"

    def __init__(self, ws_url: str) -> None:
        super().__init__(
            "this call is hosted by another server instance: open the WebSocket at ws_url "
            "and send call.join there",
            details={"ws_url": ws_url},
        )
        self.ws_url = ws_url


def call_full(limit: int) -> Conflict:
    return Conflict(f"the call already has {limit} participants, its limit", code="call_full")


def not_in_call() -> Conflict:
    return Conflict("you are not in this group's call: send call.join first", code="not_in_call")


def invalid_sdp(problem: str) -> InvalidInput:
    return InvalidInput(f"the session description cannot be used: {problem}", code="invalid_sdp")
