"""Presence over real WebSocket clients: changes are coalesced per group (one
frame per interval, the last state of each user winning), and the member list
and the group list say who is online now."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import bearer, make_config
from tests.e2e.test_websocket import group_of, people
from tests.e2e.ws_client import WsClient

# Long enough that a connection opened and closed again fits in one interval
# even on a slow machine; short enough to keep the tests quick.
INTERVAL = 0.5


async def serve(aiohttp_client: Any, tmp_path: Path, interval: float = INTERVAL) -> TestClient:
    config = make_config(
        tmp_path / "data",
        limits={"enabled": False},
        hub={"presence_interval_seconds": interval},
    )
    return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]


async def opened_and_settled(client: TestClient, tokens: dict[str, Any]) -> WsClient:
    """A connection whose own arrival has been reported to it already, so
    that what follows is about the others."""
    ws = await WsClient.open(client, tokens)
    while tokens["user"]["id"] not in (await ws.next("presence"))["online"]:
        pass
    return ws


async def member_status(
    client: TestClient, tokens: dict[str, Any], group_id: str
) -> dict[str, Any]:
    """username -> online, as the member list says."""
    response = await client.get(f"/api/v1/groups/{group_id}/members", headers=bearer(tokens))
    assert response.status == 200
    return {member["username"]: member["online"] for member in (await response.json())["items"]}


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.05)


async def test_an_arrival_is_told_once_per_group_in_the_new_shape(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    u = await people(client, "alice", "bob")
    first = await group_of(client, u["alice"], u["bob"])
    second = await group_of(client, u["alice"], u["bob"])
    alice = await WsClient.open(client, u["alice"])
    mine = [await alice.next("presence") for _ in range(2)]
    assert sorted(frame["group_id"] for frame in mine) == sorted([first, second])

    await WsClient.open(client, u["bob"])
    told = [await alice.next("presence") for _ in range(2)]
    bob_id = u["bob"]["user"]["id"]
    assert sorted(told, key=lambda frame: frame["group_id"]) == [
        {"type": "presence", "group_id": group_id, "online": [bob_id], "offline": []}
        for group_id in sorted([first, second])
    ]
    await alice.silent(INTERVAL + 0.3)


async def test_a_crowd_connecting_at_once_costs_a_few_frames(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    names = [f"user{n}" for n in range(50)]
    u = await people(client, "watcher", *names)
    group_id = await group_of(client, u["watcher"], *(u[name] for name in names))
    watcher = await opened_and_settled(client, u["watcher"])

    started = time.monotonic()
    crowd = await asyncio.gather(*(WsClient.open(client, u[name]) for name in names))
    took = time.monotonic() - started
    expected = {u[name]["user"]["id"] for name in names}
    frames: list[dict[str, Any]] = []
    told: set[str] = set()
    while told != expected:
        frame = await watcher.next("presence")
        assert frame["group_id"] == group_id and frame["offline"] == []
        frames.append(frame)
        told.update(frame["online"])
    # One frame per interval in which someone arrived, where one per arrival
    # used to be 50.
    assert len(frames) <= took / INTERVAL + 2, (len(frames), took)
    assert len(frames) <= 5
    assert sum(len(frame["online"]) for frame in frames) == 50  # nobody twice

    # The crowd leaving together is told the same way.
    for ws in crowd:
        await ws.close()
    gone: set[str] = set()
    leaving = 0
    while gone != expected:
        frame = await watcher.next("presence")
        leaving += 1
        gone.update(frame["offline"])
    assert leaving <= 5


async def test_online_then_offline_within_one_interval_is_told_offline_only(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    # A long interval: the visit below must fit in one, however slow the machine.
    client = await serve(aiohttp_client, tmp_path, interval=1.0)
    u = await people(client, "alice", "bob")
    group_id = await group_of(client, u["alice"], u["bob"])
    alice = await opened_and_settled(client, u["alice"])

    bob = await WsClient.open(client, u["bob"])
    await bob.close()
    assert await alice.next("presence") == {
        "type": "presence",
        "group_id": group_id,
        "online": [],
        "offline": [u["bob"]["user"]["id"]],
    }
    await alice.silent(1.3)


async def test_joining_while_connected_is_told_to_the_group(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    u = await people(client, "alice", "bob")
    group_id = await group_of(client, u["alice"])
    alice = await opened_and_settled(client, u["alice"])
    await WsClient.open(client, u["bob"])  # in no group of Alice's: nothing to tell her

    added = await client.post(
        f"/api/v1/groups/{group_id}/members",
        json={"user_id": u["bob"]["user"]["id"]},
        headers=bearer(u["alice"]),
    )
    assert added.status == 201
    assert await alice.next("presence") == {
        "type": "presence",
        "group_id": group_id,
        "online": [u["bob"]["user"]["id"]],
        "offline": [],
    }


async def test_the_member_list_and_the_group_list_say_who_is_online(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    u = await people(client, "alice", "bob", "carol")
    group_id = await group_of(client, u["alice"], u["bob"], u["carol"])
    sent = await client.post(
        f"/api/v1/direct/{u['carol']['user']['id']}/messages",
        json={"body": "are you there?"},
        headers=bearer(u["alice"]),
    )
    assert sent.status == 201
    assert await member_status(client, u["carol"], group_id) == {
        "alice": False,
        "bob": False,
        "carol": False,
    }

    await WsClient.open(client, u["alice"])
    bob_phone = await WsClient.open(client, u["bob"])
    bob_laptop = await WsClient.open(client, u["bob"])
    # Right away: the snapshot does not wait for presence to be flushed.
    assert await member_status(client, u["carol"], group_id) == {
        "alice": True,
        "bob": True,
        "carol": False,
    }

    async def groups_of(tokens: dict[str, Any]) -> dict[str, Any]:
        response = await client.get("/api/v1/groups", headers=bearer(tokens))
        return {group["id"]: group for group in (await response.json())["items"]}

    alices = await groups_of(u["alice"])
    assert alices[group_id]["peer_online"] is None
    (direct,) = [group for group in alices.values() if group["kind"] == "direct"]
    assert direct["peer"] == u["carol"]["user"]["id"]
    assert direct["peer_online"] is False
    carols = await groups_of(u["carol"])
    assert carols[direct["id"]]["peer_online"] is True

    await bob_phone.close()

    async def bob_still_online() -> bool:
        return (await member_status(client, u["carol"], group_id))["bob"] is True

    await asyncio.sleep(0.2)
    assert await bob_still_online()  # through his laptop
    await bob_laptop.close()

    async def bob_offline() -> bool:
        return not await bob_still_online()

    await eventually(bob_offline, "bob to be offline in the member list")
