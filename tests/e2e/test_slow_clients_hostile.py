"""Slowloris against a real ``gortc serve`` (on uvloop, as deployed): clients
that dribble a request head, stall a body, or hold RTMP connections without
ever publishing are cut off after the configured timeouts, and everybody
else is served meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import TEST_PASSWORD
from tests.e2e.server_process import ServerProcess, start_server
from tests.media_tools import ffmpeg_publish

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
RTMP_SETUP = 2.0
SLACK = 2.0  # scheduling on a busy two-core machine
SLOW_CLIENTS = 50


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    running = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_LIMITS_ENABLED="false",
        GORTC_SERVER_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        GORTC_SERVER_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        GORTC_LIVE_RTMP_SETUP_SECONDS=str(RTMP_SETUP),
        # 2 x 5 + 10 = 20 RTMP connection slots: fewer than the slow clients.
        GORTC_LIVE_MAX_PUBLISHERS="5",
    )
    yield running
    await running.stop()
    problems = [line for line in running.log if "Traceback" in line or " ERROR " in line]
    assert problems == [], "".join(running.log)


def address(server: ServerProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sent until it closed; fails if it does not."""
    async with asyncio.timeout(within):
        return await reader.read()


async def dribble(host: str, port: int, payload: bytes, pause: float) -> float:
    """Sends ``payload`` a byte at a time until the server hangs up; how long
    the connection lived."""
    reader, writer = await asyncio.open_connection(host, port)
    opened = time.monotonic()
    try:
        for byte in payload:
            writer.write(bytes((byte,)))
            try:
                await writer.drain()
                await asyncio.wait_for(reader.read(1), pause)
                return time.monotonic() - opened  # closed (or, wrongly, answered)
            except TimeoutError:
                continue
            except ConnectionError:
                return time.monotonic() - opened
        raise AssertionError("the server waited for the whole dribble")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def signed_up(server: ServerProcess, http: aiohttp.ClientSession) -> dict[str, Any]:
    account = {"username": "alice", "email": "alice@example.com", "password": TEST_PASSWORD}
    async with http.post(f"{server.url}/api/v1/auth/register", json=account) as response:
        assert response.status == 201, await response.text()
    login = {"login": "alice", "password": TEST_PASSWORD}
    async with http.post(f"{server.url}/api/v1/auth/login", json=login) as response:
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]


async def test_dribbled_request_heads_are_cut_off_and_others_are_served(
    server: ServerProcess,
) -> None:
    host, port = address(server)
    # A request head that never ends: one more header byte every 0.2 s.
    endless = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
    slow = [asyncio.create_task(dribble(host, port, endless, 0.2)) for _ in range(SLOW_CLIENTS)]
    # And one that connects and never says a word.
    silent_reader, silent_writer = await asyncio.open_connection(host, port)
    silent_since = time.monotonic()
    await asyncio.sleep(0.5)
    async with aiohttp.ClientSession() as http:
        for _ in range(5):  # while all of them hold their connections
            async with asyncio.timeout(HEADER_TIMEOUT / 2):
                async with http.get(f"{server.url}/healthz") as response:
                    assert response.status == 200
            await asyncio.sleep(0.1)
        assert not any(task.done() for task in slow)
        await signed_up(server, http)
    lifetimes = await asyncio.gather(*slow)
    assert min(lifetimes) >= HEADER_TIMEOUT - 0.1
    assert max(lifetimes) <= HEADER_TIMEOUT + SLACK
    assert await closed_by_server(silent_reader, SLACK) == b""
    assert HEADER_TIMEOUT - 0.1 <= time.monotonic() - silent_since <= HEADER_TIMEOUT + SLACK
    silent_writer.close()


