"""WebSocket tickets: what lets the web client open the real-time
connection on an instance whose host name its session cookie does not
reach (a call's ws_url). A ticket opens a socket as its owner on every
instance of the deployment, from a page of any origin, for a minute and
only while its sign-in lasts; it opens nothing else."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.delivery.keys import WS_TICKETS
from gortc.delivery.system import call_socket_sources, content_security_policy
from tests.conftest import bearer, login, make_config, register
from tests.e2e.test_cookie_session import origin, sign_in
from tests.e2e.ws_client import WsClient

SECRET = "a shared secret of at least thirty-two characters"


async def ticket_of(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    answer = await client.post("/api/v1/ws/tickets", headers=headers)
    assert answer.status == 200, await answer.text()
    assert answer.headers["Cache-Control"] == "no-store"
    return await answer.json()  # type: ignore[no-any-return]


async def open_with(
    client: TestClient, ticket: str, headers: dict[str, str] | None = None
) -> tuple[str, Any]:
    """("ready", the ready frame) or ("closed", (code, reason))."""
    ws = await client.ws_connect(
        "/api/v1/ws?" + urlencode({"ticket": ticket}), headers=headers or {}
    )
    message = await ws.receive(timeout=5)
    if message.type is WSMsgType.TEXT:
        frame = message.json()
        await ws.close()
        return "ready", frame
    assert message.type is WSMsgType.CLOSE, message
    return "closed", (message.data, message.extra)


async def test_a_cookie_pages_ticket_opens_the_socket_on_another_instance(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    # Two instances of one deployment: one database, one secret; no Redis
    # is needed to check a ticket (its signature is).
    config = make_config(tmp_path / "data", auth={"secret": SECRET}, limits={"enabled": False})
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    alice = await register(first, "alice")
    await sign_in(first)

    # The page of the first instance asks its own server (cookie, own Origin)…
    asked_at = time.time()
    issued = await ticket_of(first, origin(first))
    # …and opens the second instance's socket with it, from its own origin:
    # no cookie travels there, and the Origin is not the second's.
    how, ready = await open_with(second, issued["ticket"], origin(first))
    assert how == "ready", ready
    assert ready["user_id"] == alice["id"]
    # About a minute to use it.
    expires = datetime.fromisoformat(issued["expires_at"].replace("Z", "+00:00"))
    assert 55 <= expires.timestamp() - asked_at <= 61, issued

    # A page of another site cannot get one with the cookie (CSRF rule).
    forged = await first.post("/api/v1/ws/tickets", headers={"Origin": "https://evil.example"})
    assert forged.status == 403
    assert (await forged.json())["error"]["code"] == "cross_site_request"
    # Nor does a ticket sign anyone in anywhere but the WebSocket.
    elsewhere = await second.get(
        "/api/v1/users/me?" + urlencode({"access_token": issued["ticket"]})
    )
    assert elsewhere.status == 401


async def test_a_ticket_opens_one_socket_once_while_its_sign_in_lasts(
    client: TestClient,
) -> None:
    await register(client, "alice")
    await register(client, "bob")
    tokens = await login(client, "alice")
    bob = await login(client, "bob")
    issued = await ticket_of(client, bearer(tokens))
    # A socket opened by ticket is one of that sign-in: signing out closes it.
    socket = await client.ws_connect("/api/v1/ws?" + urlencode({"ticket": issued["ticket"]}))
    opened = WsClient(socket)
    await opened.next("ready")
    # Used once, it opens nothing more (it travels in a URL, which a proxy
    # may log): each socket asks for its own.
    how, closed = await open_with(client, issued["ticket"])
    assert how == "closed" and closed[0] == 4001, closed
    assert closed[1].startswith("this ticket was used already"), closed
    unused = await ticket_of(client, bearer(tokens))
    assert unused["ticket"] != issued["ticket"]

    # Another's name in it breaks the signature.
    user_id, session_id, jti, *_ = issued["ticket"].split(".")
    forged = ".".join([bob["user"]["id"], *unused["ticket"].split(".")[1:]])
    for bad in (forged, "garbage"):
        how, closed = await open_with(client, bad)
        assert how == "closed" and closed[0] == 4001, closed
        assert closed[1].startswith("this is not a WebSocket ticket of this server"), closed
    # One made for the past has expired.
    tickets = client.app[WS_TICKETS]
    old = tickets.ticket(user_id, session_id, jti, int(time.time()) - 1)
    how, closed = await open_with(client, old)
    assert how == "closed" and closed[0] == 4001 and "expired" in closed[1], closed

    # Signing out ends the sign-in's sockets, and its tickets not yet used.
    assert (await client.post("/api/v1/auth/logout", headers=bearer(tokens))).status == 204
    assert await opened.closed() == (4001, "session ended")
    how, closed = await open_with(client, unused["ticket"])
    assert (how, closed) == ("closed", (4001, "the access token was revoked"))
    # Anonymous: no ticket.
    assert (await client.post("/api/v1/ws/tickets")).status == 401


async def test_with_redis_a_ticket_used_on_one_instance_is_used_on_all(
    redis_url: str, aiohttp_client: Any, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path / "data",
        auth={"secret": SECRET},
        limits={"enabled": False},
        redis={"url": redis_url},
    )
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    await register(first, "alice")
    tokens = await login(first, "alice")
    issued = await ticket_of(first, bearer(tokens))
    assert (await open_with(second, issued["ticket"]))[0] == "ready"
    how, closed = await open_with(first, issued["ticket"])
    assert how == "closed" and closed[1].startswith("this ticket was used already"), closed


def test_the_page_may_open_sockets_on_other_instances_only_with_several(tmp_path: Path) -> None:
    """The page's CSP: one instance, WebSockets to itself only; with Redis
    (a call may be hosted by another instance), to any host, over TLS
    unless the instance itself is plain http."""

    def policy(config: Any) -> str:
        return content_security_policy(config.storage.origin, call_socket_sources(config))

    alone = make_config(tmp_path / "data")
    assert "connect-src 'self';" in policy(alone)
    several = make_config(
        tmp_path / "data",
        redis={"url": "redis://127.0.0.1:1/0"},
        server={"instance_url": "https://gortc-2.example.org"},
    )
    assert "connect-src 'self' wss:;" in policy(several)
    assert "default-src 'self';" in policy(several)
    assert "frame-ancestors 'none'" in policy(several)
    plain = several.with_overrides(server={"instance_url": "http://localhost:8082"})
    assert "connect-src 'self' ws: wss:;" in policy(plain)
    # Beside an object store's origin, which uploads go to.
    stored = several.with_overrides(
        storage={"url": "s3://files", "endpoint": "https://s3.example.org"}
    )
    assert "connect-src 'self' https://s3.example.org wss:;" in policy(stored)
