"""Puts a group's new messages back in seq order when several instances
publish them.

One instance publishes a group's messages in commit order, so its own
subscribers hear them in seq order. With several instances each publishes
after its own commit: seq 5, committed on instance A just after seq 4 on
instance B, can reach a third instance first. Members would then see 5
before 4 (the web client mends it with a sync, other clients may not). So
each instance holds a message that arrives ahead of a missing seq for a
moment, and lets it go as soon as the missing one comes, or when the moment
is over (an instance that died between its commit and its publish must not
stall the group: its message is then found by catching up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

# Deliver(topic, payload) to this instance's subscribers.
Deliver = Callable[[str, bytes], None]


@dataclass(slots=True)
class _Topic:
    next_seq: int
    held: dict[int, bytes] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class SeqOrder:
    """Delivers each topic's numbered payloads in seq order, holding those
    that come early for at most ``hold_seconds``."""

    def __init__(self, deliver: Deliver, *, hold_seconds: float = 0.25) -> None:
        self._deliver = deliver
        self._hold = hold_seconds
        self._topics: dict[str, _Topic] = {}
        self.released_late = 0  # held payloads let go by the timer, since start

    def offer(self, topic: str, seq: int, payload: bytes) -> None:
        state = self._topics.get(topic)
        if state is None:
            # The first one heard here: nothing to compare it with.
            self._topics[topic] = _Topic(next_seq=seq + 1)
            self._deliver(topic, payload)
            return
        if seq < state.next_seq:
            # Late (its moment passed) or already heard: as it comes.
            self._deliver(topic, payload)
            return
        if seq > state.next_seq:
            state.held[seq] = payload
            if state.timer is None:
                state.timer = asyncio.get_running_loop().call_later(
                    self._hold, self._give_up_waiting, topic
                )
            return
        self._deliver(topic, payload)
        state.next_seq = seq + 1
        self._release_following(topic, state)

    def forget(self, topic: str) -> None:
        """Nobody here hears the topic any more: drop what is held for it."""
        state = self._topics.pop(topic, None)
        if state is not None and state.timer is not None:
            state.timer.cancel()

    def close(self) -> None:
        for topic in list(self._topics):
            self.forget(topic)

    def _release_following(self, topic: str, state: _Topic) -> None:
        while (payload := state.held.pop(state.next_seq, None)) is not None:
            self._deliver(topic, payload)
            state.next_seq += 1
        if not state.held and state.timer is not None:
            state.timer.cancel()
            state.timer = None

    def _give_up_waiting(self, topic: str) -> None:
        state = self._topics.get(topic)
        if state is None:
            return
        state.timer = None
        # The missing seq is not coming soon: let the held ones go in order;
        # whoever misses the gap fills it with a sync.
        for seq in sorted(state.held):
            self._deliver(topic, state.held.pop(seq))
            self.released_late += 1
            state.next_seq = seq + 1
