"""GET /metrics as Prometheus sees it: the figures move with what users do,
loopback clients and token holders may read them, everyone else gets 404."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gortc.app import create_app
from gortc.delivery.keys import LIVE
from gortc.delivery.routing import Handler
from tests.conftest import bearer, login, make_config, register
from tests.e2e.call_peer import CallPeer
from tests.e2e.test_calls import all_in_a_call
from tests.e2e.ws_client import WsClient
from tests.media_tools import ffmpeg_publish

TOKEN = "a-long-random-scrape-token-0123456789"
# Test only: the client address the server sees, as a request from another
# machine would have it (the test client itself is always on loopback).
AS_FROM = "X-Test-Remote"


@web.middleware
async def pretend_remote(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Always a clone, as a trusted proxy's forwarded client makes one.
    remote = request.headers.get(AS_FROM) or request.remote or ""
    return await handler(request.clone(remote=remote))


async def gortc(aiohttp_client: Any, tmp_path: Path, **metrics: str) -> TestClient:
    app = create_app(make_config(tmp_path / "data", metrics=metrics))
    app.middlewares.insert(0, pretend_remote)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await gortc(aiohttp_client, tmp_path, token=TOKEN)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: TestClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template(client: TestClient) -> None:
    alice = bearer(await login(client, (await register(client, "alice"))["username"]))
    created = await client.post("/api/v1/groups", json={"name": "crew"}, headers=alice)
    group_id = (await created.json())["id"]
    route = "/api/v1/groups/{group_id}"
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"/api/v1/groups/{group_id}", headers=alice)).status == 200
    missing = await client.get("/api/v1/groups/no-such-group", headers=alice)
    assert missing.status == 404
    after = await scrape(client)

    ok = {"route": route, "method": "GET", "status": "200"}
    assert (
        value(after, "gortc_http_requests_total", **ok)
        - value(before, "gortc_http_requests_total", **ok)
        == 3
    )
    not_found = ok | {"status": "404"}
    assert value(after, "gortc_http_requests_total", **not_found) == 1
    # One series per template: no raw path (a group id) is ever a label.
    assert not any(group_id in str(labels) for _, labels in after)
    timed = value(after, "gortc_http_request_duration_seconds_count", route=route, method="GET")
    assert timed == 4
    assert value(after, "gortc_http_request_duration_seconds_sum", route=route, method="GET") > 0
    # Paths nobody routes share one series, whatever scanners try.
    await client.get("/wp-admin/setup.php")
    unmatched = await scrape(client)
    assert (
        value(unmatched, "gortc_http_requests_total", route="unmatched", method="GET", status="404")
        == 1
    )


async def test_messages_and_sockets_show(client: TestClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    created = await client.post("/api/v1/groups", json={"name": "crew"}, headers=bearer(tokens))
    group_id = (await created.json())["id"]
    before = await scrape(client)
    assert value(before, "gortc_websocket_connections") == 0
    assert value(before, "gortc_messages_stored_total") == 0

    socket = await WsClient.open(client, tokens)
    await socket.send(
        type="message.send", group_id=group_id, client_id="c1", body="over the socket"
    )
    await socket.next("message.ack")
    sent = await client.post(
        f"/api/v1/groups/{group_id}/messages", json={"body": "over REST"}, headers=bearer(tokens)
    )
    assert sent.status == 201
    # The same client_id again is a resend, not a new message.
    await socket.send(
        type="message.send", group_id=group_id, client_id="c1", body="over the socket"
    )
    await socket.next("message.ack")
    during = await scrape(client)
    assert value(during, "gortc_websocket_connections") == 1
    assert value(during, "gortc_websocket_queued_frames") == 0
    assert value(during, "gortc_websocket_evictions_total") == 0
    assert value(during, "gortc_messages_stored_total") == 2
    assert value(during, "gortc_message_commit_seconds_count") == 3
    assert value(during, "gortc_message_commit_seconds_sum") > 0

    await socket.ws.close()
    # The socket's request ends when the server has seen the close: counted then.
    upgrades = {"route": "/api/v1/ws", "method": "GET", "status": "101"}
    async with asyncio.timeout(5):
        while value(after := await scrape(client), "gortc_http_requests_total", **upgrades) < 1:
            await asyncio.sleep(0.05)
    assert value(after, "gortc_websocket_connections") == 0
    assert value(after, "gortc_http_requests_total", **upgrades) == 1
    # Not timed: its duration is the socket's lifetime, not a latency.
    assert (
        value(after, "gortc_http_request_duration_seconds_count", route="/api/v1/ws", method="GET")
        == 0
    )


async def test_process_calls_and_live_figures_are_there(client: TestClient) -> None:
    samples = await scrape(client)
    assert value(samples, "process_resident_memory_bytes") > 1_000_000
    assert value(samples, "process_open_fds") > 0
    assert ("process_cpu_seconds_total", frozenset()) in samples
    # The scrape itself runs in a task, so there is always at least one.
    assert value(samples, "gortc_asyncio_tasks") >= 1
    for name in (
        "gortc_sfu_participants",
        "gortc_sfu_frames_received_total",
        "gortc_sfu_frames_forwarded_total",
        "gortc_sfu_keyframe_requests_total",
        "gortc_live_streams",
        "gortc_live_viewers",
    ):
        assert (name, frozenset()) in samples, name


async def test_others_need_the_token(client: TestClient) -> None:
    away = {AS_FROM: "203.0.113.7"}
    refused = await client.get("/metrics", headers=away)
    assert refused.status == 404
    assert (await refused.json())["error"]["code"] == "not_found"
    wrong = await client.get("/metrics", headers=away | {"Authorization": "Bearer guess"})
    assert wrong.status == 404
    assert "gortc_" not in await wrong.text()
    samples = await scrape(client, **away, Authorization=f"Bearer {TOKEN}")
    assert ("process_open_fds", frozenset()) in samples


async def test_without_a_token_only_loopback_may_read(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await gortc(aiohttp_client, tmp_path)
    await scrape(client)
    await scrape(client, **{AS_FROM: "::1"})
    for remote in ("203.0.113.7", "10.0.0.2", "::ffff:192.0.2.1"):
        assert (await client.get("/metrics", headers={AS_FROM: remote})).status == 404
    # An empty token is no token.
    empty = await client.get("/metrics", headers={AS_FROM: "10.0.0.2", "Authorization": "Bearer "})
    assert empty.status == 404


async def test_two_servers_in_one_process_count_apart(aiohttp_client: Any, tmp_path: Path) -> None:
    one = await gortc(aiohttp_client, tmp_path / "one")
    two = await gortc(aiohttp_client, tmp_path / "two")
    for _ in range(5):
        await one.get("/healthz")
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert value(await scrape(one), "gortc_http_requests_total", **healthz) == 5
    assert value(await scrape(two), "gortc_http_requests_total", **healthz) == 0


async def test_a_call_shows_in_the_sfu_figures(aiohttp_client: Any, tmp_path: Path) -> None:
    config = make_config(
        tmp_path / "data", rtc={"host_addresses": ["127.0.0.1"]}, limits={"enabled": False}
    )
    client = await aiohttp_client(create_app(config))
    opened: list[CallPeer] = []
    try:
        _, peers = await all_in_a_call(client, opened, "ann", "ben")
        ann, ben = peers["ann"], peers["ben"]
        await ben.wait_until(lambda: ben.frames_from(ann.user_id, "video") >= 10, timeout=15)
        during = await scrape(client)
        assert value(during, "gortc_sfu_participants") == 2
        received = value(during, "gortc_sfu_frames_received_total")
        assert received >= 20  # both send audio and video
        assert value(during, "gortc_sfu_frames_forwarded_total") >= 20
        # Each subscriber's video starts at a keyframe asked for.
        assert value(during, "gortc_sfu_keyframe_requests_total") >= 2

        await ann.close()
        opened.remove(ann)
        await ben.wait_until(lambda: len(ben.participants() or []) == 1)
        after = await scrape(client)
        assert value(after, "gortc_sfu_participants") == 1
        # Totals count what has gone too: they never go down.
        assert value(after, "gortc_sfu_frames_received_total") >= received
    finally:
        for peer in opened:
            await peer.close()


async def test_a_live_stream_shows_while_on_the_air(client: TestClient) -> None:
    await register(client, "bob")
    tokens = await login(client, "bob")
    key = await (await client.get("/api/v1/live/key", headers=bearer(tokens))).json()
    live = client.app[LIVE]
    room = await live.start(key["stream_key"])
    assert value(await scrape(client), "gortc_live_streams") == 1
    await live.end(room.id)
    assert value(await scrape(client), "gortc_live_streams") == 0


async def test_searches_are_timed_by_what_was_searched(client: TestClient) -> None:
    await register(client, "bob")
    tokens = await login(client, "bob")
    for path in ("/api/v1/messages/search", "/api/v1/files/search", "/api/v1/users/search"):
        response = await client.get(path, params={"q": "report"}, headers=bearer(tokens))
        assert response.status == 200, await response.text()
    # A refused search is the client's mistake, not a search that took time.
    refused = await client.get(
        "/api/v1/messages/search", params={"q": "x", "sort": "sideways"}, headers=bearer(tokens)
    )
    assert refused.status == 400
    samples = await scrape(client)
    for kind in ("messages", "files", "people"):
        assert value(samples, "gortc_search_duration_seconds_count", kind=kind) == 1, kind
        assert value(samples, "gortc_search_duration_seconds_sum", kind=kind) > 0, kind


async def test_segment_lag_follows_a_stream_on_the_air(aiohttp_client: Any, tmp_path: Path) -> None:
    config = make_config(
        tmp_path / "data", live={"rtmp_port": 0, "segment_seconds": 1.0, "playlist_segments": 4}
    )
    client: TestClient = await aiohttp_client(create_app(config))
    assert value(await scrape(client), "gortc_live_segment_lag_seconds") == 0
    await register(client, "bob")
    tokens = await login(client, "bob")
    shown = await (await client.get("/api/v1/live/key", headers=bearer(tokens))).json()
    publisher = await ffmpeg_publish(shown["rtmp_url"], seconds=6)
    lags: list[float] = []
    try:
        # Sampled while the stream is on the air: each sample is the age of
        # a playlist that keeps being rewritten, so never much over a segment.
        for _ in range(40):
            await asyncio.sleep(0.1)
            if value(await scrape(client), "gortc_live_streams") == 1:
                break
        for _ in range(8):
            await asyncio.sleep(0.3)
            lags.append(value(await scrape(client), "gortc_live_segment_lag_seconds"))
    finally:
        await asyncio.wait_for(publisher.wait(), timeout=20)
    assert lags and all(0 <= lag < 4 for lag in lags), lags
    assert any(lag > 0 for lag in lags), lags
    for _ in range(50):
        if value(await scrape(client), "gortc_live_streams") == 0:
            break
        await asyncio.sleep(0.2)
    assert value(await scrape(client), "gortc_live_segment_lag_seconds") == 0
