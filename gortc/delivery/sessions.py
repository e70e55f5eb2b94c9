"""/api/v1/sessions: where the caller is signed in, and signing one out."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response
from gortc.delivery.keys import ACCOUNTS
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import Timestamp


class SessionItem(BaseModel):
    id: str
    kind: str = Field(description="token (an API client) or cookie (a browser).")
    created_at: Timestamp = Field(description="When the sign-in happened.")
    last_used_at: Timestamp | None = Field(
        description="When its tokens were last renewed; null if never since the sign-in."
    )
    user_agent: str | None = Field(description="The User-Agent it signed in with.")
    ip: str | None = Field(
        description="The address it signed in from (the client's, behind a trusted proxy)."
    )
    current: bool = Field(description="This is the sign-in making the request.")


class SessionList(BaseModel):
    items: list[SessionItem]


async def list_sessions(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    sessions = await request.app[ACCOUNTS].list_sessions(principal.user_id)
    items = [
        SessionItem(
            id=session.id,
            kind=session.kind.value,
            created_at=session.created_at,
            last_used_at=last_used_at,
            user_agent=session.user_agent or None,
            ip=session.ip or None,
            current=session.id == principal.session_id,
        )
        for session, last_used_at in sessions
    ]
    return json_response(SessionList(items=items))


async def end_session(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[ACCOUNTS].end_own_session(principal.user_id, request.match_info["session_id"])
    return web.Response(status=204)


_TAG = "auth"

ROUTES = [
    ApiRoute(
        "GET",
        "/api/v1/sessions",
        list_sessions,
        "Where you are signed in",
        _TAG,
        response=SessionList,
        errors=(401,),
        description="Every sign-in of the caller that has not ended, newest first; "
        "`current` marks the one making the request.",
    ),
    ApiRoute(
        "DELETE",
        "/api/v1/sessions/{session_id}",
        end_session,
        "Sign one device out",
        _TAG,
        status=204,
        errors=(401, 403, 404),
        description="That sign-in ends at once: its access and refresh tokens, its "
        "cookie and its open WebSockets stop working. 404 for an id that is not one "
        "of the caller's sign-ins still going.",
    ),
]
