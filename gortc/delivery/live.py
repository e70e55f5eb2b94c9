"""Live streaming over HTTP: the streamer's key, the live rooms, and the
HLS playlists and segments viewers play."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, Field, StrictBool

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response, read_json
from gortc.delivery.chat_schemas import ClientId, Id
from gortc.delivery.events import live_room_json
from gortc.delivery.keys import CONFIG, LIVE, LIVE_RELAY
from gortc.delivery.live_relay import RELAYED_HEADER, VIEWERS_HEADER
from gortc.delivery.proxies import client_address
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import Request, Timestamp
from gortc.entities.errors import NotFound
from gortc.entities.live import TITLE_MAX
from gortc.media.hls import served_file
from gortc.media.hls_playlist import with_query_parameter
from gortc.usecases.live import StreamKey, check_room_id
from gortc.usecases.viewer_tokens import QUERY_PARAMETER

_NOT_YET = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"


class LiveRoomView(BaseModel):
    id: str = Field(description="The room: its streamer's user id")
    user_id: str
    username: str
    title: str
    started_at: Timestamp
    viewers: int = Field(description="People who fetched the playlist in the last 10 s")
    hls_url: str = Field(
        description="The HLS playlist, an absolute URL that any HLS player plays as it "
        "is (VLC, ffplay, a <video> tag): it carries a viewer token (?vt=) for the "
        "caller, good for live.viewer_token_seconds and while their sign-in lives; "
        "a public room's has no token"
    )
    public: bool = Field(False, description="Anyone may play it, signed in or not")


class LiveRoomList(BaseModel):
    items: list[LiveRoomView]


class StreamKeyView(BaseModel):
    stream_key: str = Field(description="Secret: whoever has it can stream as you")
    rtmp_url: str = Field(description="The whole ingest URL, key included")
    server_url: str = Field(description="OBS: Settings > Stream > Server")
    title: str = Field(description="Your live room's title")
    public: bool = Field(
        description="Whether anyone may play your room, signed in or not (PUT /api/v1/live/public)"
    )

    @classmethod
    def of(cls, key: StreamKey) -> StreamKeyView:
        return cls(
            stream_key=key.stream_key,
            rtmp_url=key.rtmp_url,
            server_url=key.server_url,
            title=key.title,
            public=key.public,
        )


# -- WebSocket frames ----------------------------------------------------------


class LiveWatchFrame(Request):
    """Join a live room's chat (its live.chat lines come until live.unwatch)."""

    type: Literal["live.watch"]
    room_id: Id
    client_id: ClientId | None = None


class LiveUnwatchFrame(Request):
    type: Literal["live.unwatch"]
    room_id: Id
    client_id: ClientId | None = None


class LiveChatFrame(Request):
    type: Literal["live.chat"]
    room_id: Id
    body: str = Field(max_length=4000)
    client_id: ClientId | None = None


class SetTitle(Request):
    title: str = Field(max_length=TITLE_MAX)

    error_codes: ClassVar[dict[str, str]] = {"title": "invalid_title"}


class SetPublic(Request):
    public: StrictBool = Field(description="true: anyone may play your room, signed in or not")


