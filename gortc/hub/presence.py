"""Who is online: counted per user across all their connections (and, with
Redis, across every instance), so that a user is announced online on their
first connection anywhere and offline after their last."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Protocol


class PresenceRegistry(Protocol):
    async def connected(self, user_id: str) -> bool:
        """Counts a connection; True when it is the user's first anywhere."""
        ...

    async def disconnected(self, user_id: str) -> bool:
        """Uncounts a connection; True when it was the user's last anywhere."""
        ...

    async def online(self, user_ids: Collection[str]) -> set[str]:
        """Those of ``user_ids`` with a connection anywhere now. Never raises:
        when the shared counts cannot be read, this instance's answer."""
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

    async def online(self, user_ids: Collection[str]) -> set[str]:
        # A count reaching zero is deleted, so membership means online.
        return {user_id for user_id in user_ids if user_id in self._connections}

    async def close(self) -> None:
        self._connections.clear()
