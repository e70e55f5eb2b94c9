"""Call placement shared through Redis: the first instance to host a group's
call pins it (seed 003's gateway: room → instance), and every other instance
sends that group's joiners there.

A pin is a key with an expiry the host renews; an instance that dies stops
renewing, and its calls can start elsewhere once the pin runs out. When
Redis cannot be reached, calls are hosted where they are joined: a call
split across instances is better than no call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gortc.entities.calls import CallParticipant
from gortc.hub.redis_support import client_from_url

log = logging.getLogger(__name__)

_PREFIX = "gortc:call:"
# Each touches a pin (KEYS[1]) and its roster (KEYS[2]) only while the pin
# is this instance's (ARGV[1]). Renewing also re-creates a pin that is gone
# (Redis was down or restarted while the call went on here).
_RENEW = (
    "local pin = redis.call('GET', KEYS[1]) "
    "if pin == ARGV[1] then redis.call('PEXPIRE', KEYS[2], ARGV[2]) "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "if not pin then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
    "return 0"
)
_PUBLISH = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2]) end return 0"
)
_RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1], KEYS[2]) end return 0"
)


class RedisCallPlacement:
    def __init__(self, url: str, *, instance_id: str, ws_url: str, pin_seconds: float) -> None:
        self._redis: Redis = client_from_url(url)
        self._pin = json.dumps({"instance": instance_id, "ws_url": ws_url})
        self._pin_ms = int(pin_seconds * 1000)
        self._renew_every = pin_seconds / 3
        self._hosted: set[str] = set()
        self._renewal: asyncio.Task[None] | None = None

    async def claim(self, group_id: str) -> str | None:
        key = _PREFIX + group_id
        try:
            current = None
            for _ in range(3):  # a pin may expire between the two commands
                if await self._redis.set(key, self._pin, nx=True, px=self._pin_ms):
                    self._hosting(group_id)
                    return None
                current = await self._redis.get(key)
                if current is not None:
                    break
        except RedisError as exc:
            log.warning("call placement unavailable (%s): hosting %s here", exc, group_id)
            self._hosting(group_id)
            return None
        if current is None or _text(current) == self._pin:
            # Ours from before (or Redis keeps dropping it): host it.
            self._hosting(group_id)
            return None
        try:
            return str(json.loads(current)["ws_url"])
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable call pin for %s: hosting it here", group_id)
            self._hosting(group_id)
            return None

    async def release(self, group_id: str) -> None:
        self._hosted.discard(group_id)
        key = _PREFIX + group_id
        await self._redis.eval(_RELEASE, 2, key, key + ":participants", self._pin)

    async def publish(self, group_id: str, participants: Sequence[CallParticipant]) -> None:
        body = json.dumps(
            [[p.user_id, p.audio_muted, p.video_muted, p.screen_sharing] for p in participants],
            separators=(",", ":"),
        )
        key = _PREFIX + group_id
        await self._redis.eval(
            _PUBLISH, 2, key, key + ":participants", self._pin, self._pin_ms, body
        )

    async def participants(self, group_id: str) -> tuple[CallParticipant, ...] | None:
        try:
            raw = await self._redis.get(_PREFIX + group_id + ":participants")
        except RedisError:
            return None
        if raw is None:
            return None
        # An instance of the version before screen sharing writes three fields.
        return tuple(
            CallParticipant(str(u), bool(a), bool(v), bool(rest and rest[0]))
            for u, a, v, *rest in json.loads(raw)
        )

    async def close(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        for group_id in list(self._hosted):
            with contextlib.suppress(RedisError):
                await self.release(group_id)
        await self._redis.aclose()

    def _hosting(self, group_id: str) -> None:
        self._hosted.add(group_id)
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.create_task(self._renew(), name="gortc-call-pins")

    async def _renew(self) -> None:
        while self._hosted:
            await asyncio.sleep(self._renew_every)
            for group_id in list(self._hosted):
                key = _PREFIX + group_id
                try:
                    await self._redis.eval(
                        _RENEW, 2, key, key + ":participants", self._pin, self._pin_ms
                    )
                except RedisError as exc:
                    log.warning("could not renew the pin of call %s: %s", group_id, exc)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
