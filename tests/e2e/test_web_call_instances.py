"""A call across two instances, in the web client: two real ``gortc serve``
processes share one redis-server and one SQLite database, each with its
own server.instance_url at the host name ``localhost``, while the page is
loaded from ``127.0.0.1``, so the session cookie never travels to an
instance's own address, as with instances on host names of their own.

Alice (an aiortc peer) starts the call on instance A, which hosts it. Bob's
page, loaded from instance B, joins from the web UI: B answers
call_elsewhere, the page gets a ticket from B and opens a socket of the
call's own to A, and the media flows both ways; his chat socket stays on B.
Everything runs over loopback.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio

from tests.conftest import TEST_PASSWORD
from tests.e2e.browser import chromium
from tests.e2e.call_peer import CallPeer
from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.test_web_call import CALL_ARGS, RECORD_MEDIA, live_tracks, tile, wait_for_video
from tests.e2e.web import Person, sign_up
from tests.redis_server import free_port

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

# Every WebSocket the page opens, with its URL, for the test to look at.
RECORD_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();
"""
SOCKETS = "window.__sockets.map((s) => ({url: s.url, state: s.readyState}))"


@pytest.fixture
async def instances(tmp_path: Path, redis_url: str) -> AsyncIterator[list[ServerProcess]]:
    """Instances A and B of one deployment (redis_url first: Redis outlives them)."""
    started: list[ServerProcess] = []
    try:
        # One after the other: the first makes the shared secret.key.
        for _ in range(2):
            port = free_port()
            started.append(
                await start_server(
                    tmp_path / "data",
                    port=port,
                    GORTC_REDIS_URL=redis_url,
                    GORTC_SERVER_PUBLIC_URL=f"http://127.0.0.1:{port}",
                    GORTC_SERVER_INSTANCE_URL=f"http://localhost:{port}",
                    GORTC_AUTH_BCRYPT_ROUNDS="4",
                    GORTC_LIMITS_ENABLED="false",
                    GORTC_RTC_HOST_ADDRESSES="127.0.0.1",
                )
            )
        yield started
    finally:
        for server in started:
            await server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium(*CALL_ARGS) as launched:
        yield launched


async def api(session: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> Any:
    async with session.request(method, path, **kw) as response:
        assert response.status < 300, await response.text()
        return await response.json() if response.status != 204 else None


async def test_a_page_on_one_instance_joins_a_call_hosted_by_the_other(
    instances: list[ServerProcess], browser: Any, redis_url: str
) -> None:
    first, second = instances
    started = time.monotonic()
    bob = await sign_up(browser, second.url, "bob")

    async with aiohttp.ClientSession(base_url=first.url) as on_first:
        await api(
            on_first,
            "POST",
            "/api/v1/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": TEST_PASSWORD},
        )
        tokens = await api(
            on_first,
            "POST",
            "/api/v1/auth/login",
            json={"login": "alice", "password": TEST_PASSWORD},
        )
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        group = await api(on_first, "POST", "/api/v1/groups", json={"name": "Rounds"}, headers=auth)
        await api(
            on_first,
            "POST",
            f"/api/v1/groups/{group['id']}/members",
            json={"username": "bob"},
            headers=auth,
        )
        # Bob's page starts afresh (with the recorders), knowing the group.
        await bob.context.add_init_script(RECORD_MEDIA + RECORD_SOCKETS)
        await bob.page.reload()
        await expect(bob.conversation("Rounds")).to_have_count(1)

        await bob.conversation("Rounds").click()

        # Alice starts the call on A: A hosts it.
        alice = CallPeer(on_first, tokens["user"], tokens)
        try:
            await alice.connect()
            assert (await alice.join(group["id"]))["type"] == "call.answer"
            await joined_from_the_other_instance(bob, alice, first, second, group, auth)
            await alice.send(type="call.leave", group_id=group["id"])
            await alice.wait_for("call.ended")
            await a_host_out_of_reach_is_said(bob, redis_url, group["id"])
        finally:
            await alice.close()
    print(f"the whole test took {time.monotonic() - started:.1f} s")


