"""Calls over REST (ICE servers, who is in a group's call) and the WebSocket
side of call signaling: the frames clients send, and the ``CallSignals`` a
connection gives the call service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response
from gortc.delivery.chat_schemas import ClientId, Id
from gortc.delivery.events import encode_frame, participant_json
from gortc.delivery.keys import CALLS
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import Request
from gortc.entities.calls import CallParticipant, EndReason, IceServer, TrackInfo
from gortc.hub.connection import Connection
from gortc.hub.frames import text_frame

# An SDP of a six-party call is ~20 kB; 64 kB leaves room and stays under the
# WebSocket frame limit's default.
_SDP: object = Field(min_length=1, max_length=60_000)
Sdp = Annotated[str, _SDP]


class CallJoinFrame(Request):
    type: Literal["call.join"]
    group_id: Id
    sdp: Sdp
    client_id: ClientId | None = None


class CallAnswerFrame(Request):
    type: Literal["call.answer"]
    group_id: Id
    sdp: Sdp
    client_id: ClientId | None = None


class CallMuteFrame(Request):
    type: Literal["call.mute"]
    group_id: Id
    kind: Literal["audio", "video", "screen"]
    muted: bool
    client_id: ClientId | None = None


class CallLeaveFrame(Request):
    type: Literal["call.leave"]
    group_id: Id
    client_id: ClientId | None = None


CALL_FRAMES = CallJoinFrame | CallAnswerFrame | CallMuteFrame | CallLeaveFrame


def ice_servers_json(servers: Sequence[IceServer]) -> list[dict[str, object]]:
    body: list[dict[str, object]] = []
    for server in servers:
        entry: dict[str, object] = {"urls": list(server.urls)}
        if server.username is not None:
            entry["username"] = server.username
        if server.credential is not None:
            entry["credential"] = server.credential
        body.append(entry)
    return body


class ConnectionSignals:
    """CallSignals over one WebSocket connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def _send(self, body: dict[str, object]) -> None:
        self._connection.send(text_frame(encode_frame(body)))

    def answer(self, group_id: str, sdp: str, ice_servers: Sequence[IceServer]) -> None:
        self._send(
            {
                "type": "call.answer",
                "group_id": group_id,
                "sdp": sdp,
                "ice_servers": ice_servers_json(ice_servers),
            }
        )

    def offer(self, group_id: str, sdp: str, tracks: Sequence[TrackInfo]) -> None:
        self._send(
            {
                "type": "call.offer",
                "group_id": group_id,
                "sdp": sdp,
                "tracks": [
                    {"mid": t.mid, "user_id": t.user_id, "kind": t.kind, "source": t.source.value}
                    for t in tracks
                ],
            }
        )

    def ended(self, group_id: str, reason: EndReason) -> None:
        self._send({"type": "call.ended", "group_id": group_id, "reason": reason.value})


# -- REST ---------------------------------------------------------------------


class IceServerView(BaseModel):
    urls: list[str]
    username: str | None = Field(None, description="For TURN servers")
    credential: str | None = Field(None, description="For TURN servers")


class IceServers(BaseModel):
    ice_servers: list[IceServerView] = Field(
        description="Pass as RTCPeerConnection's iceServers; empty: host candidates suffice"
    )


class ParticipantView(BaseModel):
    user_id: str
    audio_muted: bool
    video_muted: bool
    screen_sharing: bool = Field(description="Their screen is shared (a second video track)")


class CallView(BaseModel):
    group_id: str
    participants: list[ParticipantView] = Field(description="Empty: no call in progress")


async def get_ice_servers(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    servers = request.app[CALLS].ice_servers(principal.user_id)
    return json_response(
        IceServers(ice_servers=[IceServerView.model_validate(s) for s in ice_servers_json(servers)])
    )


async def get_call(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    group_id = request.match_info["group_id"]
    participants: Sequence[CallParticipant] = await request.app[CALLS].participants(
        principal.user_id, group_id
    )
    return json_response(
        CallView(
            group_id=group_id,
            participants=[ParticipantView(**participant_json(p)) for p in participants],
        )
    )


ROUTES = [
    ApiRoute(
        "GET",
        "/api/v1/calls/ice-servers",
        get_ice_servers,
        "The STUN/TURN servers to use for calls",
        "calls",
        response=IceServers,
        description="TURN credentials may be made for the caller and expire "
        "(rtc.turn_credential_seconds). call.answer carries the same list.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/groups/{group_id}/call",
        get_call,
        "Who is in the group's call",
        "calls",
        response=CallView,
        errors=(404,),
        description="Changes arrive over the WebSocket as call.participants.",
    ),
]