async def test_a_stalled_body_gets_408_and_a_slow_steady_one_is_served(
    server: ServerProcess,
) -> None:
    host, port = address(server)
    async with aiohttp.ClientSession() as http:
        tokens = await signed_up(server, http)

    # Announces 200 bytes and sends 10.
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        b'{"login": '
    )
    started = time.monotonic()
    answer = await closed_by_server(reader, BODY_TIMEOUT + SLACK)
    assert time.monotonic() - started >= BODY_TIMEOUT - 0.1
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(body)["error"]["code"] == "request_timeout"
    writer.close()

    # An upload whose part stops half-way: 408 too, and no file is kept.
    part = (
        b"--b\r\nContent-Disposition: form-data; name=file; filename=a.txt\r\n"
        b"Content-Type: text/plain\r\n\r\nhalf of it"
    )
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /api/v1/files HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {tokens['access_token']}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n"
        + part
    )
    answer = await closed_by_server(reader, BODY_TIMEOUT + SLACK)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    writer.close()
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        async with http.get(f"{server.url}/api/v1/files", headers=headers) as response:
            assert (await response.json())["items"] == []

    # A body that keeps coming, however slowly, is read to its end: one byte
    # every 0.05 s takes longer than the body timeout in all.
    body = json.dumps({"login": "alice", "password": TEST_PASSWORD}).encode()
    assert len(body) * 0.05 > BODY_TIMEOUT
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    for byte in body:
        writer.write(bytes((byte,)))
        await writer.drain()
        await asyncio.sleep(0.05)
    answer = await closed_by_server(reader, SLACK)
    head, _, reply = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert json.loads(reply)["user"]["username"] == "alice"
    writer.close()


# -- RTMP -----------------------------------------------------------------------------


async def rtmp_hog(host: str, port: int, mode: str) -> float:
    """One slow RTMP client: ``silent`` connects and sends nothing,
    ``dribble`` sends the handshake a byte every 0.05 s. How long the server
    kept it."""
    if mode == "dribble":
        handshake = b"\x03" + bytes(1536)  # C0 + C1: 77 s at this pace
        return await dribble(host, port, handshake, 0.05)
    reader, writer = await asyncio.open_connection(host, port)
    opened = time.monotonic()
    try:
        with contextlib.suppress(ConnectionError):
            await closed_by_server(reader, RTMP_SETUP + SLACK)
        return time.monotonic() - opened
    finally:
        writer.close()


async def test_rtmp_slowloris_is_cut_off_and_a_real_publisher_goes_live(
    server: ServerProcess,
) -> None:
    async with aiohttp.ClientSession() as http:
        tokens = await signed_up(server, http)
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        async with http.get(f"{server.url}/api/v1/live/key", headers=headers) as response:
            ingest = await response.json()
        rtmp_host, _, rest = ingest["rtmp_url"].removeprefix("rtmp://").partition(":")
        rtmp_port = int(rest.split("/")[0])

        def wave() -> list[asyncio.Task[float]]:
            return [
                asyncio.create_task(rtmp_hog(rtmp_host, rtmp_port, ("silent", "dribble")[i % 2]))
                for i in range(SLOW_CLIENTS)
            ]

        # More slow clients than connection slots, before and while ffmpeg
        # connects and publishes.
        hogs = wave()
        await asyncio.sleep(0.5)
        publisher = await ffmpeg_publish(ingest["rtmp_url"], seconds=4)
        await asyncio.sleep(1.0)
        hogs += wave()
        live: list[dict[str, Any]] = []
        for _ in range(30):
            async with http.get(f"{server.url}/api/v1/live", headers=headers) as response:
                live = (await response.json())["items"]
            if live:
                break
            await asyncio.sleep(0.2)
        assert [room["user_id"] for room in live] == [tokens["user"]["id"]]
        async with asyncio.timeout(20):
            _, errors = await publisher.communicate()
        assert publisher.returncode == 0, errors.decode()
        lifetimes = await asyncio.gather(*hogs)
    # Cut to make room for newcomers, or after the setup timeout: never later.
    assert max(lifetimes) <= RTMP_SETUP + SLACK
    assert any("cut to make room" in line for line in server.log)
