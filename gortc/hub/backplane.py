"""How events reach the clients connected to other gortc instances.

The hub encodes each event once and hands the bytes to the backplane with
the topic it belongs to. The backplane delivers them to this instance's
subscribers at once (``deliver`` is called synchronously, so local delivery
never waits on anything) and, where there are other instances, to theirs.

Topics are strings: ``group:<id>`` for a group's members, ``user:<id>`` for
one user's connections, ``presence`` for presence changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# Called with (topic, encoded event) for every event, local or remote.
Deliver = Callable[[str, bytes], None]


class Backplane(Protocol):
    async def start(self, deliver: Deliver) -> None:
        """Begins delivering; ``deliver`` receives local and remote events."""
        ...

    def publish(self, topic: str, payload: bytes) -> None:
        """Delivers locally now and forwards to other instances without
        waiting (never awaits the network; a backlog is bounded and dropped
        with a log line when the other side is unreachable)."""
        ...

    def status(self) -> str:
        """'ok', or a short sentence saying what is wrong (for /healthz)."""
        ...

    @property
    def healthy(self) -> bool: ...

    async def close(self) -> None: ...


class LocalBackplane:
    """One instance: every event goes straight to this process's hub."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def publish(self, topic: str, payload: bytes) -> None:
        if self._deliver is not None:
            self._deliver(topic, payload)

    def status(self) -> str:
        return "ok"

    @property
    def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        self._deliver = None
