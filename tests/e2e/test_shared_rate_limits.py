"""Rate limits across instances that share Redis: a client whose attempts a
load balancer spreads over two instances is refused at the same count,
with the same answer, as one instance alone would refuse it; and when
Redis is down, signing in still works, limited per instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import ClientFactory, make_config, register
from tests.redis_server import RedisServer

PER_IP = 4


async def instances(
    aiohttp_client: ClientFactory, tmp_path: Path, count: int, redis_url: str = ""
) -> list[TestClient]:
    config = make_config(
        tmp_path / "data",
        redis={"url": redis_url},
        auth={"secret": "a shared secret of at least thirty-two characters"},
        limits={"login_per_ip_per_minute": PER_IP},
    )
    return [await aiohttp_client(create_app(config)) for _ in range(count)]


async def failed_logins(clients: list[TestClient], attempts: int) -> list[tuple[int, Any]]:
    """Wrong passwords from one address, taking turns over the instances."""
    answers = []
    for attempt in range(attempts):
        response = await clients[attempt % len(clients)].post(
            "/api/v1/auth/login", json={"login": "alice", "password": "wrong password"}
        )
        body = await response.json()
        answers.append((response.status, body["error"], response.headers.get("Retry-After")))
    return answers


async def test_two_instances_refuse_at_the_same_total_as_one(
    aiohttp_client: ClientFactory, tmp_path: Path, redis_server: RedisServer
) -> None:
    [alone] = await instances(aiohttp_client, tmp_path / "one", 1)
    await register(alone, "alice")
    one = await failed_logins([alone], PER_IP + 2)

    pair = await instances(aiohttp_client, tmp_path / "two", 2, redis_server.url)
    await register(pair[0], "alice")
    two = await failed_logins(pair, PER_IP + 2)

    statuses = [status for status, _, _ in two]
    assert statuses == [401] * PER_IP + [429, 429]
    assert statuses == [status for status, _, _ in one]
    refused = two[PER_IP]
    assert refused[1] == {
        "code": "rate_limited",
        "message": "too many attempts; try again later",
    }
    assert refused[1] == one[PER_IP][1]
    # One token comes back every 60 / PER_IP seconds.
    assert refused[2] is not None and 1 <= int(refused[2]) <= 60 // PER_IP


async def test_with_redis_down_sign_in_works_and_is_limited_per_instance(
    aiohttp_client: ClientFactory, tmp_path: Path, redis_server: RedisServer
) -> None:
    pair = await instances(aiohttp_client, tmp_path, 2, redis_server.url)
    await register(pair[0], "alice")
    redis_server.stop()
    # Each instance has its own full bucket now: neither a lock-out nor a
    # free-for-all.
    for client in pair:
        answers = await failed_logins([client], PER_IP + 1)
        assert [status for status, _, _ in answers] == [401] * PER_IP + [429]
