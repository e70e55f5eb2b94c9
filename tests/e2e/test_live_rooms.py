"""Live rooms without media: stream keys, the room list, live events and the
room chat. (Publishing with a real ffmpeg is in test_live_streaming.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.delivery.keys import LIVE
from tests.conftest import ClientFactory, bearer, login, make_config, register
from tests.e2e.ws_client import WsClient


@pytest.fixture
async def live_app(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient:
    config = make_config(
        tmp_path / "data",
        live={"rtmp_port": 0, "rtmp_public_url": "rtmp://stream.example.org/live"},
    )
    return await aiohttp_client(create_app(config))


async def person(client: TestClient, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    user = await register(client, name)
    return user, await login(client, name)


async def test_my_stream_key_is_mine_stable_and_replaceable(live_app: TestClient) -> None:
    bob, bob_tokens = await person(live_app, "bob")
    _, ann_tokens = await person(live_app, "ann")
    first = await (await live_app.get("/api/v1/live/key", headers=bearer(bob_tokens))).json()
    assert first["stream_key"].startswith("live_")
    assert first["server_url"] == "rtmp://stream.example.org/live"
    assert first["rtmp_url"] == f"rtmp://stream.example.org/live/{first['stream_key']}"
    again = await (await live_app.get("/api/v1/live/key", headers=bearer(bob_tokens))).json()
    assert again["stream_key"] == first["stream_key"]  # shown again, never stored
    ann = await (await live_app.get("/api/v1/live/key", headers=bearer(ann_tokens))).json()
    assert ann["stream_key"] != first["stream_key"]

    response = await live_app.post("/api/v1/live/key", headers=bearer(bob_tokens))
    replaced = await response.json()
    assert replaced["stream_key"] != first["stream_key"]
    live = live_app.app[LIVE]
    with pytest.raises(Exception, match="not valid") as refused:
        await live.start(first["stream_key"])
    assert getattr(refused.value, "code", "") == "invalid_stream_key"
    room = await live.start(replaced["stream_key"])
    assert room.user_id == bob["id"]
    with pytest.raises(Exception, match="already publishing"):
        await live.start(replaced["stream_key"])  # one publisher per key
    await live.end(room.id)
    unauthenticated = await live_app.get("/api/v1/live/key")
    assert unauthenticated.status == 401


async def test_going_live_is_announced_listed_and_ended(live_app: TestClient) -> None:
    bob, bob_tokens = await person(live_app, "bob")
    _, ann_tokens = await person(live_app, "ann")
    response = await live_app.put(
        "/api/v1/live/title", json={"title": "  Friday   demo  "}, headers=bearer(bob_tokens)
    )
    key = await response.json()
    assert key["title"] == "Friday demo"
    ann_ws = await WsClient.open(live_app, ann_tokens)
    live = live_app.app[LIVE]
    room = await live.start(key["stream_key"])

    started = await ann_ws.next("live.started")
    assert started["room"]["user_id"] == bob["id"]
    assert started["room"]["title"] == "Friday demo"
    assert started["room"]["hls_url"] == f"/live/{room.id}/index.m3u8"
    listed = await (await live_app.get("/api/v1/live", headers=bearer(ann_tokens))).json()
    assert [r["username"] for r in listed["items"]] == ["bob"]
    assert listed["items"][0]["viewers"] == 0

    await live.end(room.id)
    ended = await ann_ws.next("live.ended")
    assert ended == {"type": "live.ended", "room_id": room.id, "reason": "ended"}
    listed = await (await live_app.get("/api/v1/live", headers=bearer(ann_tokens))).json()
    assert listed["items"] == []
    await ann_ws.close()


async def test_a_live_room_has_a_chat_for_its_watchers(live_app: TestClient) -> None:
    _, bob_tokens = await person(live_app, "bob")
    ann, ann_tokens = await person(live_app, "ann")
    _, cid_tokens = await person(live_app, "cid")
    key = await (await live_app.get("/api/v1/live/key", headers=bearer(bob_tokens))).json()
    live = live_app.app[LIVE]
    ann_ws = await WsClient.open(live_app, ann_tokens)
    cid_ws = await WsClient.open(live_app, cid_tokens)
    await ann_ws.send(type="live.watch", room_id="01NOBODYISLIVEHERE000000000")
    refused = await ann_ws.next("error")
    assert (refused["status"], refused["code"]) == (404, "not_live")

    room = await live.start(key["stream_key"])
    await ann_ws.send(type="live.watch", room_id=room.id)
    assert (await ann_ws.next("live.watching"))["room_id"] == room.id
    await cid_ws.send(type="live.chat", room_id=room.id, body="hi from someone not watching")
    await ann_ws.send(type="live.chat", room_id=room.id, body="  great stream  ", client_id="c1")
    line = await ann_ws.next("live.chat")
    assert line["body"] in {"hi from someone not watching", "great stream"}
    lines = [line, await ann_ws.next("live.chat")]
    assert {x["username"] for x in lines} == {"ann", "cid"}
    mine = next(x for x in lines if x["user_id"] == ann["id"])
    assert (mine["body"], mine["client_id"]) == ("great stream", "c1")
    await cid_ws.silent(0.3, ignore=("presence", "live.started"))  # not watching: no lines

    await ann_ws.send(type="live.chat", room_id=room.id, body="   ")
    refused = await ann_ws.next("error")
    assert (refused["status"], refused["code"]) == (400, "invalid_body")
    await live.end(room.id)
    await ann_ws.send(type="live.chat", room_id=room.id, body="anyone?")
    refused = await ann_ws.next("error")
    assert (refused["status"], refused["code"]) == (404, "not_live")
    await ann_ws.close()
    await cid_ws.close()


@pytest.mark.parametrize(
    "path",
    [
        "/live/bob/index.m3u8",
        "/live/01NOTLIVE/index.m3u8",
        "/live/01NOTLIVE/../secret.key",
        "/live/01NOTLIVE/seg_1.exe",
        "/live/bad..id/index.m3u8",
    ],
)
async def test_hls_paths_that_are_no_stream_get_clear_errors(
    live_app: TestClient, path: str
) -> None:
    _, tokens = await person(live_app, "ann")
    response = await live_app.get(path, headers=bearer(tokens))
    assert response.status in (400, 404)
    body = await response.json()
    assert body["error"]["code"] in {"not_live", "not_found", "invalid_room"}
    unauthenticated = await live_app.get("/live/01NOTLIVE/index.m3u8")
    assert unauthenticated.status == 401
