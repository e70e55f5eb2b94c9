"""Group calls with real aiortc peers through the server's SFU, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import hmac
import itertools
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from gortc.app import create_app
from gortc.delivery.keys import MEDIA_ROUTER
from gortc.media.forwarding import ForwardedTrack
from tests.conftest import ClientFactory, bearer, login, make_config, register
from tests.e2e.call_peer import CallPeer

LUMAS = {"ann": 60, "ben": 130, "cat": 200}


def shown(luma: int) -> float:
    """The grey a decoder shows for a video-range luma (16–235 to 0–255)."""
    return (luma - 16) * 255 / 219


@pytest.fixture
async def call_app(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient:
    config = make_config(
        tmp_path / "data",
        rtc={"host_addresses": ["127.0.0.1"], "max_participants": 3},
        limits={"enabled": False},
    )
    return await aiohttp_client(create_app(config))


async def group_with(client: TestClient, *names: str) -> tuple[str, dict[str, CallPeer]]:
    peers: dict[str, CallPeer] = {}
    tokens: dict[str, dict[str, Any]] = {}
    for name in names:
        user = await register(client, name)
        tokens[name] = await login(client, name)
        peers[name] = CallPeer(client, user, tokens[name])
    owner = names[0]
    response = await client.post(
        "/api/v1/groups", json={"name": "standup"}, headers=bearer(tokens[owner])
    )
    group_id = (await response.json())["id"]
    for name in names[1:]:
        response = await client.post(
            f"/api/v1/groups/{group_id}/members",
            json={"user_id": peers[name].user_id},
            headers=bearer(tokens[owner]),
        )
        assert response.status == 201, await response.text()
    for peer in peers.values():
        await peer.connect()
    return group_id, peers


@pytest.fixture
async def closing() -> AsyncIterator[list[CallPeer]]:
    """Peers to close at the end, whatever happened."""
    opened: list[CallPeer] = []
    yield opened
    for peer in opened:
        await peer.close()


async def test_three_participants_see_and_hear_each_other(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    group_id, peers = await group_with(call_app, "ann", "ben", "cat")
    closing.extend(peers.values())
    for name, peer in peers.items():
        reply = await peer.join(group_id, luma=LUMAS[name])
        assert reply["type"] == "call.answer", reply
        assert reply["ice_servers"] == []
    for name, peer in peers.items():
        others = [p for n, p in peers.items() if n != name]
        await peer.wait_until(
            lambda peer=peer, others=others: all(
                peer.frames_from(o.user_id, "video") >= 10 and peer.frames_from(o.user_id, "audio")
                for o in others
            ),
            timeout=15,
        )
    for name, peer in peers.items():
        for other_name, other in peers.items():
            if other_name == name:
                assert peer.frames_from(other.user_id, "video") == 0  # never one's own
                continue
            # The frames decoded from each tile are that person's colour.
            lumas = peer.received[(other.user_id, "video")].lumas
            assert abs(sum(lumas) / len(lumas) - shown(LUMAS[other_name])) < 6, (name, other_name)
    roster = peers["ann"].participants()
    assert roster is not None
    assert sorted(p["user_id"] for p in roster) == sorted(p.user_id for p in peers.values())
    assert all(not p["audio_muted"] and not p["video_muted"] for p in roster)


async def test_a_late_joiner_gets_video_within_two_seconds(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    group_id, peers = await group_with(call_app, "ann", "ben")
    closing.extend(peers.values())
    await peers["ann"].join(group_id, luma=LUMAS["ann"])
    # Long past ann's first keyframe: ben's decoder needs a new one, which
    # only a keyframe request relayed to ann's encoder brings this soon.
    await peers["ann"].wait_until(lambda: peers["ann"].pc.connectionState == "connected")
    await asyncio.sleep(3.0)
    joined_at = time.monotonic()
    await peers["ben"].join(group_id, luma=LUMAS["ben"])
    ben = peers["ben"]
    await ben.wait_until(lambda: ben.frames_from(peers["ann"].user_id, "video") > 0, timeout=5)
    first = ben.received[(peers["ann"].user_id, "video")].first_at
    assert first is not None
    assert first - joined_at < 2.0
    lumas = ben.received[(peers["ann"].user_id, "video")].lumas
    assert abs(lumas[0] - shown(LUMAS["ann"])) < 6  # the first frame shown is a whole picture
    # ann's encoder was asked, and not flooded: at most one request a second.
    requests = peers["ann"].video.keyframe_requests if peers["ann"].video else []
    assert requests
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(requests))


async def test_muting_stops_forwarding_and_everyone_sees_the_badge(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    group_id, peers = await group_with(call_app, "ann", "ben")
    closing.extend(peers.values())
    ann, ben = peers["ann"], peers["ben"]
    await ann.join(group_id, luma=LUMAS["ann"])
    await ben.join(group_id, luma=LUMAS["ben"])
    await ben.wait_until(lambda: ben.frames_from(ann.user_id, "video") > 5)
    await ben.wait_until(lambda: ben.frames_from(ann.user_id, "audio") > 5)

    await ann.send(type="call.mute", group_id=group_id, kind="audio", muted=True)
    await ann.send(type="call.mute", group_id=group_id, kind="video", muted=True)

    def ann_state() -> dict[str, Any] | None:
        roster = ben.participants() or []
        return next((p for p in roster if p["user_id"] == ann.user_id), None)

    await ben.wait_until(lambda: (ann_state() or {}).get("video_muted") is True)
    assert ann_state() == {
        "user_id": ann.user_id,
        "audio_muted": True,
        "video_muted": True,
        "screen_sharing": False,
    }
    video, audio = await settled(ben, ann.user_id)
    await asyncio.sleep(1.0)
    assert ben.frames_from(ann.user_id, "video") == video
    assert ben.frames_from(ann.user_id, "audio") == audio
    assert ann.frames_from(ben.user_id, "video") > 0  # the other direction goes on

    asked_before = len(ann.video.keyframe_requests) if ann.video else 0
    await ann.send(type="call.mute", group_id=group_id, kind="video", muted=False)
    await ben.wait_until(lambda: ben.frames_from(ann.user_id, "video") > video + 5)
    assert ann.video is not None
    assert len(ann.video.keyframe_requests) > asked_before  # resumed with a keyframe
    assert ben.frames_from(ann.user_id, "audio") == audio  # audio is still muted
    assert (ann_state() or {}).get("video_muted") is False


async def test_leaving_tells_everyone_and_frees_the_connection(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    group_id, peers = await all_in_a_call(call_app, closing, "ann", "ben", "cat")
    ann, ben, cat = peers["ann"], peers["ben"], peers["cat"]
    await ann.wait_until(lambda: ann.frames_from(ben.user_id, "video") > 0)
    mark = len(ben.frames)

    await ben.send(type="call.leave", group_id=group_id)
    ended = await ben.wait_for("call.ended", after=mark)
    assert ended == {"type": "call.ended", "group_id": group_id, "reason": "left"}
    await ann.wait_until(
        lambda: (
            sorted(p["user_id"] for p in ann.participants() or [])
            == sorted([ann.user_id, cat.user_id])
        )
    )
    # ann's connection is renegotiated without ben's tracks.
    await ann.wait_until(lambda: {t["user_id"] for t in last_offer(ann)["tracks"]} == {cat.user_id})
    from_ben, _ = await settled(ann, ben.user_id)
    await asyncio.sleep(0.5)
    assert ann.frames_from(ben.user_id, "video") == from_ben
    assert ann.frames_from(cat.user_id, "video") > 0
    assert len(router_of(call_app).peer_connections()) == 2

    # Ben can come back, and is seen again.
    await ben.close()
    closing.remove(ben)
    user = {"id": ben.user_id}
    again = CallPeer(call_app, user, ben.tokens)
    closing.append(again)
    await again.connect()
    await again.join(group_id, luma=LUMAS["ben"])
    await ann.wait_until(lambda: ann.frames_from(ben.user_id, "video") > from_ben + 5)


async def test_a_dropped_connection_leaves_the_call(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    _, peers = await all_in_a_call(call_app, closing, "ann", "ben", "cat")
    ann, ben, cat = peers["ann"], peers["ben"], peers["cat"]
    await ann.wait_until(lambda: ann.frames_from(cat.user_id, "video") > 0)

    await cat.close(abruptly=True)  # no call.leave, no WebSocket close, no goodbye
    closing.remove(cat)
    for peer in (ann, ben):
        await peer.wait_until(
            lambda peer=peer: cat.user_id not in {p["user_id"] for p in peer.participants() or []}
        )
    await ann.wait_until(lambda: len(router_of(call_app).peer_connections()) == 2)
    # The others carry on.
    seen = ann.frames_from(ben.user_id, "video")
    await ann.wait_until(lambda: ann.frames_from(ben.user_id, "video") > seen + 10)


async def all_in_a_call(
    client: TestClient, closing: list[CallPeer], *names: str
) -> tuple[str, dict[str, CallPeer]]:
    """A group of ``names`` whose members have all joined its call, each
    sending their own grey level (LUMAS)."""
    group_id, peers = await group_with(client, *names)
    closing.extend(peers.values())
    for name, peer in peers.items():
        await peer.join(group_id, luma=LUMAS[name])
    return group_id, peers


async def in_a_call(client: TestClient, closing: list[CallPeer]) -> tuple[str, CallPeer, CallPeer]:
    """ann and ben in a call, each seeing the other."""
    group_id, peers = await all_in_a_call(client, closing, "ann", "ben")
    ann, ben = peers["ann"], peers["ben"]
    await ann.wait_until(lambda: ann.frames_from(ben.user_id, "video") > 0)
    await ben.wait_until(lambda: ben.frames_from(ann.user_id, "video") > 0)
    return group_id, ann, ben


async def test_a_failed_media_connection_ends_the_participation(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    _, ann, ben = await in_a_call(call_app, closing)
    mark = len(ben.frames)

    await ben.pc.close()  # the media goes; the WebSocket stays
    ended = await ben.wait_for("call.ended", after=mark)
    assert ended["reason"] == "connection_failed"
    await ann.wait_until(lambda: [p["user_id"] for p in ann.participants() or []] == [ann.user_id])


async def test_outsiders_cannot_join_and_change_nothing(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    group_id, peers = await group_with(call_app, "ann", "ben")
    closing.extend(peers.values())
    outsider_user = await register(call_app, "eve")
    outsider = CallPeer(call_app, outsider_user, await login(call_app, "eve"))
    closing.append(outsider)
    await outsider.connect()
    await peers["ann"].join(group_id, luma=LUMAS["ann"])

    reply = await outsider.join(group_id)
    assert reply["type"] == "error"
    assert (reply["status"], reply["code"]) == (404, "group_not_found")
    await asyncio.sleep(0.3)
    assert [p["user_id"] for p in peers["ann"].participants() or []] == [peers["ann"].user_id]
    assert len(router_of(call_app).peer_connections()) == 1
    response = await call_app.get(
        f"/api/v1/groups/{group_id}/call", headers=bearer(outsider.tokens)
    )
    assert response.status == 404


async def test_a_full_call_refuses_one_more(call_app: TestClient, closing: list[CallPeer]) -> None:
    group_id, peers = await group_with(call_app, "ann", "ben", "cat", "dan")
    closing.extend(peers.values())
    for name in ("ann", "ben", "cat"):
        await peers[name].join(group_id, luma=LUMAS[name])
    reply = await peers["dan"].join(group_id)
    assert (reply["type"], reply["status"], reply["code"]) == ("error", 409, "call_full")
    response = await call_app.get(
        f"/api/v1/groups/{group_id}/call", headers=bearer(peers["dan"].tokens)
    )
    body = await response.json()
    assert len(body["participants"]) == 3
    assert peers["dan"].user_id not in {p["user_id"] for p in body["participants"]}


@pytest.mark.parametrize(
    ("sdp", "problem"),
    [
        ("v=0\r\nthis is not a session description\r\n", "invalid_sdp"),
        ("   ", "invalid_sdp"),
    ],
)
async def test_a_bad_offer_is_refused_and_leaves_no_call(
    call_app: TestClient, closing: list[CallPeer], sdp: str, problem: str
) -> None:
    group_id, peers = await group_with(call_app, "ann")
    closing.extend(peers.values())
    ann = peers["ann"]
    await ann.send(type="call.join", group_id=group_id, sdp=sdp)
    reply = await ann.wait_for("error")
    assert (reply["status"], reply["code"]) == (400, problem)
    response = await call_app.get(f"/api/v1/groups/{group_id}/call", headers=bearer(ann.tokens))
    assert (await response.json())["participants"] == []
    assert router_of(call_app).peer_connections() == []
    # The socket still works, and a good offer then joins.
    reply = await ann.join(group_id)
    assert reply["type"] == "call.answer", reply


async def test_call_frames_out_of_turn_get_clear_errors(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    group_id, peers = await group_with(call_app, "ann")
    closing.extend(peers.values())
    ann = peers["ann"]
    for frame in (
        {"type": "call.answer", "group_id": group_id, "sdp": "v=0"},
        {"type": "call.mute", "group_id": group_id, "kind": "audio", "muted": True},
        {"type": "call.leave", "group_id": group_id},
    ):
        mark = len(ann.frames)
        await ann.send(**frame)
        reply = await ann.wait_for("error", after=mark)
        assert (reply["status"], reply["code"]) == (409, "not_in_call"), frame
    mark = len(ann.frames)
    await ann.send(type="call.mute", group_id=group_id, kind="speaker", muted=True)
    reply = await ann.wait_for("error", after=mark)
    assert (reply["status"], reply["code"]) == (400, "invalid_frame")
    await ann.join(group_id)
    mark = len(ann.frames)
    await ann.send(type="call.answer", group_id=group_id, sdp="v=0")  # no offer is waiting
    reply = await ann.wait_for("error", after=mark)
    assert (reply["status"], reply["code"]) == (409, "no_offer_pending")


def last_offer(peer: CallPeer) -> dict[str, Any]:
    offers = [f for f in peer.frames if f["type"] == "call.offer"]
    return offers[-1] if offers else {"tracks": []}


async def settled(peer: CallPeer, user_id: str) -> tuple[int, int]:
    """Waits (bounded) until no more video or audio from ``user_id`` reaches
    ``peer`` (what was already on its way has arrived); the counts then."""
    counts = (-1, -1)
    for _ in range(40):
        now = (peer.frames_from(user_id, "video"), peer.frames_from(user_id, "audio"))
        if now == counts:
            return now
        counts = now
        await asyncio.sleep(0.25)
    raise AssertionError(f"{user_id}'s media kept arriving: {counts}")


def router_of(client: TestClient) -> Any:
    return client.app[MEDIA_ROUTER]


async def test_the_server_forwards_without_encoding(
    call_app: TestClient, closing: list[CallPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peers here encode their video with PyAV themselves, so any call
    of aiortc's video encoders in this process would be the server's; audio
    is encoded by the peers with aiortc's Opus encoder, so the server's
    senders are told apart by their encoder objects."""
    encoded: dict[str, list[int]] = {"vp8": [], "h264": [], "opus": []}
    packed: dict[str, list[int]] = {"vp8": [], "h264": [], "opus": []}
    for name, cls in (("vp8", Vp8Encoder), ("h264", H264Encoder), ("opus", OpusEncoder)):
        monkeypatch.setattr(cls, "encode", _counting(cls.encode, encoded[name]))
        monkeypatch.setattr(cls, "pack", _counting(cls.pack, packed[name]))
    _, peers = await all_in_a_call(call_app, closing, "ann", "ben", "cat")
    for peer in peers.values():
        await peer.wait_until(
            lambda peer=peer: all(
                peer.frames_from(o.user_id, "video") >= 30 for o in peers.values() if o is not peer
            ),
            timeout=15,
        )
    server_encoders = {
        id(encoder)
        for pc in router_of(call_app).peer_connections()
        for transceiver in pc.getTransceivers()
        if (encoder := getattr(transceiver.sender, "_RTCRtpSender__encoder", None)) is not None
    }
    assert len(server_encoders) == 12  # 3 subscribers × 2 others × (video, audio)
    assert encoded["vp8"] == [] and encoded["h264"] == []  # no video encode at all
    assert not server_encoders & set(encoded["opus"])  # and no audio encode by the server
    assert len([e for e in packed["vp8"] if e in server_encoders]) >= 6 * 30
    assert len([e for e in packed["opus"] if e in server_encoders]) > 0