async def joined_from_the_other_instance(
    bob: Person,
    alice: CallPeer,
    first: ServerProcess,
    second: ServerProcess,
    group: dict[str, Any],
    auth: dict[str, str],
) -> None:
    page = bob.page
    # B knows of the call (through Redis) and offers to join it.
    await expect(page.locator("#call-status")).to_have_text("Call in progress · 1")
    await page.get_by_role("button", name="Join call").click()

    # Bob sees and hears alice, whose media A forwards…
    seconds = await wait_for_video(bob, "alice", timeout=15)
    print(f"bob saw alice {seconds:.2f} s after the tile appeared")
    await expect(page.locator("#call-status")).to_have_text("In the call · 2")
    # …and alice's peer on A decodes bob's camera and microphone.
    bob_id = (await page.evaluate("fetch('/api/v1/users/me').then((r) => r.json())"))["id"]
    await alice.wait_until(
        lambda: alice.frames_from(bob_id, "video") > 10 and alice.frames_from(bob_id, "audio") > 10,
        timeout=15,
    )

    # The call's signalling went to A's own address, opened with a ticket;
    # the chat's socket stayed on B. No cookie of the page's reaches A's
    # address: the ticket is what signed bob in there.
    first_port = first.url.rsplit(":", 1)[1]
    second_port = second.url.rsplit(":", 1)[1]
    sockets = await page.evaluate(SOCKETS)
    on_second = [s for s in sockets if s["url"] == f"ws://127.0.0.1:{second_port}/api/v1/ws"]
    first_socket = f"ws://localhost:{first_port}/api/v1/ws?ticket="
    on_first = [s for s in sockets if s["url"].startswith(first_socket)]
    assert on_second and on_second[-1]["state"] == 1, sockets
    assert len(on_first) == 1 and on_first[0]["state"] == 1, sockets
    assert "?ticket=" in on_first[0]["url"], sockets
    assert await bob.context.cookies([f"http://localhost:{first_port}"]) == []
    ticket = on_first[0]["url"].split("?ticket=", 1)[1]
    assert not [line for line in first.log if ticket in line or ticket[-20:] in line]

    # The chat goes on over B meanwhile.
    async with aiohttp.ClientSession(base_url=first.url) as on_first_again:
        await api(
            on_first_again,
            "POST",
            f"/api/v1/groups/{group['id']}/messages",
            json={"body": "can you hear me"},
            headers=auth,
        )
    await expect(bob.message("can you hear me")).to_have_count(1)

    # The call's socket drops (a network hiccup): A ends bob's part, and the
    # page rejoins by itself, asking B again where the call is, with a new
    # ticket; the media flows again.
    mark = len(alice.frames)
    await page.evaluate(f"window.__sockets[{sockets.index(on_first[0])}].close()")
    deadline = time.monotonic() + 15
    while True:  # a new call socket, open
        now = [s for s in await page.evaluate(SOCKETS) if s["url"].startswith(first_socket)]
        if len(now) == 2 and now[1]["state"] == 1:
            break
        assert time.monotonic() < deadline, now
        await asyncio.sleep(0.1)
    await wait_for_video(bob, "alice", timeout=15)
    await expect(page.locator("#call-state")).to_have_text("", timeout=10_000)
    rosters = [
        sorted(p["user_id"] for p in f["participants"])
        for f in alice.frames[mark:]
        if f["type"] == "call.participants"
    ]
    assert rosters[0] == [alice.user_id], rosters  # alice saw him go…
    await alice.wait_until(  # …and come back
        lambda: (
            sorted(p["user_id"] for p in alice.participants() or [])
            == sorted([alice.user_id, bob_id])
        )
    )
    frames = alice.frames_from(bob_id, "video")
    await alice.wait_until(lambda: alice.frames_from(bob_id, "video") > frames + 10, timeout=15)
    sockets = await page.evaluate(SOCKETS)
    on_first = [s for s in sockets if s["url"].startswith(first_socket)]
    assert [s["state"] for s in on_first] == [3, 1], sockets
    assert on_first[0]["url"] != on_first[1]["url"]  # a ticket for each socket

    # Bob leaves: A drops him from the call, and the call's socket closes.
    await page.get_by_role("button", name="Leave call").click()
    await expect(page.locator("#call-panel")).to_be_hidden()
    await alice.wait_until(
        lambda: [p["user_id"] for p in alice.participants() or []] == [alice.user_id]
    )
    call_socket = sockets.index(on_first[-1])
    deadline = time.monotonic() + 5
    while (await page.evaluate(SOCKETS))[call_socket]["state"] != 3:
        assert time.monotonic() < deadline, await page.evaluate(SOCKETS)
        await asyncio.sleep(0.1)
    await expect(tile(bob, "alice")).to_have_count(0)
    assert bob.problems == []


async def a_host_out_of_reach_is_said(bob: Person, redis_url: str, group_id: str) -> None:
    """A call pinned to an instance whose instance_url browsers cannot reach
    (a misconfiguration, or the instance just died): the page says so in
    words, and the camera goes off."""
    gone = free_port()  # nothing listens there
    pin = {"instance": "gone", "ws_url": f"ws://localhost:{gone}/api/v1/ws"}
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.set(f"gortc:call:{group_id}", json.dumps(pin), px=30_000)
    finally:
        await client.aclose()
    await bob.page.get_by_role("button", name="Join call").click()
    await expect(bob.page.locator("#notice")).to_contain_text(
        "Could not reach the server that hosts this call: no connection could be made."
    )
    await expect(bob.page.locator("#call-panel")).to_be_hidden()
    assert await live_tracks(bob) == 0
