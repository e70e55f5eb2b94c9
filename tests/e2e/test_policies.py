"""Operator policies: who may sign up, how fast people may try passwords."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.delivery.keys import ADMIN
from tests.conftest import TEST_PASSWORD, bearer, login, make_config, register


async def test_closed_sign_up_refuses_everyone(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(make_config(tmp_path, auth={"signup": "closed"})))
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": "alice", "email": "a@example.com", "password": TEST_PASSWORD},
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "signup_closed"


async def test_invite_sign_up_needs_an_admin_made_single_use_code(
    aiohttp_client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(
        create_app(make_config(tmp_path, auth={"signup": "invite"}))
    )
    # The operator invites the first account from the console.
    first = await client.app[ADMIN].create_invite(None, "first admin")
    await register(client, "admin", invite_code=first.code)
    no_code = await client.post(
        "/api/v1/auth/register",
        json={"username": "bob", "email": "bob@example.com", "password": TEST_PASSWORD},
    )
    assert (await no_code.json())["error"]["code"] == "invite_required"

    admin = await login(client, "admin")
    created = await client.post(
        "/api/v1/admin/invites", json={"note": "for Bob"}, headers=bearer(admin)
    )
    assert created.status == 201
    code = (await created.json())["code"]
    await register(client, "bob", invite_code=code)
    again = await client.post(
        "/api/v1/auth/register",
        json={
            "username": "carol",
            "email": "carol@example.com",
            "password": TEST_PASSWORD,
            "invite_code": code,
        },
    )
    assert again.status == 403
    assert (await again.json())["error"]["code"] == "invalid_invite"

    listed = await (await client.get("/api/v1/admin/invites", headers=bearer(admin))).json()
    assert listed["items"][0]["note"] == "for Bob"
    assert listed["items"][0]["used_by"] is not None
    assert "code" not in listed["items"][0]

    bob = await login(client, "bob")
    refused = await client.post("/api/v1/admin/invites", json={}, headers=bearer(bob))
    assert refused.status == 403


async def test_login_attempts_are_limited_per_account(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = make_config(tmp_path, limits={"login_per_account_per_minute": 3})
    client = await aiohttp_client(create_app(config))
    await register(client, "alice")
    statuses = []
    for _ in range(4):
        response = await client.post(
            "/api/v1/auth/login", json={"login": "alice", "password": "wrong password"}
        )
        statuses.append(response.status)
    assert statuses == [401, 401, 401, 429]
    assert int(response.headers["Retry-After"]) >= 1
    assert (await response.json())["error"]["code"] == "rate_limited"
    # Even the right password waits: that is what stops guessing.
    right = await client.post(
        "/api/v1/auth/login", json={"login": "alice", "password": TEST_PASSWORD}
    )
    assert right.status == 429


async def test_login_attempts_are_limited_per_address(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = make_config(tmp_path, limits={"login_per_ip_per_minute": 2})
    client = await aiohttp_client(create_app(config))
    statuses = []
    for name in ("a1", "a2", "a3"):
        response = await client.post(
            "/api/v1/auth/login", json={"login": name, "password": "whatever1"}
        )
        statuses.append(response.status)
    assert statuses == [401, 401, 429]


async def test_limits_can_be_switched_off(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = make_config(tmp_path, limits={"enabled": False, "login_per_account_per_minute": 1})
    client = await aiohttp_client(create_app(config))
    await register(client, "alice")
    for _ in range(3):
        await login(client, "alice")