def _counting(method: Any, calls: list[int]) -> Any:
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(id(self))
        return method(self, *args, **kwargs)

    return counted


async def test_many_joins_and_leaves_leave_nothing_behind(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    group_id, peers = await group_with(call_app, "ann", "ben")
    closing.append(peers["ann"])
    ann = peers["ann"]
    await ann.join(group_id, luma=LUMAS["ann"])
    ben_user, ben_tokens = {"id": peers["ben"].user_id}, peers["ben"].tokens
    await peers["ben"].close()

    async def cycle(how: str) -> None:
        ben = CallPeer(call_app, ben_user, ben_tokens)
        await ben.connect()
        try:
            await ben.join(group_id, luma=LUMAS["ben"])
            await ben.wait_until(lambda: ben.frames_from(ann.user_id, "video") > 0)
            await ann.wait_until(
                lambda: {t["user_id"] for t in last_offer(ann)["tracks"]} == {ben.user_id}
            )
            if how == "leave":
                await ben.send(type="call.leave", group_id=group_id)
                await ben.wait_for("call.ended")
        finally:
            await ben.close(abruptly=how == "drop")
        await ann.wait_until(lambda: len(router_of(call_app).peer_connections()) == 1)

    await cycle("leave")  # the first cycle's imports and caches are not a leak
    gc.collect()
    threads = _media_threads()
    connections = _live(RTCPeerConnection)
    for how in ("leave", "drop", "close") * 2:
        await cycle(how)
    await ann.wait_until(lambda: _media_threads() <= threads, timeout=10)
    gc.collect()
    assert _live(RTCPeerConnection) <= connections
    assert _live(ForwardedTrack) <= 2  # ann's two sections, waiting for the next one
    # ann's connection reuses the sections of those who left: 2 of her own, 2 for others.
    (server_side,) = router_of(call_app).peer_connections()
    assert len(server_side.getTransceivers()) == 4
    await ann.wait_until(lambda: [p["user_id"] for p in ann.participants() or []] == [ann.user_id])


def _media_threads() -> int:
    """aiortc's per-receiver decoder threads (the thread pool that encodes
    the peers' audio grows on its own and is not counted)."""
    return sum(1 for t in threading.enumerate() if t.name.endswith("-decoder"))


def _live(kind: type) -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


async def test_someone_removed_from_the_group_is_removed_from_its_call(
    call_app: TestClient, closing: list[CallPeer]
) -> None:
    group_id, ann, ben = await in_a_call(call_app, closing)
    mark = len(ben.frames)
    response = await call_app.delete(
        f"/api/v1/groups/{group_id}/members/{ben.user_id}", headers=bearer(ann.tokens)
    )
    assert response.status == 204
    ended = await ben.wait_for("call.ended", after=mark)
    assert ended["reason"] == "removed_from_group"
    await ann.wait_until(lambda: [p["user_id"] for p in ann.participants() or []] == [ann.user_id])
    assert len(router_of(call_app).peer_connections()) == 1


async def test_clients_are_told_the_ice_servers_with_their_own_turn_credentials(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    secret = "shared-with-coturn"
    config = make_config(
        tmp_path / "data",
        rtc={
            "host_addresses": ["127.0.0.1"],
            "stun_urls": ["stun:stun.example.org:3478"],
            "turn_urls": ["turn:turn.example.org:3478?transport=udp"],
            "turn_secret": secret,
            "turn_credential_seconds": 600,
        },
    )
    client = await aiohttp_client(create_app(config))
    user = await register(client, "ann")
    tokens = await login(client, "ann")
    response = await client.get("/api/v1/calls/ice-servers", headers=bearer(tokens))
    assert response.status == 200
    stun, turn = (await response.json())["ice_servers"]
    assert stun == {"urls": ["stun:stun.example.org:3478"], "username": None, "credential": None}
    assert turn["urls"] == ["turn:turn.example.org:3478?transport=udp"]
    expiry, user_id = turn["username"].split(":")
    assert user_id == user["id"]
    assert 0 < int(expiry) - time.time() <= 600
    digest = hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()
    unauthenticated = await client.get("/api/v1/calls/ice-servers")
    assert unauthenticated.status == 401
