"""The authorization matrix: every route and every WebSocket frame the
client sends, for each of anonymous, stranger, member, group admin, group
owner and server administrator, with the answer each must get.

One table per kind (ROUTES, FRAMES), one row a route (or a variant of one:
another object, another credential), one outcome a role, in the order of
``ROLES``. Each cell is a test of its own. Who the roles are, and what the
world holds, is in ``tests/e2e/authz_world.py``: "owner" owns the group and
is the one the personal objects (file, live room, sign-ins, invitation)
belong to.

What the outcomes say, read down a column:
- anonymous: 401 wherever a sign-in is needed; capabilities (a signed URL,
  a viewer token) and the sign-in routes themselves work without one.
- stranger / server_admin (in no group): 404 for anything about the group,
  its messages, its call or the owner's files, the same answer as for
  something that does not exist; being a server administrator gives no
  right inside anyone's group or files.
- member / admin: 403 where they are in the group but their role lacks the
  right (rights are in gortc/entities/rights.py).

A route added to the server without a row here fails
``test_every_route_has_a_row``; a new frame type fails
``test_every_frame_type_has_a_row``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import pytest_asyncio
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer

from gortc.app import create_app
from gortc.delivery.websocket import CLIENT_FRAMES
from gortc.entities.ids import new_id
from tests.conftest import TEST_PASSWORD, make_config
from tests.e2e.authz_world import (
    FILE_BYTES,
    ROLES,
    World,
    anonymous_frame,
    build_world,
    file_form,
    played_frame,
    sdp_offer,
    tiny_png,
)
from tests.e2e.ws_client import WsClient


@dataclass(frozen=True)
class Req:
    """How one cell calls its route: path parameters over the world's
    defaults, a body, and the credential when it is not the role's own."""

    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""
    # A sign-in of the role's own to use instead of the world's (for cells
    # that end the sign-in they use), or {} for none at all.
    auth: dict[str, str] | None = None
    after: Callable[[], Awaitable[None]] | None = None  # puts the world back


Prepare = Callable[[World, str], Awaitable[Req]]


async def plain(w: World, role: str) -> Req:
    return Req()


def body(json: Any) -> Prepare:
    async def prepare(w: World, role: str) -> Req:
        return Req(json=json)

    return prepare


@dataclass(frozen=True)
class Row:
    expect: str  # one outcome per role, in the order of ROLES
    call: str  # the method and the route's template, exactly as the router has them
    prepare: Prepare = plain
    variant: str = ""  # what sets this row apart from the route's first

    @property
    def method(self) -> str:
        return self.call.split()[0]

    @property
    def route(self) -> str:
        return self.call.split()[1]

    def outcomes(self) -> dict[str, str]:
        values = self.expect.split()
        assert len(values) == len(ROLES), f"{self.route}: {len(values)} outcomes"
        return dict(zip(ROLES, values, strict=True))

    @property
    def name(self) -> str:
        return f"{self.method} {self.route}" + (f" ({self.variant})" if self.variant else "")


# -- how cells make what they change ------------------------------------------


