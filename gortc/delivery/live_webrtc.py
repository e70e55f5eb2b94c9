"""WHIP (RFC 9725) and WHEP over HTTP: a WebRTC publisher or viewer posts
its SDP offer and gets the answer back, with a resource URL to DELETE when
it is done.

With several instances, a WHEP viewer who reached an instance that does
not ingest the room is admitted there and relayed to the one that does
(delivery/live_relay.py), the offer and the later DELETE alike: the
session URL names the room, whose registry entry names that instance, so
the DELETE may land on any instance. Media then flows between the viewer
and the ingesting instance directly (its ICE candidates are in the answer).
"""

from __future__ import annotations

from aiohttp import web

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import read_body
from gortc.delivery.keys import LIVE, LIVE_RELAY
from gortc.delivery.live_relay import RELAYED_HEADER
from gortc.delivery.routing import ApiRoute
from gortc.entities.errors import InvalidInput, TooLarge, Unauthenticated, UnsupportedMediaType
from gortc.usecases.live import check_room_id
from gortc.usecases.viewer_tokens import QUERY_PARAMETER

SDP = "application/sdp"
MAX_SDP_BYTES = 64 * 1024
_SDP_BODY: dict[str, object] = {
    SDP: {
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_SDP_BYTES,
            "contentMediaType": SDP,
            "description": "An SDP offer (RFC 8866), UTF-8 text; 400 invalid_sdp if it is "
            "not one, 413 past 64 KiB",
        }
    }
}


async def _offer(request: web.Request) -> str:
    if request.content_type != SDP:
        raise UnsupportedMediaType(
            "send the SDP offer as application/sdp", code="unsupported_media_type"
        )
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise TooLarge("an SDP offer has at most 64 KiB", code="too_large")
    raw = await read_body(request, MAX_SDP_BYTES)
    if len(raw) > MAX_SDP_BYTES:
        raise TooLarge("an SDP offer has at most 64 KiB", code="too_large")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("an SDP offer is UTF-8 text", code="invalid_sdp") from None


def _stream_key(request: web.Request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated(
            "send your stream key as 'Authorization: Bearer <stream key>'",
            code="invalid_stream_key",
        )
    return value.strip()


_WHEP_QUERY = (
    ("access_token", "string", "For players that cannot send headers"),
    (
        QUERY_PARAMETER,
        "string",
        "Or a viewer token of the room (the one its hls_url carries) instead of signing in",
    ),
)


def _answer(answer: str, location: str) -> web.Response:
    return web.Response(status=201, text=answer, content_type=SDP, headers={"Location": location})


async def whip_publish(request: web.Request) -> web.Response:
    key = _stream_key(request)
    offer = await _offer(request)
    room, answer = await request.app[LIVE].whip_publish(key, offer)
    return _answer(answer, f"/api/v1/live/whip/{room.id}")


async def whip_stop(request: web.Request) -> web.Response:
    room_id = check_room_id(request.match_info["room_id"])
    key = _stream_key(request)
    instance = await _elsewhere(request, room_id)
    if instance is not None:
        # Behind a load balancer the publisher's DELETE may reach any
        # instance: the one that ingests the room checks the key and ends it.
        return await request.app[LIVE_RELAY].webrtc(
            instance, "DELETE", request.rel_url.raw_path, stream_key=key
        )
    await request.app[LIVE].whip_stop(key, room_id)
    return web.Response(status=200)


async def _viewer(request: web.Request, room_id: str) -> tuple[str, str]:
    """(user id, session id) of a WHEP viewer: by the room's viewer token
    (?vt=, how one instance relays a viewer to another), else signed in."""
    token = request.query.get(QUERY_PARAMETER)
    if token is not None:
        return await request.app[LIVE].admit_viewer(room_id, token, playlist=False)
    principal = await authenticate(request, allow_query_token=True)
    return principal.user_id, principal.session_id


async def _elsewhere(request: web.Request, room_id: str) -> str | None:
    if RELAYED_HEADER in request.headers:
        return None  # relayed here: answered from what this instance has
    return await request.app[LIVE].ingested_elsewhere(room_id)


async def whep_watch(request: web.Request) -> web.Response:
    room_id = check_room_id(request.match_info["room_id"])
    viewer = await _viewer(request, room_id)
    offer = await _offer(request)
    instance = await _elsewhere(request, room_id)
    if instance is not None:
        token = request.app[LIVE].viewer_token(room_id, *viewer)
        return await request.app[LIVE_RELAY].webrtc(
            instance, "POST", request.rel_url.raw_path, token=token, body=offer.encode()
        )
    resource, answer = await request.app[LIVE].whep_watch(viewer[0], room_id, offer)
    return _answer(answer, f"/live/{room_id}/whep/{resource}")


async def whep_stop(request: web.Request) -> web.Response:
    room_id = check_room_id(request.match_info["room_id"])
    viewer = await _viewer(request, room_id)
    instance = await _elsewhere(request, room_id)
    if instance is not None:
        token = request.app[LIVE].viewer_token(room_id, *viewer)
        return await request.app[LIVE_RELAY].webrtc(
            instance, "DELETE", request.rel_url.raw_path, token=token
        )
    await request.app[LIVE].whep_stop(viewer[0], room_id, request.match_info["resource"])
    return web.Response(status=200)


ROUTES = [
    ApiRoute(
        "POST",
        "/api/v1/live/whip",
        whip_publish,
        "Go live over WebRTC (WHIP, OBS 30+)",
        "live",
        status=201,
        auth=False,
        request_content=_SDP_BODY,
        response_content_type=SDP,
        errors=(400, 401, 409, 413, 415),
        description="Authorization: Bearer <stream key>; the body is the SDP offer "
        "(ICE candidates gathered). Answers the SDP answer, with Location: the "
        "resource to DELETE when you stop. OBS: Settings > Stream > Service WHIP, "
        "Server <this server>/api/v1/live/whip, Bearer Token: your stream key.",
    ),
    ApiRoute(
        "DELETE",
        "/api/v1/live/whip/{room_id}",
        whip_stop,
        "Stop a WHIP stream",
        "live",
        auth=False,
        errors=(401, 503),
        description="With the same stream key as the publish. With several instances, "
        "any instance takes it and passes it to the one that ingests the room.",
    ),
    ApiRoute(
        "POST",
        "/live/{room_id}/whep",
        whep_watch,
        "Watch a live room over WebRTC (WHEP)",
        "live",
        status=201,
        request_content=_SDP_BODY,
        response_content_type=SDP,
        query=_WHEP_QUERY,
        errors=(400, 401, 404, 413, 415, 503),
        description="Sub-second delay. The body is the SDP offer (receive-only "
        "sections, ICE candidates gathered); the answer comes back with Location: "
        "the session to DELETE. A WHIP stream's video and audio are forwarded as "
        "they come; an RTMP stream's H.264 video too, without its AAC audio "
        "(WebRTC has no AAC: watch over HLS for the sound). With several instances, "
        "any instance takes the offer and passes it to the one that ingests the room "
        "(the media then flows between you and that one); 503 stream_unreachable "
        "when that instance does not answer.",
    ),
    ApiRoute(
        "DELETE",
        "/live/{room_id}/whep/{resource}",
        whep_stop,
        "Stop watching over WebRTC",
        "live",
        query=_WHEP_QUERY,
        errors=(401, 404, 503),
        description="Only the viewer who opened the session ends it: 404 for anyone else, "
        "as for a session that is over. Any instance takes it (with several).",
    ),
]
