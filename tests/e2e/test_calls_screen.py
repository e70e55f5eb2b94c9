"""Screen sharing through the SFU with real aiortc peers, on 127.0.0.1: a
participant's second video section is their screen, forwarded beside their
camera only while they say they share it, labelled as such in call.offer
and call.participants, and a late joiner gets its picture at once (the
keyframe request reaches the screen's encoder, not the camera's)."""

from __future__ import annotations

import asyncio
import time

from aiohttp.test_utils import TestClient

from tests.e2e.call_peer import CallPeer
from tests.e2e.test_calls import call_app, closing, group_with, last_offer, shown  # noqa: F401

CAMERA, SCREEN, OTHER = 60, 220, 140


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


async def share(peer: CallPeer, group_id: str, sharing: bool) -> None:
    await peer.send(type="call.mute", group_id=group_id, kind="screen", muted=not sharing)


def sharing_of(peer: CallPeer, user_id: str) -> bool | None:
    roster = peer.participants() or []
    return next((p["screen_sharing"] for p in roster if p["user_id"] == user_id), None)


async def test_a_shared_screen_arrives_beside_the_camera_labelled(
    call_app: TestClient,  # noqa: F811
    closing: list[CallPeer],  # noqa: F811
) -> None:
    group_id, peers = await group_with(call_app, "ann", "ben")
    closing.extend(peers.values())
    ann, ben = peers["ann"], peers["ben"]
    assert (await ann.join(group_id, luma=CAMERA, screen_luma=SCREEN))["type"] == "call.answer"
    assert (await ben.join(group_id, luma=OTHER))["type"] == "call.answer"

    # Ben is offered ann's microphone, camera and screen, each named.
    await ben.wait_until(lambda: len(last_offer(ben)["tracks"]) == 3)
    sources = sorted((t["user_id"], t["kind"], t["source"]) for t in last_offer(ben)["tracks"])
    assert sources == sorted(
        [
            (ann.user_id, "audio", "microphone"),
            (ann.user_id, "video", "camera"),
            (ann.user_id, "video", "screen"),
        ]
    )
    # Ann is offered ben's two (he has no screen section).
    await ann.wait_until(lambda: len(last_offer(ann)["tracks"]) == 2)
    assert {t["source"] for t in last_offer(ann)["tracks"]} == {"microphone", "camera"}

    # Until ann shares, her camera arrives and her screen does not.
    await ben.wait_until(lambda: ben.frames_from(ann.user_id, "video") >= 10, timeout=10)
    assert ben.frames_from(ann.user_id, "screen") == 0
    assert sharing_of(ben, ann.user_id) is False

    # She shares: everyone is told, and ben decodes both of her pictures.
    await share(ann, group_id, True)
    await ben.wait_until(lambda: sharing_of(ben, ann.user_id) is True)
    await ben.wait_until(lambda: ben.frames_from(ann.user_id, "screen") >= 10, timeout=10)
    camera = ben.received[(ann.user_id, "video")].lumas
    screen = ben.received[(ann.user_id, "screen")].lumas
    assert abs(mean(camera) - shown(CAMERA)) < 6
    assert abs(mean(screen) - shown(SCREEN)) < 6
    assert ben.frames_from(ann.user_id, "video") >= 10  # the camera kept going

    # She stops: the screen's frames stop, the camera's go on.
    await share(ann, group_id, False)
    await ben.wait_until(lambda: sharing_of(ben, ann.user_id) is False)
    await asyncio.sleep(0.3)  # frames already on their way
    screen_frames = ben.frames_from(ann.user_id, "screen")
    camera_frames = ben.frames_from(ann.user_id, "video")
    await asyncio.sleep(1.0)
    assert ben.frames_from(ann.user_id, "screen") == screen_frames
    assert ben.frames_from(ann.user_id, "video") > camera_frames


async def test_a_late_joiner_gets_the_shared_screen_at_once(
    call_app: TestClient,  # noqa: F811
    closing: list[CallPeer],  # noqa: F811
) -> None:
    group_id, peers = await group_with(call_app, "ann", "ben")
    closing.extend(peers.values())
    ann, ben = peers["ann"], peers["ben"]
    await ann.join(group_id, luma=CAMERA, screen_luma=SCREEN)
    await ann.wait_until(lambda: ann.pc.connectionState == "connected")
    await share(ann, group_id, True)
    await ann.wait_until(lambda: sharing_of(ann, ann.user_id) is True)
    # Long past the screen's first keyframe: only a request relayed to the
    # screen's own encoder (it makes keyframes on request only) shows ben
    # its picture this soon.
    await asyncio.sleep(3.0)
    assert ann.screen is not None and ann.video is not None
    screen_asked = len(ann.screen.keyframe_requests)
    joined_at = time.monotonic()
    await ben.join(group_id, luma=OTHER)
    await ben.wait_until(lambda: ben.frames_from(ann.user_id, "screen") > 0, timeout=5)
    got = ben.received[(ann.user_id, "screen")]
    assert got.first_at is not None and got.first_at - joined_at < 2.0
    assert abs(got.lumas[0] - shown(SCREEN)) < 6  # a whole picture of the screen first
    assert len(ann.screen.keyframe_requests) > screen_asked
    assert sharing_of(ben, ann.user_id) is True