def bearer_of(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def cookie_sign_in(w: World, role: str) -> Req:
    return Req(json={"login": "ivan", "password": TEST_PASSWORD}, headers=w.origin())


async def fresh_sign_in(w: World, role: str) -> Req:
    """A sign-in of the role's own, which the cell may end."""
    if role == "anonymous":
        return Req()
    return Req(auth=bearer_of(await w.sign_in_again(role)))


async def new_username(w: World, role: str) -> Req:
    name = w.unique("newcomer")
    return Req(json={"username": name, "email": f"{name}@example.com", "password": TEST_PASSWORD})


async def refresh_token(w: World, role: str) -> Req:
    tokens = await w.sign_in_again(role if role != "anonymous" else "stranger")
    return Req(json={"refresh_token": tokens["refresh_token"]})


async def password_change(w: World, role: str) -> Req:
    """Changing it ends the person's other sign-ins: the world signs them
    in again afterwards (the password stays the same)."""
    if role == "anonymous":
        return Req(json={"current_password": TEST_PASSWORD, "new_password": TEST_PASSWORD})
    tokens = await w.sign_in_again(role)

    async def sign_in_again() -> None:
        w.tokens[role] = await w.sign_in_again(role)
        await w.sign_in_by_cookie(role)

    return Req(
        json={"current_password": TEST_PASSWORD, "new_password": TEST_PASSWORD},
        auth=bearer_of(tokens),
        after=sign_in_again,
    )


async def owners_session(w: World, role: str) -> Req:
    session_id, _ = await w.new_session("owner")
    return Req(params={"session_id": session_id})


async def avatar_upload(w: World, role: str) -> Req:
    return Req(data=file_form("me.png", tiny_png(), "image/png"))


async def owner_has_avatar(w: World, role: str) -> Req:
    await w.call(
        "PUT",
        "/api/v1/users/me/avatar",
        "owner",
        expect=200,
        data=file_form("me.png", tiny_png(), "image/png"),
    )
    return Req()


async def new_group(w: World, role: str) -> Req:
    return Req(params={"group_id": await w.new_group()})


async def new_person_to_add(w: World, role: str) -> Req:
    person = await w.new_person()
    return Req(json={"user_id": person["user"]["id"]})


async def new_person_in_direct(w: World, role: str) -> Req:
    person = await w.new_person()
    return Req(params={"group_id": w.ids["direct_id"]}, json={"user_id": person["user"]["id"]})


async def new_member_promoted(w: World, role: str) -> Req:
    return Req(params={"user_id": await w.new_member()}, json={"role": "admin"})


async def new_member(w: World, role: str) -> Req:
    return Req(params={"user_id": await w.new_member()})


async def new_admin(w: World, role: str) -> Req:
    person = await w.new_person()
    await w.call(
        "POST",
        f"/api/v1/groups/{w.ids['group_id']}/members",
        "owner",
        expect=201,
        json={"user_id": person["user"]["id"], "role": "admin"},
    )
    return Req(params={"user_id": person["user"]["id"]})


async def leaving(w: World, role: str) -> Req:
    """Each removes themself from a new group like the world's."""
    user_id = w.user_id(role) if role != "anonymous" else w.user_id("member")
    return Req(params={"group_id": await w.new_group(), "user_id": user_id})


def direct(json: Any = None) -> Prepare:
    """The owner's and the member's direct conversation, as a group."""

    async def prepare(w: World, role: str) -> Req:
        return Req(params={"group_id": w.ids["direct_id"]}, json=json)

    return prepare


async def public_room(w: World, role: str) -> Req:
    """The owner made the room public: anyone plays it, with no token."""
    await w.ensure_live()
    await w.call("PUT", "/api/v1/live/public", "owner", expect=200, json={"public": True})

    async def private_again() -> None:
        await w.call("PUT", "/api/v1/live/public", "owner", expect=200, json={"public": False})

    return Req(auth={}, after=private_again)


async def transfer_to_member(w: World, role: str) -> Req:
    return Req(params={"group_id": await w.new_group()}, json={"user_id": w.user_id("member")})


async def invitation_to_owner(w: World, role: str) -> Req:
    return Req(params={"invitation_id": await w.new_invitation()})


async def owners_message(w: World, role: str) -> Req:
    return Req(params={"message_id": await w.new_message("owner")}, json={"body": "edited"})


async def members_message(w: World, role: str) -> Req:
    return Req(params={"message_id": await w.new_message("member")})


async def reacted_message(w: World, role: str) -> Req:
    """A new message with the role's reaction on it, when they can put one."""
    message_id = await w.new_message("owner")
    if role in ("member", "admin", "owner"):
        path = f"/api/v1/groups/{w.ids['group_id']}/messages/{message_id}/reactions/👍"
        await w.call("PUT", path, role, expect=200)
    return Req(params={"message_id": message_id})


async def attaching_owners_file(w: World, role: str) -> Req:
    """Attaching a file would show it to the group: only one's own."""
    return Req(json={"body": "see this", "file_ids": [await w.new_file("owner")]})


async def quoting_into_own_group(w: World, role: str) -> Req:
    """A reply in a group of the caller's own that quotes the world's
    message: a quote would show its text to people outside the group."""
    if role == "anonymous":
        return Req(json={"body": "re", "reply_to": w.ids["message_id"]})
    group = await w.call("POST", "/api/v1/groups", role, expect=201, json={"name": w.unique("own")})
    return Req(
        params={"group_id": group["id"]}, json={"body": "re", "reply_to": w.ids["message_id"]}
    )


async def quoting_in_direct(w: World, role: str) -> Req:
    person = await w.new_person()
    return Req(
        params={"user_id": person["user"]["id"]},
        json={"body": "re", "reply_to": w.ids["message_id"]},
    )


async def own_stream_key(w: World, role: str) -> Req:
    """The caller's own stream key, for the owner's room: only the owner's
    ends it (the next cell that needs the room publishes it again)."""
    await w.ensure_live()
    if role == "anonymous":
        return Req()
    key = await w.call("GET", "/api/v1/live/key", role, expect=200)
    return Req(auth={"Authorization": f"Bearer {key['stream_key']}"})  # not an access token


async def in_the_group(w: World, role: str) -> Req:
    return Req(query=f"q=hello&group_id={w.ids['group_id']}")


async def new_peer(w: World, role: str) -> Req:
    person = await w.new_person()
    return Req(params={"user_id": person["user"]["id"]}, json={"body": "hello"})


async def upload_form(w: World, role: str) -> Req:
    return Req(data=file_form(w.unique("upload") + ".txt"))


async def owners_new_file(w: World, role: str) -> Req:
    return Req(params={"file_id": await w.new_file()})


async def attached_file(w: World, role: str) -> Req:
    return Req(params={"file_id": w.ids["attached_file_id"]}, json={"name": "renamed.txt"})


async def new_attached_file(w: World, role: str) -> Req:
    file_id = await w.new_file("owner")
    await w.new_message("owner", file_ids=[file_id])
    return Req(params={"file_id": file_id})


async def file_of_deleted_message(w: World, role: str) -> Req:
    """Access through a message ends with the message."""
    file_id = await w.new_file("owner")
    message_id = await w.new_message("owner", file_ids=[file_id])
    await w.call(
        "DELETE", f"/api/v1/groups/{w.ids['group_id']}/messages/{message_id}", "owner", expect=204
    )
    return Req(params={"file_id": file_id})


async def file_in_direct(w: World, role: str) -> Req:
    file_id = await w.new_file("owner")
    await w.call(
        "POST",
        f"/api/v1/direct/{w.user_id('member')}/messages",
        "owner",
        expect=201,
        json={"body": "for you", "file_ids": [file_id]},
    )
    return Req(params={"file_id": file_id})


async def new_person_as_admin(w: World, role: str) -> Req:
    person = await w.new_person()
    return Req(json={"user_id": person["user"]["id"], "role": "admin"})


async def signed_upload(w: World, role: str) -> Req:
    """A URL the owner was given: whoever holds it may use it, once."""
    answer = await w.call(
        "POST",
        "/api/v1/files/upload-url",
        "owner",
        expect=200,
        json={"name": w.unique("signed") + ".txt", "size": len(FILE_BYTES)},
    )
    return Req(query=urlsplit(answer["url"]).query, data=FILE_BYTES)


def tampered(query: str) -> str:
    values = dict(parse_qsl(query))
    signature = values["signature"]
    values["signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    return urlencode(values)


async def signed_upload_tampered(w: World, role: str) -> Req:
    signed = await signed_upload(w, role)
    return Req(query=tampered(signed.query), data=FILE_BYTES)


async def signed_download(w: World, role: str) -> Req:
    answer = await w.call(
        "POST", f"/api/v1/files/{w.ids['file_id']}/download-url", "owner", expect=200
    )
    return Req(query=urlsplit(answer["url"]).query)


async def signed_download_tampered(w: World, role: str) -> Req:
    return Req(query=tampered((await signed_download(w, role)).query))


async def sdp_with_own_token(w: World, role: str) -> Req:
    """An access token is not a stream key: WHIP refuses everyone's."""
    return Req(data=b"v=0\r\n", headers={"Content-Type": "application/sdp"})


async def whep_offer(w: World, role: str) -> Req:
    await w.ensure_live()
    async with contextlib.AsyncExitStack() as stack:
        offer = await sdp_offer(stack, video=True)
    return Req(data=offer.encode(), headers={"Content-Type": "application/sdp"})


async def owners_whep_session(w: World, role: str) -> Req:
    """A viewing session the owner opened (its URL is only theirs to know),
    ended by the owner after the cell if the cell did not end it."""
    offer = await whep_offer(w, role)
    response = await w.client.post(
        f"/live/{w.ids['room_id']}/whep", data=offer.data, headers=w.auth("owner") | offer.headers
    )
    assert response.status == 201, await response.text()
    location = response.headers["Location"]

    async def end_it() -> None:
        await w.client.delete(location, headers=w.auth("owner"))

    return Req(params={"resource": location.rsplit("/", 1)[1]}, after=end_it)


async def live_room(w: World, role: str) -> Req:
    await w.ensure_live()
    return Req()


async def owners_viewer_token(w: World, role: str) -> Req:
    """The hls_url the owner was given, played by whoever has it."""
    url = await w.viewer_url("owner")
    return Req(query=urlsplit(url).query, auth={})


async def owners_token_elsewhere(w: World, role: str) -> Req:
    """The owner's viewer token on another room (the member's): it is bound
    to the room it was given for."""
    query = (await owners_viewer_token(w, role)).query
    await w.ensure_live("member")
    return Req(params={"room_id": w.user_id("member")}, query=query, auth={})


async def cookie_from_another_site(w: World, role: str) -> Req:
    """The role's own cookie, sent by a page of another site (CSRF)."""
    cookie = {} if role == "anonymous" else {"Cookie": w.cookies[role]}
    return Req(json={"name": "forged"}, auth=cookie | {"Origin": "https://elsewhere.example"})


async def token_in_query(w: World, role: str) -> Req:
    """The access token in the URL, where only a browser's WebSocket, a
    player and a WHEP client may put it."""
    await w.ensure_live()
    query = (
        "" if role == "anonymous" else urlencode({"access_token": w.tokens[role]["access_token"]})
    )
    return Req(query=query, auth={})


async def ticket_from_another_origin(w: World, role: str) -> Req:
    """The role's WebSocket ticket (asked for with its token), used from a
    page of another origin, as the page of the public name does on an
    instance of its own host name: the ticket, not the Origin, decides."""
    if role == "anonymous":
        return Req(query=urlencode({"ticket": "not.a.ticket.0.x"}), auth={})
    answer = await w.client.post("/api/v1/ws/tickets", headers=w.auth(role))
    assert answer.status == 200, await answer.text()
    ticket = (await answer.json())["ticket"]
    return Req(query=urlencode({"ticket": ticket}), auth={"Origin": "https://elsewhere.example"})


async def remote_scraper(w: World, role: str) -> Req:
    # The world's server trusts 127.0.0.1 as a proxy: this request says it
    # comes from a client elsewhere (no packet leaves loopback).
    return Req(headers={"X-Forwarded-For": "203.0.113.7"})


async def restore_private(w: World, role: str) -> Req:
    return Req(json={"public": False})


# -- the table ----------------------------------------------------------------
# fmt: off
# A table: one row a line (E501 is off for this file).
#      anon str mem adm own srv

ROUTES: list[Row] = [
    # system
    Row("200 200 200 200 200 200", "GET /healthz"),
    Row("200 200 200 200 200 200", "GET /api/v1/server"),
    Row("200 200 200 200 200 200", "GET /api/openapi.json"),
    Row("200 200 200 200 200 200", "GET /metrics", variant="from loopback"),
    Row("404 404 404 404 404 404", "GET /metrics", remote_scraper, "from elsewhere"),
    # signing in and out: the body is the credential
    Row("201 201 201 201 201 201", "POST /api/v1/auth/register", new_username),
    Row("200 200 200 200 200 200", "POST /api/v1/auth/login", body({"login": "ivan", "password": TEST_PASSWORD})),
    Row("200 200 200 200 200 200", "POST /api/v1/auth/refresh", refresh_token),
    Row("401 204 204 204 204 204", "POST /api/v1/auth/logout", fresh_sign_in),
    Row("200 200 200 200 200 200", "POST /api/v1/auth/session", cookie_sign_in),
    Row("401 204 204 204 204 204", "DELETE /api/v1/auth/session", fresh_sign_in),
    Row("400 400 400 400 400 400", "POST /api/v1/auth/verify-email", body({"token": "not-a-token"})),
    Row("401 202 202 202 202 202", "POST /api/v1/auth/verify-email/resend"),
    Row("202 202 202 202 202 202", "POST /api/v1/auth/password-reset", body({"email": "olga@example.com"})),
    Row("400 400 400 400 400 400", "POST /api/v1/auth/password-reset/confirm", body({"token": "not-a-token", "password": TEST_PASSWORD})),
    # sign-ins: the owner's own
    Row("401 200 200 200 200 200", "GET /api/v1/sessions"),
    Row("401 404 404 404 204 404", "DELETE /api/v1/sessions/{session_id}", owners_session),
    # people
    Row("401 200 200 200 200 200", "GET /api/v1/users/search", body(None)),
    Row("401 200 200 200 200 200", "GET /api/v1/users/me"),
    Row("401 200 200 200 200 200", "PATCH /api/v1/users/me", body({"display_name": "Someone"})),
    Row("401 204 204 204 204 204", "POST /api/v1/users/me/password", password_change),
    Row("401 200 200 200 200 200", "PUT /api/v1/users/me/avatar", avatar_upload),
    Row("401 204 204 204 204 204", "DELETE /api/v1/users/me/avatar"),
    Row("401 200 200 200 200 200", "GET /api/v1/users/{user_id}"),
    Row("401 200 200 200 200 200", "GET /api/v1/users/{user_id}/avatar", owner_has_avatar),
    # the server's administration
    Row("401 403 403 403 403 201", "POST /api/v1/admin/invites", body({"note": "for a friend"})),
    Row("401 403 403 403 403 200", "GET /api/v1/admin/invites"),
    # groups
    Row("401 201 201 201 201 201", "POST /api/v1/groups", body({"name": "another"})),
    Row("401 403 403 403 403 403", "POST /api/v1/groups", cookie_from_another_site, "cookie, another site's Origin"),
    Row("401 200 200 200 200 200", "GET /api/v1/groups"),
    Row("401 404 200 200 200 404", "GET /api/v1/groups/{group_id}"),
    Row("401 401 401 401 401 401", "GET /api/v1/groups/{group_id}", token_in_query, "?access_token="),
    Row("401 404 403 200 200 404", "PATCH /api/v1/groups/{group_id}", body({"name": "renamed"})),
    Row("401 404 403 403 204 404", "DELETE /api/v1/groups/{group_id}", new_group),
    Row("401 404 200 200 200 404", "GET /api/v1/groups/{group_id}/members"),
    # the owner's and the member's direct conversation: no roles to manage
    Row("401 404 200 404 200 404", "GET /api/v1/groups/{group_id}", direct(), "direct"),
    Row("401 404 403 404 403 404", "PATCH /api/v1/groups/{group_id}", direct({"name": "us"}), "direct"),
    Row("401 404 403 404 403 404", "DELETE /api/v1/groups/{group_id}", direct(), "direct"),
    Row("401 404 403 404 403 404", "POST /api/v1/groups/{group_id}/members", new_person_in_direct, "direct"),
    Row("401 404 200 404 200 404", "GET /api/v1/groups/{group_id}/messages", direct(), "direct"),
    Row("401 404 201 404 201 404", "POST /api/v1/groups/{group_id}/messages", direct({"body": "hi"}), "direct"),
    Row("401 404 403 201 201 404", "POST /api/v1/groups/{group_id}/members", new_person_to_add, "as a member"),
    Row("401 404 403 403 201 404", "POST /api/v1/groups/{group_id}/members", new_person_as_admin, "as an admin"),
    Row("401 404 403 403 200 404", "PATCH /api/v1/groups/{group_id}/members/{user_id}", new_member_promoted),
    Row("401 404 403 204 204 404", "DELETE /api/v1/groups/{group_id}/members/{user_id}", new_member, "a member"),
    Row("401 404 403 403 204 404", "DELETE /api/v1/groups/{group_id}/members/{user_id}", new_admin, "an admin"),
    Row("401 404 204 204 409 404", "DELETE /api/v1/groups/{group_id}/members/{user_id}", leaving, "oneself: leaving"),
    Row("401 404 403 403 200 404", "POST /api/v1/groups/{group_id}/owner", transfer_to_member),
    Row("401 404 403 201 201 404", "POST /api/v1/groups/{group_id}/invitations", new_person_to_add),
    Row("401 404 200 200 200 404", "GET /api/v1/groups/{group_id}/invitations"),
    Row("401 200 200 200 200 200", "GET /api/v1/invitations"),
    Row("401 404 404 404 200 404", "POST /api/v1/invitations/{invitation_id}/accept", invitation_to_owner),
    Row("401 404 404 404 204 404", "POST /api/v1/invitations/{invitation_id}/decline", invitation_to_owner),
    # messages
    Row("401 200 200 200 200 200", "GET /api/v1/messages/search", variant="all my groups"),
    Row("401 404 200 200 200 404", "GET /api/v1/messages/search", in_the_group, "in the group"),
    Row("401 404 200 200 200 404", "GET /api/v1/groups/{group_id}/messages"),
    Row("401 404 201 201 201 404", "POST /api/v1/groups/{group_id}/messages", body({"body": "hi"})),
    Row("401 404 403 403 200 404", "PATCH /api/v1/groups/{group_id}/messages/{message_id}", owners_message),
    Row("401 404 403 204 204 404", "DELETE /api/v1/groups/{group_id}/messages/{message_id}", owners_message, "the owner's"),
    Row("401 404 204 204 204 404", "DELETE /api/v1/groups/{group_id}/messages/{message_id}", members_message, "the member's"),
    Row("401 404 200 200 200 404", "PUT /api/v1/groups/{group_id}/messages/{message_id}/reactions/{emoji}", owners_message),
    Row("401 404 200 200 200 404", "DELETE /api/v1/groups/{group_id}/messages/{message_id}/reactions/{emoji}", reacted_message),
    Row("401 404 204 204 204 404", "POST /api/v1/groups/{group_id}/read", body({"seq": 1})),
    Row("401 404 404 404 201 404", "POST /api/v1/groups/{group_id}/messages", attaching_owners_file, "attaching the owner's file"),
    Row("401 400 400 400 400 400", "POST /api/v1/groups/{group_id}/messages", quoting_into_own_group, "quoting the group in another"),
    Row("401 201 201 201 201 201", "POST /api/v1/direct/{user_id}/messages", new_peer),
    Row("401 400 400 400 400 400", "POST /api/v1/direct/{user_id}/messages", quoting_in_direct, "quoting the group"),
    Row("401 404 200 404 404 404", "GET /api/v1/direct/{user_id}"),
    # files: the owner's, and one attached to a message in the group
    Row("401 201 201 201 201 201", "POST /api/v1/files", upload_form),
    Row("401 200 200 200 200 200", "GET /api/v1/files"),
    Row("401 200 200 200 200 200", "GET /api/v1/files/search"),
    Row("401 200 200 200 200 200", "GET /api/v1/files/usage"),
    Row("401 404 404 404 200 404", "GET /api/v1/files/{file_id}"),
    Row("401 404 200 200 200 404", "GET /api/v1/files/{file_id}", attached_file, "attached in the group"),
    Row("401 404 404 404 200 404", "GET /api/v1/files/{file_id}/content"),
    Row("401 404 200 200 200 404", "GET /api/v1/files/{file_id}/content", attached_file, "attached in the group"),
    Row("401 404 404 404 200 404", "GET /api/v1/files/{file_id}/content", file_of_deleted_message, "its message deleted"),
    Row("401 404 200 404 200 404", "GET /api/v1/files/{file_id}/content", file_in_direct, "attached in the direct conversation"),
    Row("401 404 404 404 200 404", "PATCH /api/v1/files/{file_id}", body({"name": "renamed.txt"})),
    Row("401 404 404 404 200 404", "PATCH /api/v1/files/{file_id}", attached_file, "attached in the group"),
    Row("401 404 404 404 204 404", "DELETE /api/v1/files/{file_id}", owners_new_file),
    Row("401 404 404 404 204 404", "DELETE /api/v1/files/{file_id}", new_attached_file, "attached in the group"),
    Row("401 200 200 200 200 200", "POST /api/v1/files/upload-url", body({"name": "a.txt", "size": 3})),
    # files on the local disk: no direct uploads (tests/e2e/test_files_on_s3.py has S3's)
    Row("401 409 409 409 409 409", "POST /api/v1/files/direct-uploads", body({"name": "a.txt", "size": 3})),
    Row("401 400 400 400 400 400", "POST /api/v1/files/direct-uploads/confirm", body({"upload_id": "made.up"}), "an id never given"),
    Row("201 201 201 201 201 201", "PUT /api/v1/files/upload", signed_upload, "the owner's signed URL"),
    Row("403 403 403 403 403 403", "PUT /api/v1/files/upload", signed_upload_tampered, "tampered"),
    Row("401 404 404 404 200 404", "POST /api/v1/files/{file_id}/download-url"),
    Row("401 404 200 200 200 404", "POST /api/v1/files/{file_id}/download-url", attached_file, "attached in the group"),
    Row("200 200 200 200 200 200", "GET /api/v1/files/{file_id}/download", signed_download, "the owner's signed URL"),
    Row("403 403 403 403 403 403", "GET /api/v1/files/{file_id}/download", signed_download_tampered, "tampered"),
    # calls
    Row("401 200 200 200 200 200", "GET /api/v1/calls/ice-servers"),
    Row("401 404 200 200 200 404", "GET /api/v1/groups/{group_id}/call"),
    # live: rooms are open to every signed-in person; keys are one's own
    Row("401 200 200 200 200 200", "GET /api/v1/live", live_room),
    Row("401 200 200 200 200 200", "GET /api/v1/live/key"),
    Row("401 200 200 200 200 200", "POST /api/v1/live/key"),
    Row("401 200 200 200 200 200", "PUT /api/v1/live/title", body({"title": "my stream"})),
    Row("401 200 200 200 200 200", "PUT /api/v1/live/public", restore_private),
    Row("401 200 200 200 200 200", "GET /live/{room_id}/{name}", live_room, "signed in"),
    Row("401 200 200 200 200 200", "GET /live/{room_id}/{name}", token_in_query, "?access_token="),
    Row("200 200 200 200 200 200", "GET /live/{room_id}/{name}", owners_viewer_token, "the owner's viewer token"),
    Row("200 200 200 200 200 200", "GET /live/{room_id}/{name}", public_room, "public, no credentials"),
    Row("401 401 401 401 401 401", "GET /live/{room_id}/{name}", owners_token_elsewhere, "the owner's viewer token, another room"),
    Row("401 401 401 401 401 401", "POST /api/v1/live/whip", sdp_with_own_token),
    Row("401 401 401 401 401 401", "DELETE /api/v1/live/whip/{room_id}", variant="access token"),
    Row("401 401 401 401 200 401", "DELETE /api/v1/live/whip/{room_id}", own_stream_key, "own stream key"),
    Row("401 201 201 201 201 201", "POST /live/{room_id}/whep", whep_offer),
    Row("401 404 404 404 200 404", "DELETE /live/{room_id}/whep/{resource}", owners_whep_session),
    # the real-time connection: "101" is a socket that says ready
    Row("4001 101 101 101 101 101", "GET /api/v1/ws"),
    Row("4001 101 101 101 101 101", "GET /api/v1/ws", token_in_query, "?access_token="),
    Row("4001 403 403 403 403 403", "GET /api/v1/ws", cookie_from_another_site, "cookie, another site's Origin"),
    Row("4001 101 101 101 101 101", "GET /api/v1/ws", ticket_from_another_origin, "?ticket=, another Origin"),
    Row("401 200 200 200 200 200", "POST /api/v1/ws/tickets"),
]
# fmt: on

# Pages and files of the web client: the same for everyone, no data in them.
NOT_IN_TABLE = {
    ("GET", "/"): "the web client's page",
    ("HEAD", "/"): "the web client's page",
    ("GET", "/static"): "the web client's files",
    ("HEAD", "/static"): "the web client's files",
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    config = make_config(
        tmp_path_factory.mktemp("authz"),
        limits={"enabled": False},
        rtc={"host_addresses": ["127.0.0.1"]},
        server={"trusted_proxies": ["127.0.0.1"]},
    )
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    world = None
    try:
        world = await build_world(client)
        yield world
    finally:
        if world is not None:
            await world.close()
        await client.close()


in_world = pytest.mark.asyncio(loop_scope="module")


def cells(rows: list[Any]) -> list[Any]:
    return [pytest.param(row, role, id=f"{row.name} [{role}]") for row in rows for role in ROLES]


# Cells that present a credential of their own (a new sign-in, a stream
# key, a viewer token, none at all): they are played once, not once a way.
OWN_CREDENTIAL: set[Prepare] = {
    fresh_sign_in,
    password_change,
    public_room,
    own_stream_key,
    owners_viewer_token,
    owners_token_elsewhere,
    cookie_from_another_site,
    token_in_query,
    ticket_from_another_origin,
}


def cells_both_ways(rows: list[Row]) -> list[Any]:
    """Each signed-in role with its access token, and again with the web
    client's session cookie: the same answers either way."""
    return [
        pytest.param(
            row, role, how, id=f"{row.name} [{role}{', cookie' if how == 'cookie' else ''}]"
        )
        for row in rows
        for role in ROLES
        for how in (
            ("bearer",)
            if role == "anonymous" or row.prepare in OWN_CREDENTIAL
            else ("bearer", "cookie")
        )
    ]


async def route_outcome(w: World, row: Row, role: str, how: str = "bearer") -> tuple[str, str]:
    """The status (or for the WebSocket, 101 or the close code), and the
    error body when there is one (to show in a failure)."""
    w.client.session.cookie_jar.clear()  # a cell that signed in by cookie leaves no trace
    req = await row.prepare(w, role)
    path = row.route.format(**(w.ids | req.params))
    if req.query:
        path += "?" + req.query
    elif row.route.endswith("/search"):
        path += "?q=hello"
    assert req.auth is None or how == "bearer", "add its prepare to OWN_CREDENTIAL"
    headers = (w.auth(role, how) if req.auth is None else req.auth) | req.headers
    if row.route == "/api/v1/ws":
        return await socket_outcome(w, path, headers), ""
    detail = ""
    try:
        response = await w.client.request(
            row.method, path, headers=headers, json=req.json, data=req.data
        )
        status = response.status
        if status >= 400:  # refusals have the API's error body
            error = (await response.json())["error"]
            assert error["code"] and error["message"], error
            detail = f"{error['code']}: {error['message']}"
        else:
            if "/whep/" in response.headers.get("Location", ""):
                # A viewing session this cell opened: its viewer ends it
                # (rather than leave it to fail its ICE checks, later).
                ended = await w.client.delete(response.headers["Location"], headers=headers)
                assert ended.status == 200, await ended.text()
            leaked = leaks(w, role, await response.text(errors="replace"))
            if leaked:  # a success must not show what the caller may not see
                return f"{status}+leak", f"the answer shows {leaked}"
    finally:
        w.client.session.cookie_jar.clear()
        if req.after is not None:
            await req.after()
    return str(status), detail


# Who may see each of the world's objects: no answer to anyone else may
# carry its id (a 200 that lists or quotes what it should not).
SEEN_BY = {
    "direct_id": {"member", "owner"},
    "group_id": {"member", "admin", "owner"},
    "message_id": {"member", "admin", "owner"},
    "attached_file_id": {"member", "admin", "owner"},
    "file_id": {"owner"},
    "owner_email": {"owner"},  # people are shown to others without it
}


def leaks(w: World, role: str, text: str) -> list[str]:
    return [name for name, roles in SEEN_BY.items() if role not in roles and w.ids[name] in text]


async def socket_outcome(w: World, path: str, headers: dict[str, str]) -> str:
    """101 for a socket that says ready; the close code of one closed at
    once; the status of a refused handshake."""
    try:
        ws = await w.client.ws_connect(path, headers=headers)
    except WSServerHandshakeError as exc:
        return str(exc.status)
    try:
        first = await ws.receive(timeout=5.0)
        if first.type.name == "TEXT" and first.json()["type"] == "ready":
            return "101"
        return str(ws.close_code)
    finally:
        await ws.close()


@in_world
@pytest.mark.parametrize(("row", "role", "how"), cells_both_ways(ROUTES))
async def test_route(world: World, row: Row, role: str, how: str) -> None:
    expected = row.outcomes()[role]
    outcome, detail = await route_outcome(world, row, role, how)
    assert outcome == expected, f"{row.name} as {role} ({how}): {outcome} {detail}"


# Placeholders that name no object whose existence could be hidden.
NOT_AN_OBJECT = {"emoji", "name"}
HIDDEN = [
    pytest.param(row, role, id=f"{row.name} [{role}]")
    for row in ROUTES
    for role in ("stranger", "server_admin")
    if row.outcomes()[role] == "404" and "{" in row.route
]


@in_world
@pytest.mark.parametrize(("row", "role"), HIDDEN)
async def test_what_is_hidden_looks_like_what_is_not_there(
    world: World, row: Row, role: str
) -> None:
    """An outsider's 404 for a real object says word for word what they
    are told for an id that names nothing: existence itself does not leak."""
    hidden = await route_outcome(world, row, role)
    placeholders = {
        name
        for name in world.ids | {"session_id": "", "invitation_id": "", "resource": ""}
        if "{" + name + "}" in row.route and name not in NOT_AN_OBJECT
    }

    async def nothing_there(w: World, role: str) -> Req:
        req = await row.prepare(w, role)
        return replace(req, params=req.params | {name: new_id() for name in placeholders})

    missing = await route_outcome(world, replace(row, prepare=nothing_there), role)
    assert hidden == missing, f"{row.name} as {role}"


def router_routes(app: Any) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical) for route in app.router.routes()}


def test_every_route_has_a_row(tmp_path: Any) -> None:
    app = create_app(make_config(tmp_path))
    served = router_routes(app)
    in_table = {(row.method, row.route) for row in ROUTES}
    missing = sorted(served - in_table - set(NOT_IN_TABLE))
    assert not missing, f"routes without a row in the authorization matrix: {missing}"
    gone = sorted(in_table - served)
    assert not gone, f"rows for routes the server does not have: {gone}"
    assert set(NOT_IN_TABLE) <= served, "an exclusion names a route that is gone"


# -- WebSocket frames ---------------------------------------------------------


# What a cell sends (but its type and client_id): made for the role, on
# the role's open socket, with a stack for what must live as long as the cell.
Frame = Callable[[World, str, WsClient, contextlib.AsyncExitStack], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class FrameRow:
    type: str
    expect: str  # "4001": the socket is closed first; "ok", or the error's code
    frame: Frame
    kind: str = "inline"  # "send": acknowledged; "call": a call frame
    variant: str = ""

    def outcomes(self) -> dict[str, str]:
        values = self.expect.split()
        assert len(values) == len(ROLES), f"{self.type}: {len(values)} outcomes"
        return dict(zip(ROLES, values, strict=True))

    @property
    def name(self) -> str:
        return self.type + (f" ({self.variant})" if self.variant else "")


def in_group(**fields: Any) -> Frame:
    async def frame(
        w: World, role: str, ws: WsClient, stack: contextlib.AsyncExitStack
    ) -> dict[str, Any]:
        return {"group_id": w.ids["group_id"]} | fields

    return frame


def on_owners_message(**fields: Any) -> Frame:
    async def frame(
        w: World, role: str, ws: WsClient, stack: contextlib.AsyncExitStack
    ) -> dict[str, Any]:
        message_id = await w.new_message("owner")
        return {"group_id": w.ids["group_id"], "message_id": message_id} | fields

    return frame


async def join_offer(
    w: World, role: str, ws: WsClient, stack: contextlib.AsyncExitStack
) -> dict[str, Any]:
    return {"group_id": w.ids["group_id"], "sdp": await sdp_offer(stack)}


def after_joining(**fields: Any) -> Frame:
    """In the call first, when the role may be (a stranger's join fails)."""

    async def frame(
        w: World, role: str, ws: WsClient, stack: contextlib.AsyncExitStack
    ) -> dict[str, Any]:
        await ws.send(type="call.join", **await join_offer(w, role, ws, stack))
        await ws.next("call.answer", "error", timeout=10.0)
        return {"group_id": w.ids["group_id"]} | fields

    return frame


def on_members_message() -> Frame:
    async def frame(
        w: World, role: str, ws: WsClient, stack: contextlib.AsyncExitStack
    ) -> dict[str, Any]:
        return {"group_id": w.ids["group_id"], "message_id": await w.new_message("member")}

    return frame


async def attaching_owners_new_file(
    w: World, role: str, ws: WsClient, stack: contextlib.AsyncExitStack
) -> dict[str, Any]:
    file_id = await w.new_file("owner")
    return {"group_id": w.ids["group_id"], "body": "see this", "file_ids": [file_id]}


def in_direct(**fields: Any) -> Frame:
    """The owner's and the member's direct conversation."""

    async def frame(
        w: World, role: str, ws: WsClient, stack: contextlib.AsyncExitStack
    ) -> dict[str, Any]:
        return {"group_id": w.ids["direct_id"]} | fields

    return frame


async def join_direct(
    w: World, role: str, ws: WsClient, stack: contextlib.AsyncExitStack
) -> dict[str, Any]:
    return {"group_id": w.ids["direct_id"], "sdp": await sdp_offer(stack)}


def in_live_room(**fields: Any) -> Frame:
    async def frame(
        w: World, role: str, ws: WsClient, stack: contextlib.AsyncExitStack
    ) -> dict[str, Any]:
        await w.ensure_live()
        return {"room_id": w.ids["room_id"]} | fields

    return frame


# fmt: off
# outcomes: anonymous stranger member admin owner server_admin
FRAMES: list[FrameRow] = [
    FrameRow("message.send", "4001 group_not_found ok ok ok group_not_found", in_group(body="hi"), "send"),
    FrameRow("message.send", "4001 group_not_found file_not_found file_not_found ok group_not_found", attaching_owners_new_file, "send", "attaching the owner's file"),
    FrameRow("message.send", "4001 group_not_found ok group_not_found ok group_not_found", in_direct(body="hi"), "send", "direct"),
    FrameRow("message.edit", "4001 group_not_found not_author not_author ok group_not_found", on_owners_message(body="edited")),
    FrameRow("message.delete", "4001 group_not_found not_allowed ok ok group_not_found", on_owners_message(), variant="the owner's"),
    FrameRow("message.delete", "4001 group_not_found ok ok ok group_not_found", on_members_message(), variant="the member's"),
    FrameRow("sync", "4001 group_not_found ok ok ok group_not_found", in_group(after_seq=0)),
    FrameRow("typing", "4001 group_not_found ok ok ok group_not_found", in_group()),
    FrameRow("read", "4001 group_not_found ok ok ok group_not_found", in_group(seq=1)),
    FrameRow("call.join", "4001 group_not_found ok ok ok group_not_found", join_offer, "call"),
    FrameRow("call.join", "4001 group_not_found ok group_not_found ok group_not_found", join_direct, "call", "direct"),
    # No call.offer is waiting in a call of one: the rights let them that far.
    FrameRow("call.answer", "4001 not_in_call no_offer_pending no_offer_pending no_offer_pending not_in_call", after_joining(sdp="v=0\r\n"), "call"),
    FrameRow("call.mute", "4001 not_in_call ok ok ok not_in_call", after_joining(kind="audio", muted=True), "call"),
    FrameRow("call.leave", "4001 not_in_call ok ok ok not_in_call", after_joining(), "call"),
    FrameRow("live.watch", "4001 ok ok ok ok ok", in_live_room()),
    FrameRow("live.unwatch", "4001 ok ok ok ok ok", in_live_room()),
    FrameRow("live.chat", "4001 ok ok ok ok ok", in_live_room(body="hello")),
]
# fmt: on


async def frame_outcome(w: World, row: FrameRow, role: str) -> str:
    if role == "anonymous":
        return await anonymous_frame(w.client, {"type": row.type, "group_id": new_id()})
    ws = await WsClient.open(w.client, w.tokens[role])
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(ws.close)  # closed first: it leaves any call
        frame = {"type": row.type} | await row.frame(w, role, ws, stack)
        return await played_frame(ws, frame, row.kind, w.unique("cell"))


@in_world
@pytest.mark.parametrize(("row", "role"), cells(FRAMES))
async def test_frame(world: World, row: FrameRow, role: str) -> None:
    expected = row.outcomes()[role]
    assert await frame_outcome(world, row, role) == expected, f"{row.name} as {role}"


def test_every_frame_type_has_a_row() -> None:
    dispatched = set(CLIENT_FRAMES.json_schema()["discriminator"]["mapping"])
    in_table = {row.type for row in FRAMES}
    assert not dispatched - in_table, f"frames without a row: {sorted(dispatched - in_table)}"
    assert not in_table - dispatched, f"rows for unknown frames: {sorted(in_table - dispatched)}"
