"""coturn set up as docs/deploy.md says (deploy/coturn/turnserver.conf,
``use-auth-secret``) relays for the TURN credentials gortc hands a signed-in
user, and refuses credentials that gortc did not make.

Real processes: Debian's coturn on loopback (the shipped configuration with
only its addresses, port, secret and certificates swapped for the test's),
a gortc app, and aioice's TURN client (the one gortc's own SFU uses) asking
for a relay exactly as a browser behind a strict firewall would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioice.stun
import aioice.turn
import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import bearer, login, make_config, register

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "coturn" / "turnserver.conf"
SECRET = "the same secret in coturn and in rtc.turn_secret, 64 hex digits"


def require_turnserver() -> str:
    found = shutil.which("turnserver")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs coturn for the TURN test (apt-get install coturn)")
        pytest.skip("coturn is not installed (apt-get install coturn)")
    return found


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def loopback_configuration(folder: Path, port: int) -> Path:
    """The shipped file with what only a real deployment has (certificates,
    public addresses, syslog) replaced by loopback equivalents."""
    kept = []
    for line in SHIPPED.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key in ("listening-port", "tls-listening-port", "cert", "pkey", "log-file"):
            continue
        if key == "static-auth-secret":
            line = f"static-auth-secret={SECRET}"
        kept.append(line)
    kept += [
        f"listening-port={port}",
        "listening-ip=127.0.0.1",
        "relay-ip=127.0.0.1",
        "no-tls",
        "no-dtls",
        "no-tcp",
        f"log-file={folder / 'turn.log'}",
        f"pidfile={folder / 'turn.pid'}",
        f"userdb={folder / 'turn.db'}",
    ]
    conf = folder / "turnserver.conf"
    conf.write_text("\n".join(kept) + "\n")
    return conf


@contextlib.contextmanager
def coturn(folder: Path) -> Iterator[int]:
    binary = require_turnserver()
    port = free_udp_port()
    conf = loopback_configuration(folder, port)
    with (folder / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [binary, "-c", str(conf), "--no-stdout-log"], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def allocate(port: int, username: str, password: str) -> tuple[str, int]:
    """A relay address from coturn, as a WebRTC client asks for one."""
    transport, _ = await aioice.turn.create_turn_endpoint(
        asyncio.DatagramProtocol, ("127.0.0.1", port), username, password, lifetime=60
    )
    try:
        relayed: tuple[str, int] = transport.get_extra_info("sockname")
        return relayed
    finally:
        transport.close()


async def allocate_when_up(port: int, username: str, password: str) -> tuple[str, int]:
    """coturn takes a moment to listen: retry (bounded) until it answers."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return await asyncio.wait_for(allocate(port, username, password), 3)
        except (TimeoutError, ConnectionRefusedError, OSError):
            if time.monotonic() > deadline:
                raise


@pytest.fixture
async def turn_port(tmp_path: Path) -> AsyncIterator[int]:
    with coturn(tmp_path) as port:
        yield port


async def ice_servers(aiohttp_client: Any, tmp_path: Path, port: int) -> list[dict[str, Any]]:
    config = make_config(
        tmp_path / "data",
        rtc={
            "turn_urls": [f"turn:127.0.0.1:{port}?transport=udp"],
            "turn_secret": SECRET,
            "turn_credential_seconds": 600,
        },
    )
    client: TestClient = await aiohttp_client(create_app(config))
    await register(client, "ann")
    tokens = await login(client, "ann")
    response = await client.get("/api/v1/calls/ice-servers", headers=bearer(tokens))
    assert response.status == 200
    servers: list[dict[str, Any]] = (await response.json())["ice_servers"]
    return servers


async def test_coturn_relays_for_credentials_gortc_made(
    aiohttp_client: Any, tmp_path: Path, turn_port: int
) -> None:
    (turn,) = await ice_servers(aiohttp_client, tmp_path, turn_port)
    relayed = await allocate_when_up(turn_port, turn["username"], turn["credential"])
    assert relayed[0] == "127.0.0.1" and relayed[1] >= 61000  # the shipped relay range


async def test_coturn_refuses_credentials_gortc_did_not_make(
    aiohttp_client: Any, tmp_path: Path, turn_port: int
) -> None:
    (turn,) = await ice_servers(aiohttp_client, tmp_path, turn_port)
    # Proves coturn is up and checking, so the refusals below are its verdict.
    await allocate_when_up(turn_port, turn["username"], turn["credential"])
    expiry, user_id = turn["username"].split(":")
    # Another user's name with this password, or a longer life: both refused.
    for username in (f"{expiry}:someone-else", f"{int(expiry) + 86400}:{user_id}"):
        with pytest.raises(aioice.stun.TransactionFailed) as refused:
            await allocate(turn_port, username, turn["credential"])
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401
    # A credential past its expiry: refused although correctly signed.
    past = f"{int(time.time()) - 60}:{user_id}"
    password = base64.b64encode(hmac.new(SECRET.encode(), past.encode(), hashlib.sha1).digest())
    with pytest.raises(aioice.stun.TransactionFailed) as expired:
        await allocate(turn_port, past, password.decode())
    assert expired.value.response.attributes["ERROR-CODE"][0] == 401
