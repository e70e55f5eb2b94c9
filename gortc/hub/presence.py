"""Who is online: counted per user across all their connections (and, with
Redis, across every instance), so that a user is announced online on their
first connection anywhere and offline after their last."""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class PresenceRegistry(Protocol):
    async def connected(self, user_id: str) -> bool:
        """Counts a connection; True when it is the user's first anywhere."""
        ...

    async def disconnected(self, user_id: str) -> bool:
        """Uncounts a connection; True when it was the user's last anywhere."""
        ...

    async def close(self) -> None: ...


class LocalPresence:
    """One instance: the counts live here."""

    def __init__(self) -> None:
        self._connections: Counter[str] = Counter()

    async def connected(self, user_id: str) -> bool:
        self._connections[user_id] += 1
        return self._connections[user_id] == 1

    async def disconnected(self, user_id: str) -> bool:
        self._connections[user_id] -= 1
        if self._connections[user_id] <= 0:
            del self._connections[user_id]
            return True
        return False

    async def close(self) -> None:
        self._connections.clear()
