"""The in-process memory of used WebSocket tickets (one instance): a ticket
is let in once, and the memory does not grow without end."""

from __future__ import annotations

import time

from gortc.adapters.used_tickets import MemoryUsedTickets


async def test_a_ticket_is_let_in_once() -> None:
    used = MemoryUsedTickets()
    later = int(time.time()) + 60
    assert await used.first_use("a", later)
    assert not await used.first_use("a", later)
    assert await used.first_use("b", later)


async def test_expired_tickets_are_forgotten_once_many_are_kept() -> None:
    used = MemoryUsedTickets()
    past, later = int(time.time()) - 1, int(time.time()) + 60
    for index in range(2000):
        assert await used.first_use(f"old{index}", past)
    assert await used.first_use("fresh", later)
    # The sweep kept what has not expired, and nothing else.
    assert not await used.first_use("fresh", later)
    assert len(used._until) < 1100
