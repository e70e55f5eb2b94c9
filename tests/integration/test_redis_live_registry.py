"""Live rooms shared by instances through one real redis-server (seed 002's
room cache): every instance lists every stream, one room per streamer, and
the rooms of an instance that dies drop off by themselves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gortc.adapters.redis_live_registry import RedisLiveRegistry
from gortc.entities.live import LiveRoom
from tests.redis_server import RedisServer

TTL_SECONDS = 1.0


def room(user_id: str, minutes_ago: int = 0, instance: str = "http://a:8080") -> LiveRoom:
    return LiveRoom(
        id=user_id,
        user_id=user_id,
        username=f"user-{user_id}",
        title=f"{user_id}'s stream",
        started_at=datetime(2026, 11, 21, 12, tzinfo=UTC) - timedelta(minutes=minutes_ago),
        instance=instance,
    )


async def test_every_instance_lists_every_stream_once(redis_server: RedisServer) -> None:
    a = RedisLiveRegistry(redis_server.url, ttl_seconds=TTL_SECONDS)
    b = RedisLiveRegistry(redis_server.url, ttl_seconds=TTL_SECONDS)
    try:
        assert await a.add(room("bob", minutes_ago=5))
        assert await b.add(room("cid", instance="http://b:8080"))
        assert not await b.add(room("bob", instance="http://b:8080"))  # one publisher per key
        for registry in (a, b):
            listed = await registry.rooms()
            assert [(r.id, r.instance) for r in listed] == [
                ("bob", "http://a:8080"),
                ("cid", "http://b:8080"),
            ]  # oldest first
        await a.set_viewers("bob", 7)
        seen = await b.get("bob")
        assert seen is not None and seen.viewers == 7
        # Each instance ends only its own streams.
        await b.remove("bob")
        assert [r.id for r in await a.rooms()] == ["bob", "cid"]
        await a.remove("bob")
        assert [r.id for r in await b.rooms()] == ["cid"]
    finally:
        await a.close()
        await b.close()


async def test_a_dead_instance_s_rooms_drop_off(redis_server: RedisServer) -> None:
    a = RedisLiveRegistry(redis_server.url, ttl_seconds=TTL_SECONDS)
    b = RedisLiveRegistry(redis_server.url, ttl_seconds=TTL_SECONDS)
    try:
        assert await a.add(room("bob"))
        await asyncio.sleep(TTL_SECONDS * 1.5)
        assert [r.id for r in await b.rooms()] == ["bob"]  # renewed while a lives
        renewal = next(t for t in asyncio.all_tasks() if t.get_name() == "gortc-live-rooms")
        renewal.cancel()  # a dies: nothing renews, nothing is removed
        async with asyncio.timeout(10):
            while await b.rooms():
                await asyncio.sleep(0.1)
        assert await b.add(room("bob", instance="http://b:8080"))  # bob may stream again
    finally:
        await a.close()
        await b.close()