async def list_live(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    live = request.app[LIVE]
    items = []
    base = _public_base(request)
    for room in await live.rooms():
        # Absolute (a player has no page to resolve a relative URL against),
        # on this server's public address whichever instance ingests the
        # room (any instance relays it), and with a token of the caller's
        # own (players send no credentials) unless anyone may play the room.
        shown = live_room_json(room, base)
        url = base + playlist_path(room.id)
        shown["public"] = await live.is_public(room.id)
        if not shown["public"]:
            token = live.viewer_token(room.id, principal.user_id, principal.session_id)
            url += f"?{QUERY_PARAMETER}={quote(token, safe='')}"
        shown["hls_url"] = url
        items.append(LiveRoomView.model_validate(shown))
    return json_response(LiveRoomList(items=items))


def playlist_path(room_id: str) -> str:
    return f"/live/{quote(room_id, safe='')}/index.m3u8"


def _public_base(request: web.Request) -> str:
    """Where the caller reaches this server: server.public_url when set,
    else the address the request came to (behind one of
    server.trusted_proxies, with the scheme the proxy says the caller used)."""
    configured = request.app[CONFIG].server.public_url
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"


async def get_key(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    return json_response(StreamKeyView.of(await request.app[LIVE].stream_key(principal.user_id)))


async def new_key(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    key = await request.app[LIVE].new_stream_key(principal.user_id)
    return json_response(StreamKeyView.of(key))


async def set_title(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, SetTitle)
    key = await request.app[LIVE].set_title(principal.user_id, body.title)
    return json_response(StreamKeyView.of(key))


async def set_public(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, SetPublic)
    key = await request.app[LIVE].set_public(principal.user_id, body.public)
    return json_response(StreamKeyView.of(key))


async def hls_file(request: web.Request) -> web.StreamResponse:
    """A room's playlist or segment, from the packager's directory.

    A viewer token in the query is the credential (a plain player's); a
    public room needs none; else the caller signs in as for any call (the
    web client's cookie). A signed-in viewer's playlist lists its URIs with
    a token of theirs, renewed on every fetch, so a player that follows
    them needs nothing else."""
    live = request.app[LIVE]
    room_id = check_room_id(request.match_info["room_id"])
    name = request.match_info["name"]
    served = served_file(name)
    if served is None:
        raise NotFound("no such file in a live room", code="not_found")
    is_playlist = name.endswith(".m3u8")
    token = request.query.get(QUERY_PARAMETER)
    viewer: tuple[str, str] | None  # (user id, session id); None: anyone
    if token is not None:
        viewer = await live.admit_viewer(room_id, token, playlist=is_playlist)
    elif await live.is_public(room_id):
        viewer = None
    else:
        principal = await authenticate(request, allow_query_token=True)
        viewer = principal.user_id, principal.session_id
    path = hls_directory(request.app[CONFIG].data_path, room_id) / name
    if RELAYED_HEADER not in request.headers:
        elsewhere = await live.ingested_elsewhere(room_id)
        if elsewhere is not None:
            return await _relayed(request, elsewhere, room_id, name, viewer)
    # (Anyone watching a public room is told apart by address.)
    counted = viewer[0] if viewer else f"address:{client_address(request)}"
    if RELAYED_HEADER in request.headers:
        # Another instance's fetch for its viewers: they count through its
        # report, not as the one viewer whose token it carries.
        report = request.headers.get(VIEWERS_HEADER)
        if is_playlist and report is not None:
            live.relayed_viewers(room_id, report)
        live_here = is_playlist and live.ingests(room_id)
    else:
        live_here = is_playlist and live.watching(room_id, counted)
    if is_playlist and not path.is_file():
        if live_here:
            # Live, before its first segment (about a second): an empty live
            # playlist, which players poll again, rather than an error.
            return web.Response(
                body=_NOT_YET,
                headers={
                    "Content-Type": "application/vnd.apple.mpegurl",
                    "Cache-Control": "no-cache",
                },
            )
        # (A finished stream's last playlist, with its end marker, stays on
        # disk for players that catch up.)
        raise NotFound("nobody is live there", code="not_live")
    if not path.is_file():
        raise NotFound("that segment is gone (the playlist has newer ones)", code="not_found")
    if is_playlist and viewer is not None:
        playlist = path.read_text(encoding="utf-8", errors="replace")
        fresh = live.viewer_token(room_id, *viewer)
        return web.Response(
            body=with_query_parameter(playlist, QUERY_PARAMETER, fresh).encode(),
            headers={"Content-Type": served.content_type, "Cache-Control": served.cache_control},
        )
    return web.FileResponse(
        path,
        headers={"Content-Type": served.content_type, "Cache-Control": served.cache_control},
    )


async def _relayed(
    request: web.Request, instance: str, room_id: str, name: str, viewer: tuple[str, str] | None
) -> web.StreamResponse:
    """A room another instance ingests, fetched from it for a viewer
    admitted here: with a viewer token of theirs minted here, or none for
    a public room's anonymous viewer."""
    live = request.app[LIVE]
    relay = request.app[LIVE_RELAY]
    token = live.viewer_token(room_id, *viewer) if viewer is not None else None
    served = served_file(name)
    assert served is not None  # checked by the caller
    if not name.endswith(".m3u8"):
        return await relay.segment(request, instance, room_id, name, token)
    counted = viewer[0] if viewer else f"address:{client_address(request)}"
    report = live.viewers_report(room_id, live.watching_elsewhere(room_id, counted))
    playlist = await relay.playlist(instance, room_id, name, token, report)
    if token is not None:
        playlist = with_query_parameter(playlist, QUERY_PARAMETER, token)
    return web.Response(
        body=playlist.encode(),
        headers={"Content-Type": served.content_type, "Cache-Control": served.cache_control},
    )


def hls_directory(data_path: Path, room_id: str) -> Path:
    return data_path / "live" / room_id


ROUTES = [
    ApiRoute(
        "GET",
        "/api/v1/live",
        list_live,
        "The live rooms",
        "live",
        response=LiveRoomList,
        description="Oldest stream first. live.started and live.ended arrive over the "
        "WebSocket as streams begin and end. Each hls_url is absolute (on "
        "server.public_url, or the address the request came to) and carries a viewer "
        "token for the caller (?vt=, never the access token), so VLC, ffplay, ffmpeg or a "
        "<video> tag play it as it is, with no headers or cookies.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/live/key",
        get_key,
        "My stream key and ingest URL",
        "live",
        response=StreamKeyView,
        description="Made on first asking. Paste server_url and stream_key into OBS "
        "(Settings > Stream, Service: Custom).",
    ),
    ApiRoute(
        "POST",
        "/api/v1/live/key",
        new_key,
        "Replace my stream key",
        "live",
        response=StreamKeyView,
        description="The old key is refused from now on.",
    ),
    ApiRoute(
        "PUT",
        "/api/v1/live/title",
        set_title,
        "Set my live room's title",
        "live",
        request=SetTitle,
        response=StreamKeyView,
        errors=(400,),
        description=f"At most {TITLE_MAX} characters; spaces are collapsed. Used from "
        "the next time you go live.",
    ),
    ApiRoute(
        "PUT",
        "/api/v1/live/public",
        set_public,
        "Make my live room public, or not",
        "live",
        request=SetPublic,
        response=StreamKeyView,
        errors=(400,),
        description="Public: anyone plays the room's HLS without signing in, and its "
        "hls_url carries no viewer token. At once, for a stream under way too: made "
        "private again, players of the token-free URL are refused from their next "
        "playlist fetch. Off by default.",
    ),
    ApiRoute(
        "GET",
        "/live/{room_id}/{name}",
        hls_file,
        "A live room's HLS playlist or segment",
        "live",
        response_content_type="application/vnd.apple.mpegurl",
        errors=(401, 404, 503),
        query=(
            (
                QUERY_PARAMETER,
                "string",
                "A viewer token: set by the server in hls_url and in every URI of the playlist",
            ),
            ("access_token", "string", "Or an access token (prefer the viewer token)"),
        ),
        description="index.m3u8 (no-cache, changes every segment) and the segments it "
        "lists (cacheable). The playlist ends with #EXT-X-ENDLIST when the stream ends. "
        "A public room's need no credential. Else: the viewer token (vt) that hls_url "
        "carries, for plain players that send no headers or cookies; or a bearer token, "
        "the session cookie or ?access_token=, and then too every URI in the playlist "
        "carries a viewer token of the caller's, renewed on each fetch, so a player that "
        "follows them needs nothing "
        "else. A token is good for its room only, for live.viewer_token_seconds (the "
        "playlist: for as long as the same player keeps reloading it), and while the "
        "viewer's sign-in lives. 401 invalid_viewer_token (forged, changed, another "
        "room's), viewer_token_expired, session_ended (the viewer signed out, or the "
        "account was disabled or its password changed), unauthenticated (no credential). "
        "With several instances any of them serves any room, fetching it from the one "
        "that ingests it: 503 stream_unreachable while that one does not answer.",
    ),
]
