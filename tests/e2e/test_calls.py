"""Group calls with real aiortc peers through the server's SFU, on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
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
    await _sleep(3.0)
    joined_at = time.monotonic()
    await peers["ben"].join(group_id, luma=LUMAS["ben"])
    ben = peers["ben"]
    await ben.wait_until(lambda: ben.frames_from(peers["ann"].user_id, "video") > 0, timeout=5)
    first = ben.received[(peers["ann"].user_id, "video")].first_at
    assert first is not None
    assert first - joined_at < 2.0
    lumas = ben.received[(peers["ann"].user_id, "video")].lumas
    assert abs(lumas[0] - shown(LUMAS["ann"])) < 6  # the first frame shown is a whole picture


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
