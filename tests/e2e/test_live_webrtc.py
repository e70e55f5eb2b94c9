"""Live rooms over WebRTC with real aiortc peers on 127.0.0.1: a WHIP
publisher goes live, WHEP viewers decode its pictures (and an RTMP
stream's), DELETE ends them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import pytest
from aiohttp.test_utils import TestClient
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from gortc.app import create_app
from gortc.delivery.keys import RTMP_SERVER
from gortc.media.aiortc_hooks import on_keyframe_request, use_host_addresses
from tests.conftest import ClientFactory, bearer, login, make_config, register
from tests.e2e.call_peer import ColourTrack
from tests.e2e.ws_client import WsClient
from tests.media_tools import ffmpeg_publish

SDP = {"Content-Type": "application/sdp"}


@pytest.fixture
async def live_app(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient:
    use_host_addresses(["127.0.0.1"])
    config = make_config(
        tmp_path / "data",
        rtc={"host_addresses": ["127.0.0.1"]},
        live={"rtmp_port": 0},
        limits={"enabled": False},
    )
    return await aiohttp_client(create_app(config))


@pytest.fixture
async def connections() -> AsyncIterator[list[RTCPeerConnection]]:
    opened: list[RTCPeerConnection] = []
    yield opened
    for pc in opened:
        await pc.close()


class Viewer:
    """A WHEP viewer: counts decoded frames and keeps the first pictures' grey."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.frames: dict[str, int] = {"video": 0, "audio": 0}
        self.lumas: list[float] = []
        self.tasks: list[asyncio.Task[None]] = []

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tasks.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                if isinstance(frame, av.VideoFrame) and len(self.lumas) < 20:
                    self.lumas.append(float(frame.to_ndarray(format="gray").mean()))


