"""GET /api/v1/ws: the real-time connection (see docs/api.md for the frames)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from gortc.delivery.auth import Principal, allowed_origins, authenticate
from gortc.delivery.bodies import describe_validation_error, json_response
from gortc.delivery.calls import (
    CallAnswerFrame,
    CallJoinFrame,
    CallLeaveFrame,
    CallMuteFrame,
    ConnectionSignals,
)
from gortc.delivery.chat_schemas import (
    DeleteFrame,
    EditFrame,
    ReadFrame,
    SendFrame,
    SyncFrame,
    TypingFrame,
    message_json,
)
from gortc.delivery.errors import status_of
from gortc.delivery.events import encode_event, encode_frame
from gortc.delivery.keys import ACCOUNTS, CALLS, CHAT, CONFIG, GROUPS, HUB, LIVE, WS_TICKETS
from gortc.delivery.live import LiveChatFrame, LiveUnwatchFrame, LiveWatchFrame
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import Timestamp
from gortc.entities.calls import HostedElsewhere, MediaKind
from gortc.entities.errors import DomainError, Forbidden, RateLimited, Unauthenticated
from gortc.entities.ids import new_id
from gortc.hub.connection import CLOSE_SESSION_ENDED, Connection, QueueLimits
from gortc.hub.frames import text_frame
from gortc.hub.hub import Hub, live_room_topic
from gortc.usecases.accounts import AccountService
from gortc.usecases.ws_tickets import QUERY_PARAMETER as TICKET_PARAMETER

log = logging.getLogger(__name__)

# Every frame type a client may send, and what each is parsed into: the
# authorization matrix test reads its discriminator mapping to find them all.
CLIENT_FRAMES: TypeAdapter[Any] = TypeAdapter(
    Annotated[
        SendFrame
        | EditFrame
        | DeleteFrame
        | SyncFrame
        | TypingFrame
        | ReadFrame
        | CallJoinFrame
        | CallAnswerFrame
        | CallMuteFrame
        | CallLeaveFrame
        | LiveWatchFrame
        | LiveUnwatchFrame
        | LiveChatFrame,
        Field(discriminator="type"),
    ]
)
_CALL_FRAMES = (CallJoinFrame, CallAnswerFrame, CallMuteFrame, CallLeaveFrame)
# Sends one connection may have waiting for their commit; past this the
# socket is not read until some are acknowledged (backpressure, not errors).
MAX_SENDS_IN_FLIGHT = 256


class _Session:
    """One open WebSocket: reads the client's frames and answers them."""

    def __init__(self, request: web.Request, principal: Principal, connection: Connection) -> None:
        self._app = request.app
        self._principal = principal
        self._connection = connection
        self._in_flight = asyncio.Semaphore(MAX_SENDS_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self.signals = ConnectionSignals(connection)
        # Call frames take a while (a join gathers ICE candidates), so they
        # run beside the chat frames, but one after another, in order.
        self._call_turn = asyncio.Lock()

    def reply(self, body: dict[str, Any]) -> None:
        self._connection.send(text_frame(encode_frame(body)))

    def error(self, error: DomainError, client_id: str | None) -> None:
        body: dict[str, Any] = {"type": "error", "code": error.code, "message": error.message}
        if isinstance(error, RateLimited):
            body["retry_after"] = round(error.retry_after, 3)
        if isinstance(error, HostedElsewhere):
            body["ws_url"] = error.ws_url
        if client_id is not None:
            body["client_id"] = client_id
        body["status"] = status_of(error)
        self.reply(body)

    def internal_error(self, what: str, client_id: str | None) -> None:
        """A bug, not the client's doing: logged with its traceback (call it
        in an ``except``), and the client gets an error frame. The socket
        stays: on an upgraded connection an HTTP 500 can no longer be
        written, and letting the exception out would write one anyway, as
        garbage in the WebSocket stream."""
        log.exception(
            "unexpected error on a WebSocket of user %s: %s", self._principal.user_id, what
        )
        body: dict[str, Any] = {
            "type": "error",
            "code": "internal_error",
            "status": 500,
            "message": "something went wrong on the server",
        }
        if client_id is not None:
            body["client_id"] = client_id
        self.reply(body)

    async def handle_text(self, text: str) -> None:
        try:
            raw = json.loads(text)
        # RecursionError: nesting thousands deep ("[[[[...") exhausts
        # json.loads's stack; as malformed as any other garbage.
        except (ValueError, RecursionError):
            self.reply(
                {
                    "type": "error",
                    "code": "malformed_json",
                    "status": 400,
                    "message": "frames must be JSON objects",
                }
            )
            return
        client_id = raw.get("client_id") if isinstance(raw, dict) else None
        client_id = client_id if isinstance(client_id, str) and len(client_id) <= 100 else None
        try:
            frame = CLIENT_FRAMES.validate_python(raw)
        except ValidationError as exc:
            problems = describe_validation_error(exc)
            body = {
                "type": "error",
                "code": "invalid_frame",
                "status": 400,
                "message": "; ".join(p["message"] for p in problems),
                "details": problems,
            }
            if client_id is not None:
                body["client_id"] = client_id
            self.reply(body)
            return
        if isinstance(frame, SendFrame):
            # Pipelined: the next frame is read while this one commits.
            await self._in_flight.acquire()
            task = asyncio.create_task(self._send(frame))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if isinstance(frame, _CALL_FRAMES):
            call_task = asyncio.create_task(self._call(frame))
            self._tasks.add(call_task)
            call_task.add_done_callback(self._tasks.discard)
            return
        try:
            await self._dispatch(frame)
        except DomainError as exc:
            self.error(exc, frame.client_id)
        except Exception:
            self.internal_error(frame.type, frame.client_id)

    async def _send(self, frame: SendFrame) -> None:
        try:
            message = await self._app[CHAT].send(
                self._principal.user_id,
                frame.group_id,
                frame.body,
                tuple(frame.file_ids),
                client_id=frame.client_id,
                reply_to=frame.reply_to,
            )
        except DomainError as exc:
            self.error(exc, frame.client_id)
        except Exception:
            self.internal_error(frame.type, frame.client_id)
        else:
            self.reply(
                {
                    "type": "message.ack",
                    "client_id": frame.client_id,
                    "message": message_json(message),
                }
            )
        finally:
            self._in_flight.release()

    async def _call(self, frame: Any) -> None:
        calls = self._app[CALLS]
        user_id = self._principal.user_id
        async with self._call_turn:
            try:
                match frame:
                    case CallJoinFrame():
                        await calls.join(user_id, frame.group_id, frame.sdp, self.signals)
                    case CallAnswerFrame():
                        await calls.answer(user_id, frame.group_id, frame.sdp, self.signals)
                    case CallMuteFrame():
                        await calls.mute(
                            user_id,
                            frame.group_id,
                            MediaKind(frame.kind),
                            frame.muted,
                            self.signals,
                        )
                    case CallLeaveFrame():
                        await calls.leave(user_id, frame.group_id, self.signals)
            except DomainError as exc:
                self.error(exc, frame.client_id)
            except Exception:
                self.internal_error(frame.type, frame.client_id)

    async def _dispatch(self, frame: Any) -> None:
        chat = self._app[CHAT]
        user_id = self._principal.user_id
        match frame:
            case EditFrame():
                await chat.edit(user_id, frame.group_id, frame.message_id, frame.body)
            case DeleteFrame():
                await chat.delete(user_id, frame.group_id, frame.message_id)
            case SyncFrame():
                result = await chat.sync(
                    user_id,
                    frame.group_id,
                    frame.after_seq or 0,
                    after_change=frame.after_change,
                )
                # A sync by seq answers exactly as it always has.
                where: dict[str, Any] = {"group_id": frame.group_id, "last_seq": result.last_seq}
                if result.last_change is not None:
                    where["last_change"] = result.last_change
                if result.reset:
                    self.reply({"type": "sync.reset", **where})
                    return
                for event in result.events:
                    self._connection.send(text_frame(encode_event(event)))
                self.reply({"type": "sync.done", **where})
            case TypingFrame():
                await chat.typing(user_id, frame.group_id)
            case ReadFrame():
                await chat.mark_read(user_id, frame.group_id, frame.seq)
            case LiveWatchFrame():
                room = await self._app[LIVE].room(frame.room_id)
                self._app[HUB].subscribe_topic(self._connection, live_room_topic(room.id))
                self.reply({"type": "live.watching", "room_id": room.id})
            case LiveUnwatchFrame():
                self._app[HUB].unsubscribe_topic(self._connection, live_room_topic(frame.room_id))
            case LiveChatFrame():
                await self._app[LIVE].chat(user_id, frame.room_id, frame.body, frame.client_id)

    async def finish(self) -> None:
        """Lets the sends already read finish (they are acknowledged to
        nobody, but stored all the same)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._app[CALLS].connection_closed(self.signals)


class WebSocketTicketView(BaseModel):
    ticket: str = Field(
        min_length=1,
        max_length=400,
        description="Open GET /api/v1/ws?ticket=<this> (on any instance) before expires_at",
    )
    expires_at: Timestamp


async def issue_ticket(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    issued = request.app[WS_TICKETS].mint(
        principal.user_id,
        principal.session_id,
        principal.claims.jti if principal.claims else None,
    )
    response = json_response(
        WebSocketTicketView(ticket=issued.ticket, expires_at=issued.expires_at)
    )
    response.headers["Cache-Control"] = "no-store"  # a credential, if a short-lived one
    return response


async def _signed_in(request: web.Request) -> tuple[Principal, str | None]:
    """Who opens the socket, and the jti of the access token it rests on
    (None for a cookie sign-in): by ticket, bearer token or cookie."""
    ticket = request.query.get(TICKET_PARAMETER)
    if ticket is None:
        principal = await authenticate(request, allow_query_token=True)
        if principal.claims is None and request.headers.get("Origin") not in allowed_origins(
            request
        ):
            # The handshake is a GET, so the CSRF rule for cookies is checked here.
            raise Forbidden(
                "cross-site WebSocket refused: the Origin is not this server",
                code="cross_site_request",
            )
        return principal, principal.claims.jti if principal.claims else None
    # No Origin check: a ticket is no ambient credential a browser attaches
    # by itself (as a cookie is), so another site cannot ride on it; only a
    # page of ours (POST with our Origin) or a token holder can get one.
    # That is what lets the page of the public name (or of another
    # instance) reach this instance, whose origin differs.
    claim = await request.app[WS_TICKETS].redeem(ticket)
    await request.app[ACCOUNTS].check_still_signed_in(claim.session_id, claim.jti)
    return Principal(claim.user_id, claim.session_id, None), claim.jti


async def websocket(request: web.Request) -> web.StreamResponse:
    try:
        principal, jti = await _signed_in(request)
    except Unauthenticated as exc:
        # Browsers cannot read the status of a refused handshake (they only
        # see 1006), so a WebSocket request is accepted and closed with 4001.
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            raise
        await ws.prepare(request)
        await ws.close(code=CLOSE_SESSION_ENDED, message=exc.message[:120].encode())
        return ws
    config = request.app[CONFIG].hub
    hub = request.app[HUB]
    ws = web.WebSocketResponse(
        heartbeat=config.heartbeat_seconds, max_msg_size=config.max_frame_bytes, compress=False
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    connection = Connection(
        connection_id=new_id(),
        user_id=principal.user_id,
        session_id=principal.session_id,
        jti=jti,
        ws=ws,
        transport=transport,
        limits=QueueLimits(
            max_frames=config.queue_max_frames,
            high_water=config.queue_high_water,
            evict_after=config.evict_after_seconds,
        ),
        batcher=hub.batcher,
    )
    # Registered before the groups are read, so a group joined meanwhile
    # is not missed.
    hub.register(connection)
    session = _Session(request, principal, connection)
    announced = False
    try:
        for group_id in await request.app[GROUPS].group_ids(principal.user_id):
            hub.subscribe_group(connection, group_id)
        await hub.announce(connection)
        announced = True
        session.reply(
            {"type": "ready", "user_id": principal.user_id, "connection_id": connection.id}
        )
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await session.handle_text(message.data)
            elif message.type is WSMsgType.BINARY:
                session.reply(
                    {
                        "type": "error",
                        "code": "invalid_frame",
                        "status": 400,
                        "message": "send JSON in text frames",
                    }
                )
    finally:
        cleanup = asyncio.create_task(_end(hub, connection, session, announced=announced))
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            # The handler is cancelled when the client's TCP connection is
            # lost (handler_cancellation, on in aiohttp's test server) or at
            # shutdown: the cleanup still runs to its end, or the user would
            # stay in a call, or registered in the hub, for ever.
            await cleanup
            raise
    return ws


async def _end(hub: Hub, connection: Connection, session: _Session, *, announced: bool) -> None:
    await hub.unregister(connection, announced=announced)
    await session.finish()
    await connection.stop()


async def recheck_sign_ins(hub: Hub, accounts: AccountService, interval: float) -> None:
    """Runs for the server's life: every ``interval`` seconds, closes the
    sockets whose sign-in has ended in a way no event announced (e.g. an
    operator disabling a user from the command line). One sweep for all
    sockets, and one check per sign-in, however many sockets it has."""
    while True:
        await asyncio.sleep(interval)
        by_sign_in: dict[tuple[str, str | None], list[Connection]] = {}
        for connection in hub.connections():
            by_sign_in.setdefault((connection.session_id, connection.jti), []).append(connection)
        for (session_id, jti), connections in by_sign_in.items():
            try:
                await accounts.check_still_signed_in(session_id, jti)
            except Unauthenticated:
                for connection in connections:
                    connection.close(CLOSE_SESSION_ENDED, "session ended")
            except DomainError:
                continue  # e.g. Redis briefly down: check again next time


ROUTES = [
    ApiRoute(
        "GET",
        "/api/v1/ws",
        websocket,
        "Open the real-time connection",
        "realtime",
        status=101,
        # 400: a GET that is no WebSocket handshake.
        errors=(400, 401, 403),
        query=(
            ("access_token", "string", "For browsers, which cannot set headers"),
            (
                TICKET_PARAMETER,
                "string",
                "A ticket of POST /api/v1/ws/tickets: for a page whose cookie this "
                "instance does not get (another host name)",
            ),
        ),
        description="Upgrades to a WebSocket; the frames are in docs/api.md. Signed in by "
        "the session cookie (from this server's own pages: the Origin is checked), a "
        "bearer token (header or access_token), or a ticket. A refused sign-in is a "
        "socket closed at once with 4001 and the reason (browsers cannot read a "
        "refused handshake's status).",
    ),
    ApiRoute(
        "POST",
        "/api/v1/ws/tickets",
        issue_ticket,
        "A one-minute ticket to open the WebSocket on another instance",
        "realtime",
        response=WebSocketTicketView,
        description="For the web client, whose session cookie another instance's host "
        "name (server.instance_url, e.g. a call's ws_url) does not receive: the ticket "
        "opens GET /api/v1/ws?ticket=… there, as the caller, until expires_at (about "
        "60 s), once. It only opens sockets, and only while the sign-in it was made for "
        "lasts: signing out ends it. Ask for a new one for every socket.",
    ),
]
