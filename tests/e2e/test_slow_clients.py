"""A client that stops reading is evicted; nobody else notices."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

from gortc.app import create_app
from gortc.delivery.keys import HUB
from tests.conftest import bearer, make_config
from tests.e2e.test_websocket import group_of, people
from tests.e2e.ws_client import WsClient


async def stalled_websocket(host: str, port: int, token: str) -> socket.socket:
    """Completes the WebSocket handshake, then never reads again."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A tiny receive window, so the server's side backs up quickly.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /api/v1/ws?access_token={token} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


async def test_a_client_that_stops_reading_is_evicted_and_others_carry_on(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path / "data",
        limits={"enabled": False},
        hub={"queue_max_frames": 32, "queue_high_water": 8, "evict_after_seconds": 0.5},
    )
    chat = await aiohttp_client(create_app(config))
    u = await people(chat, "alice", "bob", "phone")
    group_id = await group_of(chat, u["alice"], u["bob"], u["phone"])
    hub = chat.app[HUB]
    alice, bob = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["bob"])
    stalled = await stalled_websocket(chat.host, chat.port, u["phone"]["access_token"])
    deadline = time.monotonic() + 5
    while hub.connection_count() < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert hub.connection_count() == 3

    body = "x" * 3900
    sent = 1500  # ~6 MB: more than any socket buffer between here and the phone
    try:
        # Alice and Bob read as they go, like any live client.
        acks_task = asyncio.create_task(alice.collect("message.ack", sent, timeout=30))
        bob_task = asyncio.create_task(bob.collect("message.created", sent, timeout=30))
        for index in range(sent):
            await alice.send(
                type="message.send", group_id=group_id, body=body, client_id=str(index)
            )
        acks, received = await acks_task, await bob_task
        assert [ack["client_id"] for ack in acks] == [str(i) for i in range(sent)]
        assert [frame["message"]["seq"] for frame in received] == list(range(1, sent + 1))

        deadline = time.monotonic() + 10
        while hub.connection_count() > 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert hub.connection_count() == 2, "the stalled client is still connected"
        assert not hub.online(u["phone"]["user"]["id"])
        # What an operator's Prometheus sees of it.
        figures = await (await chat.get("/metrics")).text()
        assert "\ngortc_websocket_evictions_total 1.0\n" in figures
        assert "\ngortc_websocket_connections 2.0\n" in figures
    finally:
        stalled.close()

    # The phone comes back and catches up from where it was.
    phone = await WsClient.open(chat, u["phone"])
    await phone.send(type="sync", group_id=group_id, after_seq=sent - 10)
    replay = await phone.collect("message.created", 10)
    assert [frame["message"]["seq"] for frame in replay] == list(range(sent - 9, sent + 1))


async def test_a_client_that_does_not_answer_pings_is_closed(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    config = make_config(tmp_path / "data", hub={"heartbeat_seconds": 0.2})
    chat = await aiohttp_client(create_app(config))
    u = await people(chat, "alice")
    ws = await chat.ws_connect(
        "/api/v1/ws", headers=bearer(u["alice"]), autoping=False, heartbeat=None
    )
    hub = chat.app[HUB]
    deadline = time.monotonic() + 5
    while hub.connection_count() and time.monotonic() < deadline:
        # Read (so frames flow) but never answer the pings.
        with contextlib.suppress(TimeoutError):
            await ws.receive(timeout=0.1)
    assert hub.connection_count() == 0


async def test_a_disabled_account_is_disconnected_at_once(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    from gortc.delivery.keys import ADMIN

    chat = await aiohttp_client(create_app(make_config(tmp_path / "data")))
    u = await people(chat, "alice", "mallory")
    mallory = await WsClient.open(chat, u["mallory"])
    await chat.app[ADMIN].set_disabled("mallory", True)
    assert await mallory.closed() == (4001, "session ended")


async def test_server_shutdown_says_goodbye_with_1001(aiohttp_client: Any, tmp_path: Path) -> None:
    chat = await aiohttp_client(create_app(make_config(tmp_path / "data")))
    u = await people(chat, "alice")
    alice = await WsClient.open(chat, u["alice"])
    closing = asyncio.ensure_future(alice.closed())
    await chat.app.shutdown()
    code, reason = await closing
    assert (code, reason) == (1001, "server shutting down")


async def test_a_sign_in_ended_behind_the_servers_back_closes_its_sockets(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """An operator's command ends a session in the database without telling
    the running server; the periodic sweep notices."""
    from datetime import UTC, datetime

    from gortc.repositories.backends import database_backend

    config = make_config(tmp_path / "data", hub={"auth_recheck_seconds": 0.2})
    chat = await aiohttp_client(create_app(config))
    u = await people(chat, "alice")
    alice = await WsClient.open(chat, u["alice"])
    # Like `gortc user disable`: another process, on the same database.
    outside = database_backend(
        config.database.url, config.database_path, readers=1, busy_timeout_ms=5000, pool_size=1
    )
    await outside.open()
    try:
        async with outside.uow.transaction() as repos:
            await repos.sessions.revoke_all_for_user(u["alice"]["user"]["id"], datetime.now(UTC))
    finally:
        await outside.close()
    assert await alice.closed() == (4001, "session ended")
