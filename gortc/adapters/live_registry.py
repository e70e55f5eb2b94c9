"""The live rooms of a single instance, in memory."""

from __future__ import annotations

import dataclasses

from gortc.entities.live import LiveRoom


class LocalLiveRegistry:
    def __init__(self) -> None:
        self._rooms: dict[str, LiveRoom] = {}

    async def add(self, room: LiveRoom) -> bool:
        if room.id in self._rooms:
            return False
        self._rooms[room.id] = room
        return True

    async def remove(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)

    async def get(self, room_id: str) -> LiveRoom | None:
        return self._rooms.get(room_id)

    async def rooms(self) -> list[LiveRoom]:
        return sorted(self._rooms.values(), key=lambda room: room.started_at)

    async def set_viewers(self, room_id: str, viewers: int) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            self._rooms[room_id] = dataclasses.replace(room, viewers=viewers)

    async def close(self) -> None:
        self._rooms.clear()
