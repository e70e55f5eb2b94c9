"""The register → login → me → refresh → logout flow of the API contract."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import TEST_PASSWORD, bearer, login, register


async def test_register_returns_the_user_without_secrets(client: TestClient) -> None:
    user = await register(client, "Alice")
    assert user["username"] == "alice"
    assert user["email"] == "Alice@example.com"  # the local part is kept as typed
    assert user["is_admin"] is True  # the first account administers the server
    assert user["email_verified"] is False
    assert not {"password", "password_hash"} & set(user)
    second = await register(client, "bob")
    assert second["is_admin"] is False


async def test_login_by_username_or_email_gives_a_bearer_pair(client: TestClient) -> None:
    await register(client, "alice")
    for name in ("alice", "ALICE", "alice@example.com", "Alice@Example.com"):
        tokens = await login(client, name)
        assert tokens["token_type"] == "Bearer"
        assert 0 < tokens["expires_in"] <= 900
        assert tokens["user"]["username"] == "alice"


async def test_me_answers_who_the_token_belongs_to(client: TestClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    response = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert response.status == 200
    assert (await response.json())["username"] == "alice"


async def test_refresh_rotates_and_the_old_refresh_token_stops(client: TestClient) -> None:
    await register(client, "alice")
    first = await login(client, "alice")
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert response.status == 200
    second = await response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/v1/users/me", headers=bearer(second))).status == 200

    # Presenting the rotated token again looks like theft: the family ends.
    reuse = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reuse.status == 401
    assert (await reuse.json())["error"]["code"] == "token_reused"
    after_reuse = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert after_reuse.status == 401
    for tokens in (first, second):
        me = await client.get("/api/v1/users/me", headers=bearer(tokens))
        assert me.status == 401


async def test_logout_stops_access_and_refresh_tokens_at_once(client: TestClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    other = await login(client, "alice")  # another device stays signed in
    response = await client.post("/api/v1/auth/logout", headers=bearer(tokens))
    assert response.status == 204
    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert me.status == 401
    assert me.headers["WWW-Authenticate"].startswith("Bearer")
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status == 401
    assert (await client.get("/api/v1/users/me", headers=bearer(other))).status == 200


async def test_wrong_password_and_unknown_user_answer_alike(client: TestClient) -> None:
    await register(client, "alice")
    wrong = await client.post(
        "/api/v1/auth/login", json={"login": "alice", "password": "not the password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"login": "nobody", "password": TEST_PASSWORD}
    )
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json()


async def test_forged_and_malformed_tokens_are_refused(client: TestClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    header, payload, signature = tokens["access_token"].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    for value in (f"Bearer {forged}", "Bearer nonsense", "Basic YWxpY2U6eA==", "Bearer"):
        response = await client.get("/api/v1/users/me", headers={"Authorization": value})
        assert response.status == 401, value
        assert (await response.json())["error"]["code"] in {"invalid_token", "unauthenticated"}


async def test_profile_update_and_password_change(client: TestClient) -> None:
    await register(client, "alice")
    tokens = await login(client, "alice")
    elsewhere = await login(client, "alice")
    response = await client.patch(
        "/api/v1/users/me", json={"display_name": "  Alice   Liddell "}, headers=bearer(tokens)
    )
    assert (await response.json())["display_name"] == "Alice Liddell"

    no_password = await client.patch(
        "/api/v1/users/me", json={"email": "new@example.com"}, headers=bearer(tokens)
    )
    assert no_password.status == 403
    changed = await client.patch(
        "/api/v1/users/me",
        json={"email": "new@example.com", "current_password": TEST_PASSWORD},
        headers=bearer(tokens),
    )
    assert changed.status == 200
    assert (await changed.json())["email"] == "new@example.com"

    response = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": "a new secret phrase"},
        headers=bearer(tokens),
    )
    assert response.status == 204
    # This device stays signed in; every other sign-in ends.
    assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status == 200
    assert (await client.get("/api/v1/users/me", headers=bearer(elsewhere))).status == 401
    await login(client, "new@example.com", "a new secret phrase")


async def test_other_users_see_a_public_profile_without_email(client: TestClient) -> None:
    alice = await register(client, "alice")
    await register(client, "bob")
    tokens = await login(client, "bob")
    response = await client.get(f"/api/v1/users/{alice['id']}", headers=bearer(tokens))
    profile = await response.json()
    assert profile["username"] == "alice"
    assert "email" not in profile
    missing = await client.get("/api/v1/users/01NOSUCHUSER0000000000000", headers=bearer(tokens))
    assert missing.status == 404
