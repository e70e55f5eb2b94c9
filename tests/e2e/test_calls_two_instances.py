"""A group's call across two gortc instances sharing one real redis-server:
the instance that started it hosts it, members connected to the other are
sent there, and everyone sees who is in it wherever they are connected."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import bearer, make_config
from tests.e2e.call_peer import CallPeer
from tests.e2e.test_websocket import group_of, people
from tests.e2e.ws_client import WsClient
from tests.redis_server import RedisServer

PUBLIC_A = "http://a.gortc.test:8001"
PUBLIC_B = "http://b.gortc.test:8002"
WS_A = "ws://a.gortc.test:8001/api/v1/ws"
WS_B = "ws://b.gortc.test:8002/api/v1/ws"


async def two_instances(
    aiohttp_client: Any, tmp_path: Path, redis_url: str
) -> tuple[TestClient, TestClient]:
    """Two instances of one deployment (one database, one Redis), each with
    its own public URL."""
    shared: dict[str, Any] = {
        "redis": {"url": redis_url},
        "auth": {"secret": "a shared secret of at least thirty-two characters"},
        "limits": {"enabled": False},
        "rtc": {"host_addresses": ["127.0.0.1"]},
    }
    first = make_config(tmp_path / "data", server={"public_url": PUBLIC_A}, **shared)
    second = make_config(tmp_path / "data", server={"public_url": PUBLIC_B}, **shared)
    return await aiohttp_client(create_app(first)), await aiohttp_client(create_app(second))


@pytest.fixture
async def closing() -> AsyncIterator[list[CallPeer]]:
    """Peers to close at the end, whatever happened."""
    opened: list[CallPeer] = []
    yield opened
    for peer in opened:
        await peer.close()


async def call_peer(
    client: TestClient, tokens: dict[str, Any], closing: list[CallPeer]
) -> CallPeer:
    peer = CallPeer(client, tokens["user"], tokens)
    closing.append(peer)
    await peer.connect()
    return peer


async def roster_on(
    client: TestClient, group_id: str, tokens: dict[str, Any], expected: list[dict[str, Any]]
) -> None:
    """Waits (bounded) until GET …/call on that instance lists ``expected``:
    the host writes the roster to Redis just after it tells the group."""
    deadline = time.monotonic() + 5
    while True:
        response = await client.get(f"/api/v1/groups/{group_id}/call", headers=bearer(tokens))
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["group_id"] == group_id
        if body["participants"] == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert body["participants"] == expected


async def next_roster(watcher: WsClient, group_id: str) -> list[dict[str, Any]]:
    frame = await watcher.next("call.participants")
    assert frame["group_id"] == group_id
    return frame["participants"]  # type: ignore[no-any-return]


def present(
    user_id: str, *, audio_muted: bool = False, screen_sharing: bool = False
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "audio_muted": audio_muted,
        "video_muted": False,
        "screen_sharing": screen_sharing,
    }


# redis_server comes first so that it is still up while the instances stop.
async def test_a_call_is_hosted_by_one_instance_and_seen_from_both(
    redis_server: RedisServer,
    aiohttp_client: Any,
    tmp_path: Path,
    closing: list[CallPeer],
) -> None:
    first, second = await two_instances(aiohttp_client, tmp_path, redis_server.url)
    u = await people(first, "alice", "bob", "carol")
    group_id = await group_of(first, u["alice"], u["bob"], u["carol"])
    alice_id, bob_id = u["alice"]["user"]["id"], u["bob"]["user"]["id"]
    carol = await WsClient.open(second, u["carol"])  # in the group, not in the call

    # Alice starts the call on the first instance.
    alice = await call_peer(first, u["alice"], closing)
    reply = await alice.join(group_id)
    assert reply["type"] == "call.answer", reply
    # Carol, on the other instance, hears of it through the backplane.
    assert await next_roster(carol, group_id) == [present(alice_id)]

    # Bob, on the other instance, is sent to the one that hosts it.
    bob_on_b = await call_peer(second, u["bob"], closing)
    refused = await bob_on_b.join(group_id)
    assert refused["type"] == "error", refused
    assert refused["code"] == "call_elsewhere"
    assert refused["status"] == 421
    assert refused["ws_url"] == WS_A
    assert not [f for f in bob_on_b.frames if f["type"] in ("call.answer", "call.offer")]

    # The second instance knows who is in the call (from the host's pins).
    await roster_on(second, group_id, u["bob"], [present(alice_id)])
    await alice.send(type="call.mute", group_id=group_id, kind="audio", muted=True)
    assert await next_roster(carol, group_id) == [present(alice_id, audio_muted=True)]
    await roster_on(second, group_id, u["carol"], [present(alice_id, audio_muted=True)])
    # So is her screen being shared.
    await alice.send(type="call.mute", group_id=group_id, kind="screen", muted=False)
    sharing = present(alice_id, audio_muted=True, screen_sharing=True)
    assert await next_roster(carol, group_id) == [sharing]
    await roster_on(second, group_id, u["carol"], [sharing])

    # Once the call is over, the next one may start on the second instance.
    await alice.send(type="call.leave", group_id=group_id)
    assert (await alice.wait_for("call.ended"))["reason"] == "left"
    assert await next_roster(carol, group_id) == []
    await roster_on(second, group_id, u["bob"], [])
    bob_again = await call_peer(second, u["bob"], closing)
    reply = await bob_again.join(group_id)
    assert reply["type"] == "call.answer", reply
    assert await next_roster(carol, group_id) == [present(bob_id)]
    await roster_on(first, group_id, u["alice"], [present(bob_id)])
    alice_again = await call_peer(first, u["alice"], closing)
    refused = await alice_again.join(group_id)
    assert (refused["code"], refused["ws_url"]) == ("call_elsewhere", WS_B)
