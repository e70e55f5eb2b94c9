"""Two gortc instances sharing one Redis (and one database): every event
reaches every member, wherever each is connected; without Redis, each
instance keeps serving its own clients."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.delivery.keys import HUB
from tests.conftest import bearer, make_config
from tests.e2e.test_websocket import group_of, people
from tests.e2e.ws_client import WsClient
from tests.redis_server import RedisServer


async def two_instances(
    aiohttp_client: Any, tmp_path: Path, redis_url: str
) -> tuple[TestClient, TestClient]:
    config = make_config(
        tmp_path / "data",
        redis={"url": redis_url},
        auth={"secret": "a shared secret of at least thirty-two characters"},
        limits={"enabled": False},
    )
    return await aiohttp_client(create_app(config)), await aiohttp_client(create_app(config))


async def test_every_event_crosses_between_instances(
    aiohttp_client: Any, tmp_path: Path, redis_server: RedisServer
) -> None:
    first, second = await two_instances(aiohttp_client, tmp_path, redis_server.url)
    u = await people(first, "alice", "bob", "carol")
    group_id = await group_of(first, u["alice"], u["bob"])
    alice = await WsClient.open(first, u["alice"])
    bob = await WsClient.open(second, u["bob"])  # the other instance

    # Messages, both ways, in order.
    for index in range(20):
        await alice.send(
            type="message.send", group_id=group_id, body=f"a{index}", client_id=str(index)
        )
    received = await bob.collect("message.created", 20)
    assert [f["message"]["seq"] for f in received] == list(range(1, 21))
    await alice.collect("message.created", 20)  # her own, echoed
    await bob.send(type="message.send", group_id=group_id, body="from bob", client_id="b")
    assert (await alice.next("message.created"))["message"]["body"] == "from bob"

    # Edits, deletions, typing.
    message = (await bob.next("message.ack"))["message"]
    await bob.send(type="message.edit", group_id=group_id, message_id=message["id"], body="edited")
    assert (await alice.next("message.updated"))["message"]["body"] == "edited"
    await alice.send(type="message.delete", group_id=group_id, message_id=message["id"])
    assert (await bob.next("message.deleted"))["message_id"] == message["id"]
    await bob.send(type="typing", group_id=group_id)
    assert (await alice.next("typing"))["user_id"] == u["bob"]["user"]["id"]

    # A membership change made on one instance re-subscribes sockets on the other.
    carol = await WsClient.open(second, u["carol"])
    await first.post(
        f"/api/v1/groups/{group_id}/members", json={"username": "carol"}, headers=bearer(u["alice"])
    )
    assert (await carol.next("group.joined"))["group"]["id"] == group_id
    await alice.send(type="message.send", group_id=group_id, body="hi carol", client_id="c")
    assert (await carol.next("message.created"))["message"]["body"] == "hi carol"

    # Signing out on one instance closes that sign-in's socket on the other.
    assert (await first.post("/api/v1/auth/logout", headers=bearer(u["bob"]))).status == 204
    assert await bob.closed() == (4001, "session ended")


async def test_without_redis_each_instance_still_serves_its_own(
    aiohttp_client: Any, tmp_path: Path, redis_server: RedisServer
) -> None:
    first, second = await two_instances(aiohttp_client, tmp_path, redis_server.url)
    u = await people(first, "alice", "bob", "carol")
    group_id = await group_of(first, u["alice"], u["bob"], u["carol"])
    alice, bob = await WsClient.open(first, u["alice"]), await WsClient.open(first, u["bob"])
    carol = await WsClient.open(second, u["carol"])

    redis_server.stop()
    await alice.send(
        type="message.send", group_id=group_id, body="during the outage", client_id="o"
    )
    assert (await alice.next("message.ack"))["message"]["seq"] == 1
    assert (await bob.next("message.created"))["message"]["body"] == "during the outage"

    health = await first.get("/healthz")
    assert health.status == 503
    checks = (await health.json())["checks"]
    assert checks["database"] == "ok"
    assert checks["backplane"].startswith("failing: redis unreachable")

    redis_server.start()
    deadline = time.monotonic() + 15
    while not all(c.app[HUB].backplane.healthy for c in (first, second)):
        assert time.monotonic() < deadline, "the backplanes did not reconnect"
        await asyncio.sleep(0.1)
    assert (await first.get("/healthz")).status == 200

    # What was published during the outage reaches Carol late (from the
    # backplane's backlog) or through sync; either way she ends up with
    # exactly that message, recognisable by its seq.
    await carol.send(type="sync", group_id=group_id, after_seq=0)
    frames = []
    while (frame := await carol.next("message.created", "sync.done"))["type"] != "sync.done":
        frames.append(frame)
    assert {(f["message"]["seq"], f["message"]["body"]) for f in frames} == {
        (1, "during the outage")
    }
    await alice.send(type="message.send", group_id=group_id, body="after", client_id="a")
    assert (await carol.next("message.created"))["message"]["body"] == "after"


async def test_shutting_down_just_after_redis_vanished_is_prompt(
    aiohttp_client: Any, tmp_path: Path, redis_server: RedisServer
) -> None:
    first, second = await two_instances(aiohttp_client, tmp_path, redis_server.url)
    u = await people(first, "alice", "bob")
    group_id = await group_of(first, u["alice"], u["bob"])
    alice = await WsClient.open(first, u["alice"])
    bob = await WsClient.open(second, u["bob"])
    for index in range(20):
        await alice.send(
            type="message.send", group_id=group_id, body=f"a{index}", client_id=str(index)
        )
    await bob.collect("message.created", 20)
    # Events in flight to Redis as it disappears, then both instances stop.
    await bob.send(type="message.send", group_id=group_id, body="last words", client_id="b")
    redis_server.stop()
    async with asyncio.timeout(15):
        await first.close()
        await second.close()


async def test_presence_counts_connections_on_every_instance(
    aiohttp_client: Any, tmp_path: Path, redis_server: RedisServer
) -> None:
    first, second = await two_instances(aiohttp_client, tmp_path, redis_server.url)
    u = await people(first, "alice", "bob")
    group_id = await group_of(first, u["alice"], u["bob"])
    bob_id = u["bob"]["user"]["id"]
    alice = await WsClient.open(first, u["alice"])
    bob_on_first = await WsClient.open(first, u["bob"])
    while bob_id not in (await alice.next("presence"))["online"]:
        pass  # her own arrival, reported apart
    bob_on_second = await WsClient.open(second, u["bob"])
    await bob_on_first.close()
    # Bob is still connected to the other instance: not offline.
    await alice.silent(1.0)
    await bob_on_second.close()
    # Told by the second instance, through Redis.
    offline = await alice.next("presence")
    assert offline == {"type": "presence", "group_id": group_id, "online": [], "offline": [bob_id]}


async def test_the_member_list_knows_who_is_online_on_the_other_instance(
    aiohttp_client: Any, tmp_path: Path, redis_server: RedisServer
) -> None:
    first, second = await two_instances(aiohttp_client, tmp_path, redis_server.url)
    u = await people(first, "alice", "bob", "carol")
    group_id = await group_of(first, u["alice"], u["bob"], u["carol"])

    async def online_according_to(instance: TestClient) -> dict[str, bool]:
        response = await instance.get(
            f"/api/v1/groups/{group_id}/members", headers=bearer(u["carol"])
        )
        assert response.status == 200
        return {m["username"]: m["online"] for m in (await response.json())["items"]}

    alice = await WsClient.open(first, u["alice"])
    bob = await WsClient.open(second, u["bob"])
    expected = {"alice": True, "bob": True, "carol": False}
    assert await online_according_to(first) == await online_according_to(second) == expected
    # Bob's arrival reaches Alice from the other instance, in the new shape.
    while u["bob"]["user"]["id"] not in (await alice.next("presence"))["online"]:
        pass

    await bob.close()
    deadline = time.monotonic() + 5
    while (await online_according_to(first))["bob"]:
        assert time.monotonic() < deadline, "bob still online on the first instance"
        await asyncio.sleep(0.05)
    assert await online_according_to(second) == {"alice": True, "bob": False, "carol": False}
    # While Redis is still there (its fixture ends first): Alice's departure,
    # flushed at shutdown, would wait for it in vain.
    await first.close()
    await second.close()


async def test_an_instance_shutting_down_tells_the_others_who_left(
    aiohttp_client: Any, tmp_path: Path, redis_server: RedisServer
) -> None:
    shared: dict[str, Any] = {
        "redis": {"url": redis_server.url},
        "auth": {"secret": "a shared secret of at least thirty-two characters"},
        "limits": {"enabled": False},
    }
    # The first instance would report presence only after 30 s: what the
    # others hear comes from the flush at shutdown.
    first = await aiohttp_client(
        create_app(make_config(tmp_path / "data", hub={"presence_interval_seconds": 30}, **shared))
    )
    second = await aiohttp_client(create_app(make_config(tmp_path / "data", **shared)))
    u = await people(first, "alice", "bob")
    group_id = await group_of(first, u["alice"], u["bob"])
    alice = await WsClient.open(second, u["alice"])
    assert (await alice.next("presence"))["online"] == [u["alice"]["user"]["id"]]
    await WsClient.open(first, u["bob"])

    await first.close()
    # His arrival and departure were both pending: the last state wins.
    assert await alice.next("presence") == {
        "type": "presence",
        "group_id": group_id,
        "online": [],
        "offline": [u["bob"]["user"]["id"]],
    }
