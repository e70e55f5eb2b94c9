"""The web client's cookie session, and its protection against CSRF."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import TEST_PASSWORD, register


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


async def sign_in(client: TestClient, username: str = "alice") -> None:
    response = await client.post(
        "/api/v1/auth/session",
        json={"login": username, "password": TEST_PASSWORD},
        headers=origin(client),
    )
    assert response.status == 200, await response.text()


async def test_browser_sign_in_sets_a_hardened_cookie(client: TestClient) -> None:
    await register(client, "alice")
    response = await client.post(
        "/api/v1/auth/session",
        json={"login": "alice", "password": TEST_PASSWORD},
        headers=origin(client),
    )
    assert response.status == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("gortc_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP unless configured behind TLS
    me = await client.get("/api/v1/users/me")
    assert (await me.json())["username"] == "alice"


async def test_cookie_content_is_encrypted(client: TestClient) -> None:
    user = await register(client, "alice")
    await sign_in(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["gortc_session"]
    assert user["id"] not in cookie.value
    assert "sid" not in cookie.value


async def test_cross_site_state_change_is_refused(client: TestClient) -> None:
    await register(client, "alice")
    await sign_in(client)
    for headers in ({}, {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}):
        response = await client.patch(
            "/api/v1/users/me", json={"display_name": "pwned"}, headers=headers
        )
        assert response.status == 403, headers
        assert (await response.json())["error"]["code"] == "cross_site_request"
    me = await (await client.get("/api/v1/users/me")).json()
    assert me["display_name"] == "alice"
    same_site = await client.patch(
        "/api/v1/users/me", json={"display_name": "Alice"}, headers=origin(client)
    )
    assert same_site.status == 200


async def test_login_form_on_another_site_cannot_sign_the_browser_in(client: TestClient) -> None:
    await register(client, "alice")
    response = await client.post(
        "/api/v1/auth/session",
        json={"login": "alice", "password": TEST_PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403
    assert "gortc_session" not in response.cookies


async def test_browser_sign_out_ends_the_session_server_side(client: TestClient) -> None:
    await register(client, "alice")
    await sign_in(client)
    stolen = client.session.cookie_jar.filter_cookies(client.make_url("/"))["gortc_session"]
    response = await client.delete("/api/v1/auth/session", headers=origin(client))
    assert response.status == 204
    assert (await client.get("/api/v1/users/me")).status == 401
    # A copy of the cookie taken before sign-out is worthless too.
    replay = await client.get("/api/v1/users/me", cookies={"gortc_session": stolen.value})
    assert replay.status == 401


async def test_trusted_origin_from_config_is_accepted(aiohttp_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gortc.app import create_app
    from tests.conftest import make_config

    config = make_config(tmp_path, server={"trusted_origins": ["https://chat.example.org"]})
    client = await aiohttp_client(create_app(config))
    await register(client, "alice")
    response = await client.post(
        "/api/v1/auth/session",
        json={"login": "alice", "password": TEST_PASSWORD},
        headers={"Origin": "https://chat.example.org"},
    )
    assert response.status == 200
