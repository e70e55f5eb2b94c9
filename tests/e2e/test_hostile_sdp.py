"""SDP garbage on every SDP entry point: call.join and call.answer over the
WebSocket, WHIP and WHEP over HTTP. Each bad description is refused with a
4xx (400 invalid_sdp, 413, 415) or an error frame, never a 500, and leaves
no peer connection, participant, room or viewer behind. Real aiortc peers
make the valid offers the garbage is cut from; everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gortc.app import create_app
from gortc.delivery.keys import MEDIA_ROUTER
from gortc.media.aiortc_hooks import use_host_addresses
from tests.conftest import ClientFactory, bearer, login, make_config, register
from tests.e2e.call_peer import CallPeer, ColourTrack
from tests.e2e.ws_client import WsClient

SDP = {"Content-Type": "application/sdp"}
FUZZ_EXAMPLES = int(os.environ.get("GORTC_FUZZ_EXAMPLES", "100"))


@pytest.fixture
async def app(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient:
    use_host_addresses(["127.0.0.1"])
    config = make_config(
        tmp_path / "data",
        # Time enough to answer the server's call.offer with all the garbage
        # first, on a busy machine.
        rtc={"host_addresses": ["127.0.0.1"], "answer_timeout_seconds": 60.0},
        live={"rtmp_port": 0},
        limits={"enabled": False},
    )
    return await aiohttp_client(create_app(config))


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """Whatever the garbage, the server logs no error (no traceback)."""
    caplog.set_level(logging.INFO)
    yield
    errors = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("gortc", "aiohttp"))
    ]
    assert errors == []


async def offer_from(*sections: tuple[str, str]) -> str:
    """A real offer (ICE candidates on 127.0.0.1) for (kind, direction) sections."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind, direction in sections:
        if kind == "video" and direction != "recvonly":
            pc.addTransceiver(ColourTrack(100), direction=direction)
        else:
            pc.addTransceiver(kind, direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


def loopback_only(sdp: str) -> str:
    """Drops candidate lines a mutation may have pointed elsewhere (and any
    mDNS name), so that no test ever sends a packet off this machine."""
    kept = [
        line
        for line in sdp.split("\r\n")
        if not (line.startswith("a=candidate") and " 127.0.0.1 " not in line)
        and ".local" not in line
    ]
    return "\r\n".join(kept)


def garbage_from(offer: str) -> list[tuple[str, str]]:
    """Bad descriptions made from a good offer: (what, sdp)."""
    rng = random.Random(7)
    lines = offer.split("\r\n")
    session = lines[: next(i for i, line in enumerate(lines) if line.startswith("m="))]

    def without(prefix: str) -> str:
        return "\r\n".join(line for line in lines if not line.startswith(prefix))

    def replaced(pattern: str, replacement: str) -> str:
        return re.sub(pattern, replacement, offer, flags=re.MULTILINE)

    return [
        ("empty", ""),
        ("blank", "  \r\n\r\n"),
        ("random text", "".join(rng.choice("abc=\r\n :/0123456789") for _ in range(500))),
        ("truncated", offer[: len(offer) // 2]),
        ("cut inside a line", offer[: offer.index("a=fingerprint") + 20]),
        ("no media", "\r\n".join(session) + "\r\n"),
        ("no version line", offer.replace("v=0\r\n", "", 1)),
        ("no fingerprint", without("a=fingerprint")),
        ("a garbled fingerprint", replaced(r"^a=fingerprint:.*$", "a=fingerprint:sha-256 ZZ")),
        ("a fingerprint of an unknown hash", replaced(r"^a=fingerprint:\S+", "a=fingerprint:md5")),
        ("no ICE credentials", without("a=ice-")),
        ("garbage candidates", replaced(r"^a=candidate:.*$", "a=candidate:1 1 udp x y z")),
        ("a port that is not one", replaced(r"^m=(\w+) \d+", r"m=\1 port")),
        ("no codecs", replaced(r"^(m=\w+ \d+ \S+) .*$", r"\1")),
        ("unknown codecs only", replaced(r"^a=rtpmap:(\d+) .*$", r"a=rtpmap:\1 NOPE/90000")),
        ("an unknown transport", replaced(r"^(m=\w+ \d+) \S+", r"\1 TCP/NOPE")),
        ("a bundle of unknown sections", replaced(r"^a=group:BUNDLE .*$", "a=group:BUNDLE x y")),
        ("duplicate section ids", replaced(r"^a=mid:.*$", "a=mid:0")),
        ("a setup role that is not one", replaced(r"^a=setup:.*$", "a=setup:sideways")),
        ("NUL bytes", offer.replace("\r\n", "\r\n\x00", 3)),
        ("binary noise", "v=0\r\n" + "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(800))),
    ]


def peer_connections() -> int:
    """aiortc peer connections alive in this process (the test's own too)."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))


@dataclass
class People:
    tokens: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    group_id: str
    stream_key: str


@pytest.fixture
async def people(app: TestClient) -> People:
    tokens: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    for name in ("ann", "ben"):
        users[name] = await register(app, name)
        tokens[name] = await login(app, name)
    response = await app.post("/api/v1/groups", json={"name": "g"}, headers=bearer(tokens["ann"]))
    group_id = (await response.json())["id"]
    response = await app.post(
        f"/api/v1/groups/{group_id}/members",
        json={"user_id": users["ben"]["id"]},
        headers=bearer(tokens["ann"]),
    )
    assert response.status == 201
    key = await (await app.get("/api/v1/live/key", headers=bearer(tokens["ann"]))).json()
    return People(tokens, users, group_id, key["stream_key"])


@pytest.fixture
async def closing() -> AsyncIterator[list[Any]]:
    """Peers and connections to close at the end, whatever happened."""
    opened: list[Any] = []
    yield opened
    for thing in opened:
        await thing.close()


# -- WHIP and WHEP ------------------------------------------------------------------------


async def refused(response: Any) -> tuple[int, str]:
    body = await response.json()
    return response.status, body["error"]["code"]


async def test_whip_refuses_garbage_and_goes_live_with_nothing(
    app: TestClient, people: People
) -> None:
    key = {"Authorization": f"Bearer {people.stream_key}"}
    offer = await offer_from(("video", "sendonly"), ("audio", "sendonly"))
    baseline = peer_connections()
    for what, sdp in garbage_from(offer):
        response = await app.post("/api/v1/live/whip", data=sdp.encode(), headers=SDP | key)
        assert await refused(response) == (400, "invalid_sdp"), what
    cases = [
        ("not UTF-8", b"v=0\r\n\xff\xfe", SDP, (400, "invalid_sdp")),
        ("over 64 KiB", offer.encode() + b"a=x:" + b"p" * 70_000, SDP, (413, "too_large")),
        ("JSON", b'{"sdp": "v=0"}', {"Content-Type": "application/json"}, (415, None)),
        ("no content type", offer.encode(), {}, (415, None)),
        ("text/plain", offer.encode(), {"Content-Type": "text/plain"}, (415, None)),
    ]
    for what, data, headers, (status, code) in cases:
        response = await app.post("/api/v1/live/whip", data=data, headers=headers | key)
        assert response.status == status, what
        if code is not None:
            assert (await response.json())["error"]["code"] == code, what
    # A chunked body over the limit (no Content-Length to refuse it by).

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(80):
            yield b"a=x:" + b"p" * 1020 + b"\r\n"

    response = await app.post("/api/v1/live/whip", data=chunks(), headers=SDP | key)
    assert await refused(response) == (413, "too_large")
    rooms = await (await app.get("/api/v1/live", headers=bearer(people.tokens["ben"]))).json()
    assert rooms["items"] == []
    assert peer_connections() <= baseline


async def test_whep_refuses_garbage_and_keeps_no_viewer(
    app: TestClient, people: People, closing: list[Any]
) -> None:
    # Ann goes live over WHIP (a video section: the room's media are known
    # from the negotiation; no need to spend the CPU on sending pictures).
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    closing.append(publisher)
    publisher.addTransceiver("video", direction="sendonly")
    await publisher.setLocalDescription(await publisher.createOffer())
    response = await app.post(
        "/api/v1/live/whip",
        data=publisher.localDescription.sdp,
        headers=SDP | {"Authorization": f"Bearer {people.stream_key}"},
    )
    assert response.status == 201, await response.text()
    await publisher.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    room_id = people.users["ann"]["id"]
    whep = f"/live/{room_id}/whep"
    ben = bearer(people.tokens["ben"])

    offer = await offer_from(("video", "recvonly"), ("audio", "recvonly"))
    baseline = peer_connections()
    for what, sdp in garbage_from(offer):
        response = await app.post(whep, data=sdp.encode(), headers=SDP | ben)
        assert await refused(response) == (400, "invalid_sdp"), what
    response = await app.post(whep, data=b"x" * 70_000, headers=SDP | ben)
    assert await refused(response) == (413, "too_large")
    response = await app.post(whep, data=offer, headers={"Content-Type": "text/plain"} | ben)
    assert response.status == 415
    # An offer that only sends (nothing the room could give it).
    only_sends = await offer_from(("audio", "sendonly"))
    response = await app.post(whep, data=only_sends, headers=SDP | ben)
    assert await refused(response) == (400, "invalid_sdp")

    rooms = await (await app.get("/api/v1/live", headers=ben)).json()
    assert [room["viewers"] for room in rooms["items"]] == [0]
    assert peer_connections() <= baseline
    # And a good offer still gets its answer.
    response = await app.post(whep, data=offer, headers=SDP | ben)
    assert response.status == 201, await response.text()
    response = await app.delete(response.headers["Location"], headers=ben)
    assert response.status == 200


# -- call.join and call.answer ----------------------------------------------------------


async def test_call_join_refuses_garbage_and_leaves_no_participant(
    app: TestClient, people: People
) -> None:
    ws = await WsClient.open(app, people.tokens["ben"])
    offer = await offer_from(("audio", "sendrecv"), ("video", "sendrecv"))
    router = app.app[MEDIA_ROUTER]
    baseline = peer_connections()
    for what, sdp in [*garbage_from(offer), ("60,001 characters", offer + "x" * 60_001)]:
        await ws.send(type="call.join", group_id=people.group_id, sdp=sdp, client_id="j")
        error = await ws.next("error")
        assert error["client_id"] == "j"
        assert (error["status"], error["code"]) in {(400, "invalid_sdp"), (400, "invalid_frame")}
        assert router.peer_connections() == [], what
    response = await app.get(
        f"/api/v1/groups/{people.group_id}/call", headers=bearer(people.tokens["ben"])
    )
    assert (await response.json())["participants"] == []
    assert peer_connections() <= baseline
    # An SDP past the frame limit closes the socket (1009), and nothing is left.
    await ws.send(type="call.join", group_id=people.group_id, sdp=offer + "x" * 70_000)
    code, _ = await ws.closed()
    assert code == 1009
    assert router.peer_connections() == []


async def test_call_answer_refuses_garbage_and_a_good_answer_still_works(
    app: TestClient, people: People, closing: list[Any]
) -> None:
    ann = CallPeer(app, people.users["ann"], people.tokens["ann"])
    closing.append(ann)
    await ann.connect()
    assert (await ann.join(people.group_id, video=False))["type"] == "call.answer"

    # Ben joins by hand, so that he can answer the server's call.offer badly.
    ben_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    closing.append(ben_pc)
    ben_pc.addTransceiver("audio", direction="sendrecv")
    await ben_pc.setLocalDescription(await ben_pc.createOffer())
    ben = await WsClient.open(app, people.tokens["ben"])
    closing.append(ben)
    await ben.send(type="call.join", group_id=people.group_id, sdp=ben_pc.localDescription.sdp)
    answer = await ben.next("call.answer")
    await ben_pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    offer = await ben.next("call.offer")  # ann's video, for ben

    for what, sdp in [*garbage_from(offer["sdp"]), ("an offer, not an answer", offer["sdp"])]:
        await ben.send(type="call.answer", group_id=people.group_id, sdp=sdp, client_id="a")
        error = await ben.next("error")
        assert (error["status"], error["code"]) in {(400, "invalid_sdp"), (400, "invalid_frame")}, (
            what,
            error,
        )
    router = app.app[MEDIA_ROUTER]
    assert len(router.peer_connections()) == 2
    await ben_pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    await ben_pc.setLocalDescription(await ben_pc.createAnswer())
    await ben.send(type="call.answer", group_id=people.group_id, sdp=ben_pc.localDescription.sdp)
    await ben.silent(0.5, ignore=("call.participants", "presence", "call.offer"))
    await ben.close()
    await ann.wait_until(lambda: len(router.peer_connections()) == 1)


# -- fuzzing -----------------------------------------------------------------------------


def mutate(offer: str) -> st.SearchStrategy[str]:
    """Line-level damage to a good offer: lines dropped, repeated, cut,
    replaced or added, and the whole thing truncated."""
    lines = offer.split("\r\n")
    junk_line = st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=60
    )
    edit = st.tuples(
        st.sampled_from(["drop", "repeat", "cut", "replace", "insert", "value"]),
        st.integers(0, len(lines) - 1),
        junk_line,
    )

    def apply(edits: list[tuple[str, int, str]], end: int | None) -> str:
        out = list(lines)
        for action, where, junk in edits:
            where %= max(len(out), 1)
            if not out:
                break
            if action == "drop":
                del out[where]
            elif action == "repeat":
                out.insert(where, out[where])
            elif action == "cut":
                out[where] = out[where][: len(junk)]
            elif action == "replace":
                out[where] = junk
            elif action == "insert":
                out.insert(where, junk)
            else:  # keep the attribute, garble its value
                out[where] = out[where].split(":", 1)[0] + ":" + junk
        text = "\r\n".join(out)
        return loopback_only(text[:end] if end is not None else text)

    return st.builds(
        apply, st.lists(edit, min_size=1, max_size=6), st.none() | st.integers(0, len(offer))
    )


def fuzz_settings() -> Callable[[Any], Any]:
    return settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


OFFERS: dict[str, str] = {}


async def cached_offer(kind: str) -> str:
    if kind not in OFFERS:
        directions = {"whip": "sendonly", "join": "sendrecv"}
        OFFERS[kind] = await offer_from(("video", directions[kind]), ("audio", directions[kind]))
    return OFFERS[kind]


@fuzz_settings()
@given(data=st.data())
async def test_fuzzed_whip_offers_never_break_the_server(
    app: TestClient, people: People, data: st.DataObject
) -> None:
    sdp = data.draw(mutate(await cached_offer("whip")))
    key = {"Authorization": f"Bearer {people.stream_key}"}
    response = await app.post("/api/v1/live/whip", data=sdp.encode(), headers=SDP | key)
    assert response.status in (201, 400), await response.text()
    if response.status == 201:  # damage aiortc could live with: it must end cleanly
        stop = await app.delete(response.headers["Location"], headers=key)
        assert stop.status == 200
    rooms = await (await app.get("/api/v1/live", headers=bearer(people.tokens["ben"]))).json()
    assert rooms["items"] == []


@fuzz_settings()
@given(data=st.data())
async def test_fuzzed_call_offers_never_break_the_server(
    app: TestClient, people: People, data: st.DataObject
) -> None:
    sdp = data.draw(mutate(await cached_offer("join")))
    ws = await WsClient.open(app, people.tokens["ben"])
    try:
        await ws.send(type="call.join", group_id=people.group_id, sdp=sdp)
        reply = await ws.next("call.answer", "error", timeout=15)
        if reply["type"] == "error":
            assert (reply["status"], reply["code"]) in {
                (400, "invalid_sdp"),
                (400, "invalid_frame"),
            }
    finally:
        await ws.close()
    router = app.app[MEDIA_ROUTER]
    async with asyncio.timeout(10):  # the socket closed: the call is left
        while router.peer_connections():
            await asyncio.sleep(0.05)
