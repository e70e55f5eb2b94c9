"""My sessions: the caller lists where they are signed in and signs one
device out; that device's tokens, cookie and socket stop at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from gortc.app import create_app
from tests.conftest import TEST_PASSWORD, ClientFactory, bearer, make_config, register
from tests.e2e.ws_client import WsClient


async def _login(client: TestClient, name: str, agent: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/login",
        json={"login": name, "password": TEST_PASSWORD},
        headers={"User-Agent": agent},
    )
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def _sessions(client: TestClient, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/sessions", headers=bearer(tokens))
    assert response.status == 200
    return (await response.json())["items"]  # type: ignore[no-any-return]


async def test_two_sign_ins_are_listed_and_one_signs_the_other_out(client: TestClient) -> None:
    await register(client, "alice")
    laptop = await _login(client, "alice", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
    phone = await _login(client, "alice", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604")
    socket = await WsClient.open(client, phone)

    listed = await _sessions(client, laptop)
    assert len(listed) == 2
    by_agent = {item["user_agent"]: item for item in listed}
    mine = by_agent["Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"]
    other = by_agent["Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604"]
    assert mine["current"] is True and other["current"] is False
    assert other["ip"] == "127.0.0.1"
    assert other["kind"] == "token"
    assert [item["current"] for item in await _sessions(client, phone)].count(True) == 1

    gone = await client.delete(f"/api/v1/sessions/{other['id']}", headers=bearer(laptop))
    assert gone.status == 204
    # The phone is out at once: its access token, its refresh token, its socket.
    assert (await client.get("/api/v1/users/me", headers=bearer(phone))).status == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]}
    )
    assert refreshed.status == 401
    code, _ = await socket.closed()
    assert code is not None
    # The laptop keeps working, and now sees only itself.
    assert (await client.get("/api/v1/users/me", headers=bearer(laptop))).status == 200
    assert [item["id"] for item in await _sessions(client, laptop)] == [mine["id"]]
    # Ending it again: it is no longer one of hers.
    again = await client.delete(f"/api/v1/sessions/{other['id']}", headers=bearer(laptop))
    assert again.status == 404


async def test_someone_elses_or_an_unknown_session_is_404(client: TestClient) -> None:
    await register(client, "alice")
    await register(client, "bob")
    alice = await _login(client, "alice", "a")
    bob = await _login(client, "bob", "b")
    bobs = (await _sessions(client, bob))[0]["id"]
    for session_id in (bobs, "no-such-session", "x" * 300):
        response = await client.delete(f"/api/v1/sessions/{session_id}", headers=bearer(alice))
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "session_not_found"
    # Bob is still signed in, and Alice's list never shows his sign-in.
    assert (await client.get("/api/v1/users/me", headers=bearer(bob))).status == 200
    assert bobs not in [item["id"] for item in await _sessions(client, alice)]
    assert (await client.get("/api/v1/sessions")).status == 401
    assert (await client.delete(f"/api/v1/sessions/{bobs}")).status == 401


async def test_a_renewed_sign_in_shows_when_it_was_last_used(client: TestClient) -> None:
    await register(client, "alice")
    tokens = await _login(client, "alice", "cli")
    assert (await _sessions(client, tokens))[0]["last_used_at"] is None
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    renewed = await response.json()
    item = (await _sessions(client, renewed))[0]
    assert item["last_used_at"] is not None and item["last_used_at"] >= item["created_at"]


async def test_signing_out_a_browser_from_another_instance_with_redis(
    aiohttp_client: ClientFactory, tmp_path: Path, redis_url: str
) -> None:
    # Two instances sharing data, secret and Redis: a browser signed in on
    # one, signed out from an API client on the other.
    config = make_config(tmp_path / "data", redis={"url": redis_url}, auth={"secret": "s" * 64})
    api = await aiohttp_client(create_app(config))
    browser = await aiohttp_client(
        TestServer(create_app(config)), cookie_jar=CookieJar(unsafe=True)
    )
    await register(api, "alice")
    origin = {"Origin": str(browser.make_url("")).rstrip("/"), "User-Agent": "Chromium"}
    signed_in = await browser.post(
        "/api/v1/auth/session", json={"login": "alice", "password": TEST_PASSWORD}, headers=origin
    )
    assert signed_in.status == 200
    assert (await browser.get("/api/v1/users/me")).status == 200
    tokens = await _login(api, "alice", "cli")
    cookie_session = next(s for s in await _sessions(api, tokens) if s["kind"] == "cookie")
    assert cookie_session["user_agent"] == "Chromium"
    assert cookie_session["current"] is False

    gone = await api.delete(f"/api/v1/sessions/{cookie_session['id']}", headers=bearer(tokens))
    assert gone.status == 204
    assert (await browser.get("/api/v1/users/me")).status == 401
    assert (await api.get("/api/v1/users/me", headers=bearer(tokens))).status == 200