async def offer_of(pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


async def watch(
    client: TestClient, tokens: dict[str, Any], room_id: str, pcs: list[RTCPeerConnection]
) -> tuple[Viewer, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pcs.append(pc)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    viewer = Viewer(pc)
    response = await client.post(
        f"/live/{room_id}/whep", data=await offer_of(pc), headers=SDP | bearer(tokens)
    )
    assert response.status == 201, await response.text()
    assert response.content_type == "application/sdp"
    await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    return viewer, response.headers["Location"]


async def until(check: Any, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.05)


async def test_a_whip_publisher_goes_live_and_whep_viewers_see_it(
    live_app: TestClient, connections: list[RTCPeerConnection]
) -> None:
    bob = await register(live_app, "bob")
    bob_tokens = await login(live_app, "bob")
    await register(live_app, "ann")
    ann_tokens = await login(live_app, "ann")
    key = (await (await live_app.get("/api/v1/live/key", headers=bearer(bob_tokens))).json())[
        "stream_key"
    ]
    ann_ws = await WsClient.open(live_app, ann_tokens)

    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    connections.append(publisher)
    colour = ColourTrack(200)
    # It makes keyframes only when asked, as a browser does: a viewer who
    # comes later sees the picture only if the server's request reaches it.
    on_keyframe_request(
        publisher.addTransceiver(colour, direction="sendonly").sender, colour.request_keyframe
    )
    publisher.addTransceiver(AudioStreamTrack(), direction="sendonly")
    response = await live_app.post(
        "/api/v1/live/whip",
        data=await offer_of(publisher),
        headers=SDP | {"Authorization": f"Bearer {key}"},
    )
    assert response.status == 201, await response.text()
    assert response.headers["Location"] == f"/api/v1/live/whip/{bob['id']}"
    await publisher.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    started = await ann_ws.next("live.started")
    assert started["room"]["user_id"] == bob["id"]

    viewer, session = await watch(live_app, ann_tokens, bob["id"], connections)
    await until(lambda: viewer.frames["video"] > 10 and viewer.frames["audio"] > 10)
    grey = (200 - 16) * 255 / 219  # the publisher's colour, as decoded
    assert abs(sum(viewer.lumas) / len(viewer.lumas) - grey) < 6

    # A viewer who comes later and wants the picture only (an offer with no
    # audio section) is answered with the picture only, not refused, and
    # sees it from the keyframe the server asks the publisher for.
    video_only = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    connections.append(video_only)
    video_only.addTransceiver("video", direction="recvonly")
    late = Viewer(video_only)
    requests_before = len(colour.keyframe_requests)
    response = await live_app.post(
        f"/live/{bob['id']}/whep", data=await offer_of(video_only), headers=SDP | bearer(ann_tokens)
    )
    assert response.status == 201, await response.text()
    answer = await response.text()
    assert "m=video " in answer and "m=audio " not in answer
    await video_only.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await until(lambda: late.frames["video"] > 5)
    assert late.frames["audio"] == 0
    assert len(colour.keyframe_requests) > requests_before

    response = await live_app.delete(session, headers=bearer(ann_tokens))
    assert response.status == 200
    again = await live_app.delete(session, headers=bearer(ann_tokens))
    assert again.status == 404

    # The room's viewer token (what hls_url carries; how one instance passes
    # a viewer to another) is a credential for WHEP too, for this room only.
    rooms = await (await live_app.get("/api/v1/live", headers=bearer(ann_tokens))).json()
    token = parse_qs(urlsplit(rooms["items"][0]["hls_url"]).query)["vt"][0]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    connections.append(pc)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    offer = await offer_of(pc)
    by_token = await live_app.post(
        f"/live/{bob['id']}/whep", params={"vt": token}, data=offer, headers=SDP
    )
    assert by_token.status == 201, await by_token.text()
    ended = await live_app.delete(by_token.headers["Location"], params={"vt": token})
    assert ended.status == 200
    for room, vt in (("01ANOTHERROOM", token), (bob["id"], token[:-2] + "xx")):
        refused = await live_app.post(
            f"/live/{room}/whep", params={"vt": vt}, data=offer, headers=SDP
        )
        assert refused.status == 401
        assert (await refused.json())["error"]["code"] == "invalid_viewer_token"

    wrong = await live_app.delete(
        f"/api/v1/live/whip/{bob['id']}", headers={"Authorization": "Bearer live_nope"}
    )
    assert wrong.status == 401
    response = await live_app.delete(
        f"/api/v1/live/whip/{bob['id']}", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status == 200
    ended = await ann_ws.next("live.ended")
    assert ended["room_id"] == bob["id"]
    rooms = await (await live_app.get("/api/v1/live", headers=bearer(ann_tokens))).json()
    assert rooms["items"] == []
    await ann_ws.close()


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, "v=0", 401, "invalid_stream_key"),
        ({"Authorization": "Bearer live_wrong"}, "v=0", 401, "invalid_stream_key"),
        (
            {"Authorization": "Bearer live_x", "Content-Type": "application/json"},
            "{}",
            415,
            "unsupported_media_type",
        ),
        ({"Authorization": "Bearer live_x"}, "x" * 70_000, 413, "too_large"),
    ],
)
async def test_whip_refuses_bad_requests_clearly(
    live_app: TestClient, headers: dict[str, str], body: str, status: int, code: str
) -> None:
    response = await live_app.post("/api/v1/live/whip", data=body, headers=SDP | headers)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def test_a_bad_whip_offer_leaves_no_room(live_app: TestClient) -> None:
    await register(live_app, "bob")
    tokens = await login(live_app, "bob")
    key = (await (await live_app.get("/api/v1/live/key", headers=bearer(tokens))).json())[
        "stream_key"
    ]
    response = await live_app.post(
        "/api/v1/live/whip", data="v=0\r\n", headers=SDP | {"Authorization": f"Bearer {key}"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_sdp"
    rooms = await (await live_app.get("/api/v1/live", headers=bearer(tokens))).json()
    assert rooms["items"] == []


async def test_a_whep_viewer_gets_an_rtmp_stream_s_video(
    live_app: TestClient, connections: list[RTCPeerConnection]
) -> None:
    bob = await register(live_app, "bob")
    tokens = await login(live_app, "bob")
    key = (await (await live_app.get("/api/v1/live/key", headers=bearer(tokens))).json())[
        "stream_key"
    ]
    server: Any = live_app.app[RTMP_SERVER]
    publisher = await ffmpeg_publish(
        f"rtmp://127.0.0.1:{server.port}/live/{key}", seconds=8, gop=15
    )
    try:

        async def live() -> bool:
            rooms = await (await live_app.get("/api/v1/live", headers=bearer(tokens))).json()
            return bool(rooms["items"])

        async with asyncio.timeout(10):
            while not await live():
                await asyncio.sleep(0.1)
        viewer, _ = await watch(live_app, tokens, bob["id"], connections)
        await until(lambda: viewer.frames["video"] > 15, seconds=10)
        assert viewer.frames["audio"] == 0  # AAC has no WebRTC form: video only
    finally:
        if publisher.returncode is None:
            publisher.kill()
        await publisher.wait()
