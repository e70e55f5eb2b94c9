"""Live streaming end to end: a real ffmpeg publishes over RTMP, the room
goes live, HLS appears and plays, and it all ends when ffmpeg stops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.delivery.keys import RTMP_SERVER
from gortc.media.rtmp.chunks import VIDEO
from tests.conftest import ClientFactory, bearer, login, make_config, register
from tests.e2e.ws_client import WsClient
from tests.integration.rtmp_client import RawRtmpClient
from tests.media_tools import ffmpeg_publish, probe


@pytest.fixture
async def live_app(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient:
    config = make_config(
        tmp_path / "data",
        live={"rtmp_port": 0, "segment_seconds": 1.0, "playlist_segments": 4},
    )
    return await aiohttp_client(create_app(config))


def rtmp_url(client: TestClient, key: str) -> str:
    server: Any = client.app[RTMP_SERVER]
    return f"rtmp://127.0.0.1:{server.port}/live/{key}"


async def streamer(client: TestClient, name: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    user = await register(client, name)
    tokens = await login(client, name)
    key = await (await client.get("/api/v1/live/key", headers=bearer(tokens))).json()
    return user, tokens, key["stream_key"]


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        await asyncio.sleep(0.2)


async def test_a_stream_goes_live_plays_as_hls_and_ends(
    live_app: TestClient, tmp_path: Path
) -> None:
    bob, bob_tokens, key = await streamer(live_app, "bob")
    _, ann_tokens, _ = await streamer(live_app, "ann")
    ann_ws = await WsClient.open(live_app, ann_tokens)
    # The URL bob is shown is the one to publish to (the port was picked at start).
    shown = await (await live_app.get("/api/v1/live/key", headers=bearer(bob_tokens))).json()
    assert shown["rtmp_url"] == rtmp_url(live_app, key)
    publisher = await ffmpeg_publish(shown["rtmp_url"], seconds=6)

    started = await ann_ws.next("live.started", timeout=10)
    room = started["room"]
    assert room["user_id"] == bob["id"]
    listed = await (await live_app.get("/api/v1/live", headers=bearer(ann_tokens))).json()
    assert [r["id"] for r in listed["items"]] == [room["id"]]

    playlist_url = room["hls_url"]
    playlist = ""

    async def playable() -> bool:
        nonlocal playlist
        response = await live_app.get(playlist_url, headers=bearer(ann_tokens))
        if response.status != 200:
            return False
        assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert response.headers["Cache-Control"] == "no-cache"
        playlist = await response.text()
        return "#EXTINF" in playlist

    await eventually(playable, "a first segment")
    segment = next(line for line in playlist.splitlines() if ".ts?" in line)
    response = await live_app.get(
        playlist_url.rsplit("/", 1)[0] + "/" + segment, headers=bearer(ann_tokens)
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/mp2t"
    assert "immutable" in response.headers["Cache-Control"]
    saved = tmp_path / "segment.ts"
    saved.write_bytes(await response.read())
    streams = {s["codec_type"]: s for s in (await probe(saved))["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert int(streams["video"]["nb_read_frames"]) > 0
    assert streams["audio"]["codec_name"] == "aac"

    async with asyncio.timeout(20):
        assert await publisher.wait() == 0
    ended = await ann_ws.next("live.ended", timeout=10)
    assert ended["room_id"] == room["id"]
    listed = await (await live_app.get("/api/v1/live", headers=bearer(ann_tokens))).json()
    assert listed["items"] == []
    response = await live_app.get(playlist_url, headers=bearer(ann_tokens))
    assert (await response.text()).rstrip().endswith("#EXT-X-ENDLIST")
    await ann_ws.close()


async def test_a_wrong_key_is_refused_at_once(live_app: TestClient) -> None:
    _, tokens, key = await streamer(live_app, "bob")
    started = time.monotonic()
    publisher = await ffmpeg_publish(rtmp_url(live_app, key + "x"), seconds=5)
    async with asyncio.timeout(10):
        status = await publisher.wait()
    assert status != 0
    assert time.monotonic() - started < 5
    listed = await (await live_app.get("/api/v1/live", headers=bearer(tokens))).json()
    assert listed["items"] == []
    # A replaced key is refused the same way.
    await live_app.post("/api/v1/live/key", headers=bearer(tokens))
    publisher = await ffmpeg_publish(rtmp_url(live_app, key), seconds=5)
    async with asyncio.timeout(10):
        assert await publisher.wait() != 0


async def test_two_streamers_at_once_and_one_key_once(live_app: TestClient) -> None:
    _, bob_tokens, bob_key = await streamer(live_app, "bob")
    _, _, cid_key = await streamer(live_app, "cid")
    bob = await ffmpeg_publish(rtmp_url(live_app, bob_key), seconds=5)
    cid = await ffmpeg_publish(rtmp_url(live_app, cid_key), seconds=5)

    async def both_live() -> bool:
        rooms = await (await live_app.get("/api/v1/live", headers=bearer(bob_tokens))).json()
        return len(rooms["items"]) == 2

    await eventually(both_live, "both rooms listed")
    again = await ffmpeg_publish(rtmp_url(live_app, bob_key), seconds=3)
    async with asyncio.timeout(10):
        assert await again.wait() != 0  # bob's key is already publishing
    async with asyncio.timeout(20):
        assert await bob.wait() == 0
        assert await cid.wait() == 0

    async def none_live() -> bool:
        rooms = await (await live_app.get("/api/v1/live", headers=bearer(bob_tokens))).json()
        return rooms["items"] == []

    await eventually(none_live, "both rooms gone", seconds=10)


@pytest.fixture
async def quick_stall_app(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient:
    config = make_config(tmp_path / "data", live={"rtmp_port": 0, "stall_seconds": 1.0})
    return await aiohttp_client(create_app(config))


async def test_a_stalled_or_broken_stream_ends_its_room_only(
    quick_stall_app: TestClient,
) -> None:
    client = quick_stall_app
    _, ann_tokens, stalling_key = await streamer(client, "stalls")
    _, _, broken_key = await streamer(client, "breaks")
    _, _, good_key = await streamer(client, "carries_on")
    ann_ws = await WsClient.open(client, ann_tokens)
    server: Any = client.app[RTMP_SERVER]
    good = await ffmpeg_publish(rtmp_url(client, good_key), seconds=6)

    stalling = await RawRtmpClient.open(server.port)
    info = await stalling.start_publishing(stalling_key)
    assert info["code"] == "NetStream.Publish.Start"
    await stalling.send_media(headers=True)  # then nothing: a stalled encoder
    broken = await RawRtmpClient.open(server.port)
    assert (await broken.start_publishing(broken_key))["code"] == "NetStream.Publish.Start"
    await broken.send_media(headers=True)
    await broken.send(6, VIDEO, broken.stream_id, 40, b"\x17\x01\x00\x00\x00" + b"\xff" * 40)

    endings: dict[str, str] = {}
    async with asyncio.timeout(10):
        while len(endings) < 2:
            frame = await ann_ws.next("live.ended", "live.started")
            if frame["type"] == "live.ended":
                endings[frame["room_id"]] = frame["reason"]
    rooms = await (await client.get("/api/v1/live", headers=bearer(ann_tokens))).json()
    assert [r["username"] for r in rooms["items"]] == ["carries_on"]
    # The garbled frame: its publisher told why and cut off; the silent one: stalled.
    assert sorted(endings.values()) == ["broken", "stalled"]
    assert await broken.closed_by_server(5)
    assert await stalling.closed_by_server(5)
    async with asyncio.timeout(20):
        assert await good.wait() == 0  # the healthy stream went on to its end
    await stalling.close()
    await broken.close()
    await ann_ws.close()
