"""The real thing: ``python -m gortc serve`` in its own process, on a free port."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import TEST_PASSWORD
from tests.e2e.server_process import ServerProcess, start_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    running = await start_server(tmp_path / "data", GORTC_AUTH_BCRYPT_ROUNDS="4")
    yield running
    await running.stop()


async def test_contract_flow_against_the_real_server(server: ServerProcess) -> None:
    async with aiohttp.ClientSession(server.url) as http:
        health = await http.get("/healthz")
        assert (await health.json())["status"] == "ok"
        created = await http.post(
            "/api/v1/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": TEST_PASSWORD},
        )
        assert created.status == 201
        login = await http.post(
            "/api/v1/auth/login", json={"login": "alice", "password": TEST_PASSWORD}
        )
        first = await login.json()
        me = await http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {first['access_token']}"}
        )
        assert (await me.json())["username"] == "alice"

        rotated = await http.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        second = await rotated.json()
        assert rotated.status == 200
        stale = await http.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert stale.status == 401  # rotation: the old refresh token is spent

        fresh = await (
            await http.post(
                "/api/v1/auth/login", json={"login": "alice", "password": TEST_PASSWORD}
            )
        ).json()
        headers = {"Authorization": f"Bearer {fresh['access_token']}"}
        assert (await http.post("/api/v1/auth/logout", headers=headers)).status == 204
        assert (await http.get("/api/v1/users/me", headers=headers)).status == 401
        refresh_after_logout = await http.post(
            "/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}
        )
        assert refresh_after_logout.status == 401
        # The reuse above ended the first family, second's tokens included.
        second_headers = {"Authorization": f"Bearer {second['access_token']}"}
        assert (await http.get("/api/v1/users/me", headers=second_headers)).status == 401

    assert any("POST /api/v1/auth/login 200" in line for line in server.log)
    assert (server.data_dir / "gortc.db").exists()
    assert (server.data_dir / "secret.key").stat().st_mode & 0o077 == 0


async def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    # Real bcrypt cost, so the registration is still running at SIGTERM.
    server = await start_server(tmp_path / "data", GORTC_AUTH_BCRYPT_ROUNDS="13")
    async with aiohttp.ClientSession(server.url) as http:
        in_flight = asyncio.ensure_future(
            http.post(
                "/api/v1/auth/register",
                json={"username": "late", "email": "late@example.com", "password": TEST_PASSWORD},
            )
        )
        await asyncio.sleep(0.15)
        server.process.send_signal(signal.SIGTERM)
        response = await in_flight
        assert response.status == 201
    assert await server.stop() == 0
    assert any("shutting down" in line for line in server.log)
    conn = sqlite3.connect(server.data_dir / "gortc.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT username FROM users").fetchall() == [("late",)]
    finally:
        conn.close()


async def test_secret_survives_restarts_so_tokens_do(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = await start_server(data, GORTC_AUTH_BCRYPT_ROUNDS="4")
    async with aiohttp.ClientSession(server.url) as http:
        await http.post(
            "/api/v1/auth/register",
            json={"username": "alice", "email": "alice@example.com", "password": TEST_PASSWORD},
        )
        tokens = await (
            await http.post(
                "/api/v1/auth/login", json={"login": "alice", "password": TEST_PASSWORD}
            )
        ).json()
    await server.stop()
    restarted = await start_server(data, GORTC_AUTH_BCRYPT_ROUNDS="4")
    try:
        async with aiohttp.ClientSession(restarted.url) as http:
            me = await http.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            assert me.status == 200
    finally:
        await restarted.stop()
