"""/api/v1/admin: what administrators do through the API (invite codes)."""

from __future__ import annotations

from aiohttp import web

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response, read_json
from gortc.delivery.keys import ADMIN
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import InviteList, InviteRequest, InviteView, NewInviteView


async def create_invite(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, InviteRequest)
    created = await request.app[ADMIN].create_invite(principal.user_id, body.note)
    view = NewInviteView(**InviteView.of(created.invite).model_dump(), code=created.code)
    return json_response(view, status=201)


async def list_invites(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    invites = await request.app[ADMIN].list_invites(principal.user_id)
    return json_response(InviteList(items=[InviteView.of(invite) for invite in invites]))


ROUTES = [
    ApiRoute(
        "POST",
        "/api/v1/admin/invites",
        create_invite,
        "Create an invite code",
        "admin",
        status=201,
        request=InviteRequest,
        response=NewInviteView,
        errors=(400, 401, 403),
        description="For sign-up policy 'invite': single use, expires after auth.invite_ttl.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/invites",
        list_invites,
        "List invite codes",
        "admin",
        response=InviteList,
        errors=(401, 403),
    ),
]
