"""A live stream watched through an instance that does not ingest it.

Two real ``python -m gortc serve`` processes share Redis (a real
redis-server), the secret and the accounts (one SQLite file), but not a
data directory: instance A ingests an ffmpeg RTMP stream and writes its
HLS on its own disk; a viewer who reaches instance B (as behind a load
balancer) is listed the room at B's address, plays its playlist and
segments through B (a signed-in viewer's and a public room's), and watches
it over WHEP through B. When the stream ends B says not_live; when A dies
B says so at once, with a 503 rather than a hang or a 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest_asyncio
from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from gortc.media.aiortc_hooks import use_host_addresses
from tests.conftest import TEST_PASSWORD
from tests.e2e.call_peer import ColourTrack
from tests.e2e.server_process import ServerProcess, start_server
from tests.e2e.test_live_streaming import eventually
from tests.e2e.test_live_webrtc import Viewer, offer_of, until
from tests.media_tools import ffmpeg_publish, probe
from tests.redis_server import free_port

SECRET = "a-secret-both-instances-share-" + "x" * 40


@pytest_asyncio.fixture
async def instances(tmp_path: Path, redis_url: str) -> AsyncIterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        # One after the other: the first creates the shared database.
        for name in ("a", "b"):
            port = free_port()
            started.append(
                await start_server(
                    tmp_path / name,  # a data directory (HLS output) of its own
                    port=port,
                    GORTC_SERVER_INSTANCE_URL=f"http://127.0.0.1:{port}",
                    GORTC_REDIS_URL=redis_url,
                    GORTC_AUTH_SECRET=SECRET,
                    GORTC_DATABASE_PATH=str(tmp_path / "accounts.db"),
                    GORTC_AUTH_BCRYPT_ROUNDS="4",
                    GORTC_LIMITS_ENABLED="false",
                    GORTC_LIVE_SEGMENT_SECONDS="1",
                    GORTC_RTC_HOST_ADDRESSES="127.0.0.1",
                )
            )
        yield started
    finally:
        for server in started:
            await server.stop()


async def json_of(response: aiohttp.ClientResponse, status: int) -> Any:
    assert response.status == status, (response.status, await response.text())
    return await response.json()


async def signed_in(http: aiohttp.ClientSession, base: str, name: str) -> dict[str, str]:
    account = {"username": name, "email": f"{name}@example.org", "password": TEST_PASSWORD}
    await json_of(await http.post(f"{base}/api/v1/auth/register", json=account), 201)
    login = {"login": name, "password": TEST_PASSWORD}
    tokens = await json_of(await http.post(f"{base}/api/v1/auth/login", json=login), 200)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def segment_names(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


async def test_any_instance_plays_a_stream_another_one_ingests(
    instances: list[ServerProcess], tmp_path: Path
) -> None:
    a, b = (server.url for server in instances)
    use_host_addresses(["127.0.0.1"])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        bob = await signed_in(http, a, "bob")
        ann = await signed_in(http, b, "ann")  # the viewer signs in on B
        room = (await json_of(await http.get(f"{a}/api/v1/users/me", headers=bob), 200))["id"]
        key = await json_of(await http.get(f"{a}/api/v1/live/key", headers=bob), 200)
        publisher = await ffmpeg_publish(key["rtmp_url"], seconds=30)  # A's RTMP port
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            # Listed by B, at B's own address (where this viewer reached the server).
            hls_url = ""

            async def listed() -> bool:
                nonlocal hls_url
                rooms = (await json_of(await http.get(f"{b}/api/v1/live", headers=ann), 200))[
                    "items"
                ]
                hls_url = rooms[0]["hls_url"] if rooms else ""
                return bool(hls_url)

            await eventually(listed, "the stream listed on B")
            assert hls_url.startswith(f"{b}/live/{room}/index.m3u8?vt="), hls_url

            # A plain player (no header, no cookie) plays it through B.
            playlist = ""

            async def two_segments() -> bool:
                nonlocal playlist
                response = await http.get(hls_url)
                playlist = await response.text()
                return response.status == 200 and len(segment_names(playlist)) >= 2

            await eventually(two_segments, "a playlist with two segments through B")
            media = tmp_path / "through-b.ts"
            got = []
            with media.open("wb") as out:
                for name in segment_names(playlist)[:2]:
                    assert "vt=" in name  # the viewer's own token, put in by B
                    segment = await http.get(urljoin(hls_url, name))
                    assert segment.status == 200, await segment.text()
                    assert segment.content_type == "video/mp2t"
                    got.append(await segment.read())
                    out.write(got[-1])
            first_segment = got[0]
            streams = {s["codec_type"]: s["codec_name"] for s in (await probe(media))["streams"]}
            assert streams == {"video": "h264", "audio": "aac"}

            # Signed in (a bearer token, as the web client's cookie): the
            # playlist lists its segments with a fresh token of the viewer's.
            mine = await http.get(f"{b}/live/{room}/index.m3u8", headers=ann)
            assert mine.status == 200
            names = segment_names(await mine.text())
            assert names and all("vt=" in name for name in names)
            assert (await http.get(f"{b}/live/{room}/{names[-1]}")).status == 200

            # Ten players reloading at once through B cost A one playlist
            # fetch (two if they straddle the relay's short cache), and
            # fetching a segment B fetched already costs A nothing.
            def fetched_from_a(name: str) -> int:
                wanted = f"GET /live/{room}/{name} 200"
                return sum(wanted in line for line in instances[0].log)

            await asyncio.sleep(0.6)  # past the relay's cache of the fetches above
            before = fetched_from_a("index.m3u8")
            answers = await asyncio.gather(*(http.get(hls_url) for _ in range(10)))
            assert [answer.status for answer in answers] == [200] * 10
            first = segment_names(playlist)[0]
            again = await asyncio.gather(*(http.get(urljoin(hls_url, first)) for _ in range(10)))
            assert [await answer.read() for answer in again] == [first_segment] * 10
            await asyncio.sleep(0.3)  # A's access lines reach its log
            assert 1 <= fetched_from_a("index.m3u8") - before <= 2
            assert fetched_from_a(first.split("?", 1)[0]) == 1

            # Without any credential: refused by B itself, as for its own rooms.
            anonymous = await http.get(f"{b}/live/{room}/index.m3u8")
            assert (await json_of(anonymous, 401))["error"]["code"] == "unauthenticated"

            # Made public: anyone plays it through B, and no token shows up.
            await json_of(
                await http.put(f"{a}/api/v1/live/public", json={"public": True}, headers=bob), 200
            )
            public = await http.get(f"{b}/live/{room}/index.m3u8")
            assert public.status == 200
            text = await public.text()
            assert "vt=" not in text and segment_names(text)
            assert (await http.get(f"{b}/live/{room}/{segment_names(text)[-1]}")).status == 200

            # B's viewers count in the room's viewers (B's fetches from A
            # are not viewers there: B tells A how many it has).
            async def counted() -> bool:
                await http.get(hls_url)  # a player reloading through B
                rooms = await json_of(await http.get(f"{b}/api/v1/live", headers=ann), 200)
                return bool(rooms["items"][0]["viewers"] >= 1)

            await eventually(counted, "B's viewers counted by A")

            # WHEP through B: offered to B, answered by A, the pictures flow.
            pc.addTransceiver("video", direction="recvonly")
            viewer = Viewer(pc)
            offered = await http.post(
                f"{b}/live/{room}/whep",
                data=await offer_of(pc),
                headers=ann | {"Content-Type": "application/sdp"},
            )
            assert offered.status == 201, await offered.text()
            session = offered.headers["Location"]
            assert session.startswith(f"/live/{room}/whep/")
            await pc.setRemoteDescription(RTCSessionDescription(await offered.text(), "answer"))
            await until(lambda: viewer.frames["video"] > 5, seconds=15)
            # Ended through B too (it would be through any instance).
            assert (await http.delete(f"{b}{session}", headers=ann)).status == 200
            again = await http.delete(f"{b}{session}", headers=ann)
            assert again.status == 404

            # The publisher stops: B says nobody is live there.
            publisher.terminate()
            await publisher.communicate()

            async def not_live() -> bool:
                response = await http.get(hls_url)
                return (
                    response.status == 404
                    and (await response.json())["error"]["code"] == "not_live"
                )

            await eventually(not_live, "B saying not_live once the stream ended")

            # Live again on A, and A dies: B answers at once, and clearly.
            publisher = await ffmpeg_publish(key["rtmp_url"], seconds=30)
            await eventually(listed, "the second stream listed on B")

            async def plays() -> bool:
                return (await http.get(f"{b}/live/{room}/index.m3u8")).status == 200

            await eventually(plays, "the second stream playing through B")
            instances[0].process.kill()
            await instances[0].process.wait()
            await asyncio.sleep(0.6)  # past the relay's playlist cache
            began = time.monotonic()
            gone = await http.get(f"{b}/live/{room}/index.m3u8")
            error = (await json_of(gone, 503))["error"]
            assert error["code"] == "stream_unreachable", error
            assert time.monotonic() - began < 3
            late = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            late.addTransceiver("video", direction="recvonly")
            offer = await offer_of(late)
            await late.close()
            whep = await http.post(
                f"{b}/live/{room}/whep",
                data=offer,
                headers=ann | {"Content-Type": "application/sdp"},
            )
            assert (await json_of(whep, 503))["error"]["code"] == "stream_unreachable"
        finally:
            await pc.close()
            if publisher.returncode is None:
                publisher.kill()
            await publisher.communicate()


async def test_a_whip_stream_is_watched_and_stopped_through_another_instance(
    instances: list[ServerProcess],
) -> None:
    a, b = (server.url for server in instances)
    use_host_addresses(["127.0.0.1"])
    sdp = {"Content-Type": "application/sdp"}
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        try:
            bob = await signed_in(http, a, "bob")
            ann = await signed_in(http, b, "ann")
            key = (await json_of(await http.get(f"{a}/api/v1/live/key", headers=bob), 200))[
                "stream_key"
            ]
            publisher.addTransceiver(ColourTrack(200), direction="sendonly")
            publisher.addTransceiver(AudioStreamTrack(), direction="sendonly")
            published = await http.post(
                f"{a}/api/v1/live/whip",
                data=await offer_of(publisher),
                headers=sdp | {"Authorization": f"Bearer {key}"},
            )
            assert published.status == 201, await published.text()
            stop = published.headers["Location"]
            await publisher.setRemoteDescription(
                RTCSessionDescription(await published.text(), "answer")
            )
            room = stop.rsplit("/", 1)[1]

            # Watched through B, sound and pictures (a WHIP stream has both).
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
            viewer = Viewer(pc)
            offered = await http.post(
                f"{b}/live/{room}/whep", data=await offer_of(pc), headers=ann | sdp
            )
            assert offered.status == 201, await offered.text()
            await pc.setRemoteDescription(RTCSessionDescription(await offered.text(), "answer"))
            await until(lambda: viewer.frames["video"] > 5 and viewer.frames["audio"] > 5, 15)

            # The publisher's DELETE reaches B (a load balancer's choice):
            # a wrong key is refused by A, the right one ends the stream.
            wrong = await http.delete(f"{b}{stop}", headers={"Authorization": "Bearer live_x"})
            assert (await json_of(wrong, 401))["error"]["code"] == "invalid_stream_key"
            ended = await http.delete(f"{b}{stop}", headers={"Authorization": f"Bearer {key}"})
            assert ended.status == 200, await ended.text()

            async def over() -> bool:
                rooms = await json_of(await http.get(f"{b}/api/v1/live", headers=ann), 200)
                return not rooms["items"]

            await eventually(over, "the WHIP stream ended through B")
        finally:
            await pc.close()
            await publisher.close()
