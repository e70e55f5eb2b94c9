"""With Redis configured, a sign-out on one instance stops the token on every
instance at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as redis

from gortc.app import create_app
from tests.conftest import bearer, login, make_config, register
from tests.redis_server import free_port


async def test_logout_on_one_instance_is_seen_by_another(
    aiohttp_client: Any,
    tmp_path: Path,
    redis_url: str,
) -> None:
    # Two instances behind one load balancer: same data, same secret, same Redis.
    config = make_config(tmp_path / "data", redis={"url": redis_url}, auth={"secret": "s" * 64})
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    await register(first, "alice")
    tokens = await login(first, "alice")
    assert (await second.get("/api/v1/users/me", headers=bearer(tokens))).status == 200

    assert (await first.post("/api/v1/auth/logout", headers=bearer(tokens))).status == 204

    refused = await second.get("/api/v1/users/me", headers=bearer(tokens))
    assert refused.status == 401
    health = await (await second.get("/healthz")).json()
    assert health["checks"]["redis"] == "ok"


async def test_revocations_expire_with_the_token(
    aiohttp_client: Any,
    tmp_path: Path,
    redis_url: str,
) -> None:
    config = make_config(tmp_path / "data", redis={"url": redis_url})
    client = await aiohttp_client(create_app(config))
    await register(client, "alice")
    tokens = await login(client, "alice")
    await client.post("/api/v1/auth/logout", headers=bearer(tokens))
    connection = redis.Redis.from_url(redis_url)
    try:
        keys = await connection.keys("gortc:revoked:*")
        assert len(keys) == 1
        ttl = await connection.ttl(keys[0])
        # Kept exactly as long as the token could still be presented.
        assert 0 < ttl <= config.auth.access_token_ttl + 1
    finally:
        await connection.aclose()


async def test_redis_down_fails_closed_and_shows_in_health(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    config = make_config(tmp_path / "data", redis={"url": f"redis://127.0.0.1:{free_port()}/0"})
    client = await aiohttp_client(create_app(config))
    await register(client, "alice")
    tokens = await login(client, "alice")
    # The revoked list cannot be read: refuse rather than guess.
    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert me.status == 503
    assert (await me.json())["error"]["code"] == "unavailable"

    response = await client.get("/healthz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failing")
