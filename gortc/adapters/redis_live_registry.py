"""The live rooms of every instance, in Redis (seed 002's room cache).

Each room is a key with an expiry that its ingesting instance renews while
the stream lasts, so an instance that dies takes its rooms off the list
within ``ttl_seconds``; a set indexes them for listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gortc.entities.errors import Unavailable
from gortc.entities.live import LiveRoom
from gortc.entities.timestamps import from_text, to_text
from gortc.hub.redis_support import client_from_url

log = logging.getLogger(__name__)

_ROOM = "gortc:live:room:"
_INDEX = "gortc:live:rooms"


class RedisLiveRegistry:
    def __init__(self, url: str, *, ttl_seconds: float = 30.0) -> None:
        self._redis: Redis = client_from_url(url)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._renew_every = ttl_seconds / 3
        self._mine: dict[str, LiveRoom] = {}
        self._renewal: asyncio.Task[None] | None = None

    async def add(self, room: LiveRoom) -> bool:
        try:
            added = await self._redis.set(_ROOM + room.id, _encode(room), nx=True, px=self._ttl_ms)
            if added:
                await self._redis.sadd(_INDEX, room.id)
        except RedisError as exc:
            raise Unavailable("the live-room registry (Redis) is unreachable") from exc
        if not added:
            return False
        self._mine[room.id] = room
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.create_task(self._renew(), name="gortc-live-rooms")
        return True

    async def remove(self, room_id: str) -> None:
        if self._mine.pop(room_id, None) is None:
            return
        try:
            await self._redis.delete(_ROOM + room_id)
            await self._redis.srem(_INDEX, room_id)
        except RedisError as exc:  # the key expires by itself
            log.warning("could not remove live room %s: %s", room_id, exc)

    async def get(self, room_id: str) -> LiveRoom | None:
        try:
            raw = await self._redis.get(_ROOM + room_id)
        except RedisError:
            return self._mine.get(room_id)
        return _decode(raw) if raw else None

    async def rooms(self) -> list[LiveRoom]:
        try:
            ids = sorted(await self._redis.smembers(_INDEX))
            raws = await self._redis.mget([_ROOM + _text(i) for i in ids]) if ids else []
        except RedisError:
            return sorted(self._mine.values(), key=lambda room: room.started_at)
        rooms = []
        gone = []
        for room_id, raw in zip(ids, raws, strict=True):
            if raw is None:
                gone.append(room_id)  # its instance died: the key expired
            else:
                rooms.append(_decode(raw))
        if gone:
            with contextlib.suppress(RedisError):
                await self._redis.srem(_INDEX, *gone)
        return sorted(rooms, key=lambda room: room.started_at)

    async def set_viewers(self, room_id: str, viewers: int) -> None:
        room = self._mine.get(room_id)
        if room is None or room.viewers == viewers:
            return
        room = dataclasses.replace(room, viewers=viewers)
        self._mine[room_id] = room
        with contextlib.suppress(RedisError):
            await self._redis.set(_ROOM + room_id, _encode(room), xx=True, px=self._ttl_ms)

    async def close(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        for room_id in list(self._mine):
            await self.remove(room_id)
        await self._redis.aclose()

    async def _renew(self) -> None:
        while self._mine:
            await asyncio.sleep(self._renew_every)
            for room_id, room in list(self._mine.items()):
                try:
                    # Re-created if Redis lost it (restart): the stream goes on.
                    await self._redis.set(_ROOM + room_id, _encode(room), px=self._ttl_ms)
                    await self._redis.sadd(_INDEX, room_id)
                except RedisError as exc:
                    log.warning("could not renew live room %s: %s", room_id, exc)


def _fields(room: LiveRoom) -> dict[str, object]:
    return {
        "id": room.id,
        "user_id": room.user_id,
        "username": room.username,
        "title": room.title,
        "started_at": room.started_at,
        "viewers": room.viewers,
        "instance": room.instance,
    }


def _encode(room: LiveRoom) -> str:
    fields = _fields(room)
    assert isinstance(room.started_at, datetime)
    fields["started_at"] = to_text(room.started_at)
    return json.dumps(fields, separators=(",", ":"))


def _decode(raw: bytes | str) -> LiveRoom:
    fields = json.loads(raw)
    fields["started_at"] = from_text(fields["started_at"])
    return LiveRoom(**fields)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
