"""Behind a reverse proxy (server.trusted_proxies): the login rate limit,
the access log and the sessions list see the real client, and a forged
X-Forwarded-For from anyone else changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.config import ConfigError, load_config
from tests.conftest import ClientFactory, make_config, register

WRONG = {"password": "wrong password"}


async def _app(aiohttp_client: ClientFactory, tmp_path: Path, **server: Any) -> TestClient:
    config = make_config(tmp_path / "data", server=server, limits={"login_per_ip_per_minute": 2})
    return await aiohttp_client(create_app(config))


async def _failed_logins(client: TestClient, forwarded_for: str, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        response = await client.post(
            "/api/v1/auth/login",
            json={"login": "nobody", **WRONG},
            headers={"X-Forwarded-For": forwarded_for},
        )
        statuses.append(response.status)
    return statuses


async def test_clients_behind_a_trusted_proxy_get_their_own_login_bucket(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await _app(aiohttp_client, tmp_path, trusted_proxies=["127.0.0.1"])
    assert await _failed_logins(client, "203.0.113.1", 3) == [401, 401, 429]
    # Another client through the same proxy is not held up by the first.
    assert await _failed_logins(client, "203.0.113.2", 2) == [401, 401]


async def test_without_the_setting_everyone_shares_the_proxys_bucket(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await _app(aiohttp_client, tmp_path)
    assert await _failed_logins(client, "203.0.113.1", 2) == [401, 401]
    assert await _failed_logins(client, "203.0.113.2", 1) == [429]


async def test_an_untrusted_peers_forged_header_is_ignored(
    aiohttp_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await _app(aiohttp_client, tmp_path, trusted_proxies=["10.0.0.0/8"])
    # Every request forges a new address: all the same, one bucket.
    statuses = [(await _failed_logins(client, f"203.0.113.{n}", 1))[0] for n in range(3)]
    assert statuses == [401, 401, 429]
    with caplog.at_level(logging.INFO, logger="gortc.access"):
        await client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    assert "client=127.0.0.1" in caplog.records[-1].getMessage()


async def test_the_access_log_and_the_sessions_list_name_the_forwarded_client(
    aiohttp_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await _app(aiohttp_client, tmp_path, trusted_proxies=["127.0.0.1"])
    await register(client, "alice")
    forwarded = {"X-Forwarded-For": "198.51.100.4, 127.0.0.1", "X-Forwarded-Proto": "https"}
    with caplog.at_level(logging.INFO, logger="gortc.access"):
        response = await client.post(
            "/api/v1/auth/login",
            json={"login": "alice", "password": "correct horse battery"},
            headers=forwarded,
        )
    assert response.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "gortc.access"]
    assert lines[-1].endswith("client=198.51.100.4")
    tokens = await response.json()
    sessions = await client.get(
        "/api/v1/sessions", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert [s["ip"] for s in (await sessions.json())["items"]] == ["198.51.100.4"]
    # The WebSocket upgrade goes through the same (cloned) request.
    socket = await client.ws_connect(
        "/api/v1/ws",
        headers={"Authorization": f"Bearer {tokens['access_token']}", **forwarded},
    )
    ready = await socket.receive_json(timeout=5)
    assert ready["type"] == "ready"
    await socket.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "garbage, \u00e9\u00e9, 999.999.1.1"},
        {"X-Forwarded-For": ""},
        {"X-Forwarded-For": "[::1"},
        {"X-Forwarded-Proto": "gopher"},
        {"X-Forwarded-Proto": ""},
    ],
)
async def test_malformed_forwarded_headers_are_not_a_server_error(
    aiohttp_client: ClientFactory, tmp_path: Path, headers: dict[str, str]
) -> None:
    client = await _app(aiohttp_client, tmp_path, trusted_proxies=["127.0.0.1"])
    response = await client.get("/healthz", headers=headers)
    assert response.status == 200
    login = await client.post(
        "/api/v1/auth/login", json={"login": "nobody", **WRONG}, headers=headers
    )
    assert login.status == 401


def test_the_setting_comes_from_the_environment_and_is_checked() -> None:
    config = load_config(None, {"GORTC_SERVER_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"})
    assert config.server.trusted_proxies == ["127.0.0.1", "10.0.0.0/8", "::1"]
    with pytest.raises(ConfigError, match="not an IP address or CIDR"):
        load_config(None, {"GORTC_SERVER_TRUSTED_PROXIES": "proxy.example"})


async def test_a_browser_behind_a_tls_proxy_passes_the_origin_check(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    # nginx ends TLS and says so: the page's origin is https://<host>, and
    # the cookie sign-in accepts it only when the proxy is trusted.
    for trusted, expected in ((["127.0.0.1"], 200), ([], 403)):
        client = await _app(aiohttp_client, tmp_path / str(expected), trusted_proxies=trusted)
        await register(client, "alice")
        host = client.make_url("").host
        port = client.make_url("").port
        response = await client.post(
            "/api/v1/auth/session",
            json={"login": "alice", "password": "correct horse battery"},
            headers={
                "Origin": f"https://{host}:{port}",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-For": "198.51.100.4",
            },
        )
        assert response.status == expected, await response.text()


async def test_the_session_cookie_is_secure_when_a_trusted_proxy_forwards_https(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    # server.secure_cookies stays false: naming the TLS proxy is enough. A
    # peer that is not trusted cannot turn it on (nor does it matter: its
    # claim of https is not believed for anything).
    for trusted, secure in ((["127.0.0.1"], True), (["10.0.0.0/8"], False)):
        client = await _app(aiohttp_client, tmp_path / str(secure), trusted_proxies=trusted)
        await register(client, "alice")
        host = client.make_url("").host
        port = client.make_url("").port
        scheme = "https" if secure else "http"
        response = await client.post(
            "/api/v1/auth/session",
            json={"login": "alice", "password": "correct horse battery"},
            headers={"Origin": f"{scheme}://{host}:{port}", "X-Forwarded-Proto": "https"},
        )
        assert response.status == 200, await response.text()
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("gortc_session=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure, cookie
