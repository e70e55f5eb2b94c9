"""The hub: who is connected, who hears which topic, and fan-out.

Topics: ``group:<id>`` (its members), ``user:<id>`` (one user's
connections). Every event goes through the backplane, so it reaches the
subscribers on this instance at once and those on other instances through
Redis when configured. Membership changes and session ends travel the same
way as control messages, so every instance updates its subscriptions.

Presence is coalesced: changes are gathered per group and reported at most
once per ``presence_interval`` seconds, one frame per group listing who came
online and who went offline (the last state of each user wins). When a
thousand members of a group connect at once, each member then receives a
frame or two instead of a thousand.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable

from gortc.entities.events import Event, PresenceChanged
from gortc.hub.backplane import Backplane
from gortc.hub.connection import CLOSE_SESSION_ENDED, Connection, WriteBatcher
from gortc.hub.frames import text_frame
from gortc.hub.ordering import SeqOrder
from gortc.hub.presence import LocalPresence, PresenceRegistry

log = logging.getLogger(__name__)

CONTROL_TOPIC = "control"
GROUP_PREFIX = "group:"
# Most users named in one presence frame: a crowd in a huge group is told in
# a few frames of bounded size (about 30 KB) rather than in one so large that
# a client with a frame size limit would refuse it.
PRESENCE_IDS_PER_FRAME = 1000


def group_topic(group_id: str) -> str:
    return f"{GROUP_PREFIX}{group_id}"


def user_topic(user_id: str) -> str:
    return f"user:{user_id}"


def live_room_topic(room_id: str) -> str:
    return f"live:{room_id}"


# Every connection listens here (events for everyone, e.g. streams going live).
EVERYONE_TOPIC = "everyone"


class Hub:
    """Implements the EventPublisher and PresenceQuery ports for the use cases."""

    def __init__(
        self,
        backplane: Backplane,
        encode: Callable[[Event], bytes],
        presence: PresenceRegistry | None = None,
        *,
        presence_interval: float = 0.5,
        seq_of: Callable[[bytes], int | None] | None = None,
    ) -> None:
        """``seq_of`` tells the seq of an encoded event that has one (a new
        message); given, a group's numbered events reach subscribers in seq
        order even when several instances publish them."""
        if presence_interval < 0:
            raise ValueError("presence_interval must not be negative")
        self._backplane = backplane
        self._presence = presence or LocalPresence()
        self._presence_interval = presence_interval
        # Group topic -> user id -> online: what the next flush reports.
        self._presence_changes: dict[str, dict[str, bool]] = {}
        # The one pending flush, scheduled by the first change after a flush.
        self._presence_flush: asyncio.TimerHandle | None = None
        self._closed = False
        self.evictions = 0  # connections closed for being too slow, since start
        self._encode = encode
        # Shared by every connection: one write per connection per loop turn.
        self.batcher = WriteBatcher()
        self._connections: dict[str, Connection] = {}
        self._by_user: dict[str, set[Connection]] = defaultdict(set)
        self._by_topic: dict[str, set[Connection]] = defaultdict(set)
        self._departures: set[asyncio.Future[None]] = set()
        self._group_left_listeners: list[Callable[[str, str], None]] = []
        self._seq_of = seq_of
        self._order = SeqOrder(self._fan_out)

    async def start(self) -> None:
        await self._backplane.start(self._deliver)

    async def close(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Closes every connection with a close frame, then the backplane."""
        for connection in list(self._connections.values()):
            connection.close(code, reason)
        for connection in list(self._connections.values()):
            await connection.stop()
        if self._departures:
            await asyncio.wait(self._departures, timeout=5.0)
        # The departures just counted reach the other instances before the
        # backplane goes; later changes would have nowhere to go.
        self.flush_presence()
        self._closed = True
        self._order.close()
        await self._backplane.close()
        await self._presence.close()

    @property
    def backplane(self) -> Backplane:
        return self._backplane

    # -- connections ------------------------------------------------------

    def register(self, connection: Connection) -> None:
        """Subscribes a new connection to its user's topic; groups follow
        with ``subscribe_group``, then ``announce`` tells them it is here."""
        self._connections[connection.id] = connection
        self._by_user[connection.user_id].add(connection)
        self._subscribe(connection, user_topic(connection.user_id))
        self._subscribe(connection, EVERYONE_TOPIC)

    async def announce(self, connection: Connection) -> None:
        """Tells the user's groups they came online (on their first connection)."""
        if await self._presence.connected(connection.user_id):
            self._note_presence(connection.user_id, connection.topics, online=True)

    async def unregister(self, connection: Connection, *, announced: bool) -> None:
        """Forgets a closed connection; tells the user's groups when it was
        their last one anywhere (if its arrival was ``announced``)."""
        if self._connections.pop(connection.id, None) is not None and connection.evicted:
            self.evictions += 1
        topics = list(connection.topics)
        for topic in topics:
            self._unsubscribe(connection, topic)
        mine = self._by_user.get(connection.user_id)
        if mine is not None:
            mine.discard(connection)
            if not mine:
                del self._by_user[connection.user_id]
        if announced:
            # aiohttp cancels a WebSocket handler when its client goes away,
            # often right here: the departure must be counted and announced
            # all the same, so it runs as its own task.
            departure = asyncio.ensure_future(self._depart(connection.user_id, topics))
            self._departures.add(departure)
            departure.add_done_callback(self._departures.discard)
            await asyncio.shield(departure)

    async def _depart(self, user_id: str, topics: list[str]) -> None:
        if await self._presence.disconnected(user_id):
            self._note_presence(user_id, topics, online=False)

    def subscribe_group(self, connection: Connection, group_id: str) -> None:
        self._subscribe(connection, group_topic(group_id))

    def online(self, user_id: str) -> bool:
        """Whether the user has a connection on this instance."""
        return user_id in self._by_user

    async def online_users(self, user_ids: Collection[str]) -> set[str]:
        """The PresenceQuery port: those connected anywhere now."""
        return await self._presence.online(user_ids)

    def connections(self) -> list[Connection]:
        return list(self._connections.values())

    def connection_count(self) -> int:
        return len(self._connections)

    # -- presence -----------------------------------------------------------

    def _note_presence(self, user_id: str, topics: Iterable[str], *, online: bool) -> None:
        """Records a change for the user's groups; the next flush reports it."""
        if self._closed:
            return
        for topic in topics:
            if topic.startswith(GROUP_PREFIX):
                changes = self._presence_changes.setdefault(topic, {})
                # Moved to the end so that a frame lists users in the order of
                # their last change.
                changes.pop(user_id, None)
                changes[user_id] = online
        if self._presence_changes and self._presence_flush is None:
            self._presence_flush = asyncio.get_running_loop().call_later(
                self._presence_interval, self.flush_presence
            )

    def flush_presence(self) -> None:
        """Reports the gathered changes now: per group, one frame (or one per
        PRESENCE_IDS_PER_FRAME users) through the backplane."""
        if self._presence_flush is not None:
            self._presence_flush.cancel()
            self._presence_flush = None
        changes, self._presence_changes = self._presence_changes, {}
        for topic, states in changes.items():
            group_id = topic.removeprefix(GROUP_PREFIX)
            users = list(states.items())
            for start in range(0, len(users), PRESENCE_IDS_PER_FRAME):
                chunk = users[start : start + PRESENCE_IDS_PER_FRAME]
                event = PresenceChanged(
                    group_id,
                    online=tuple(user for user, online in chunk if online),
                    offline=tuple(user for user, online in chunk if not online),
                )
                try:
                    self._backplane.publish(topic, self._encode(event))
                except Exception:  # one failing group must not silence the others
                    log.exception("publishing presence to %s failed", topic)

    def _subscribe(self, connection: Connection, topic: str) -> None:
        connection.topics.add(topic)
        self._by_topic[topic].add(connection)

    def _unsubscribe(self, connection: Connection, topic: str) -> None:
        connection.topics.discard(topic)
        subscribers = self._by_topic.get(topic)
        if subscribers is not None:
            subscribers.discard(connection)
            if not subscribers:
                del self._by_topic[topic]
                self._order.forget(topic)

    # -- the EventPublisher port ------------------------------------------

    def to_group(self, group_id: str, event: Event) -> None:
        self._backplane.publish(group_topic(group_id), self._encode(event))

    def to_user(self, user_id: str, event: Event) -> None:
        self._backplane.publish(user_topic(user_id), self._encode(event))

    def to_everyone(self, event: Event) -> None:
        self._backplane.publish(EVERYONE_TOPIC, self._encode(event))

    def to_live_room(self, room_id: str, event: Event) -> None:
        self._backplane.publish(live_room_topic(room_id), self._encode(event))

    def subscribe_topic(self, connection: Connection, topic: str) -> None:
        """A topic of the connection's own choosing (e.g. a live room's chat)."""
        self._subscribe(connection, topic)

    def unsubscribe_topic(self, connection: Connection, topic: str) -> None:
        self._unsubscribe(connection, topic)

    def join(self, user_id: str, group_id: str) -> None:
        self._control("join", user_id=user_id, group_id=group_id)

    def leave(self, user_id: str, group_id: str) -> None:
        self._control("leave", user_id=user_id, group_id=group_id)

    def end_session(self, session_id: str) -> None:
        self._control("end_session", session_id=session_id)

    def end_user(self, user_id: str) -> None:
        self._control("end_user", user_id=user_id)

    def on_group_left(self, listener: Callable[[str, str], None]) -> None:
        """Calls ``listener(user_id, group_id)`` on every instance when a user
        leaves a group or is removed from it (e.g. to end their call there)."""
        self._group_left_listeners.append(listener)

    def _control(self, op: str, **fields: str) -> None:
        self._backplane.publish(CONTROL_TOPIC, json.dumps({"op": op, **fields}).encode())

    # -- delivery (called by the backplane, for local and remote events) --

    def _deliver(self, topic: str, payload: bytes) -> None:
        if topic == CONTROL_TOPIC:
            self._apply_control(payload)
            return
        if not self._by_topic.get(topic):
            return
        if self._seq_of is not None and topic.startswith(GROUP_PREFIX):
            seq = self._seq_of(payload)
            if seq is not None:
                self._order.offer(topic, seq, payload)
                return
        self._fan_out(topic, payload)

    def _fan_out(self, topic: str, payload: bytes) -> None:
        subscribers = self._by_topic.get(topic)
        if not subscribers:
            return
        frame = text_frame(payload)
        for connection in subscribers:
            connection.send(frame)

    def _apply_control(self, payload: bytes) -> None:
        try:
            order = json.loads(payload)
            op = order["op"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed control message")
            return
        if op in ("join", "leave"):
            topic = group_topic(order["group_id"])
            connections = list(self._by_user.get(order["user_id"], ()))
            for connection in connections:
                if op == "join":
                    self._subscribe(connection, topic)
                else:
                    self._unsubscribe(connection, topic)
            if op == "leave":
                for listener in self._group_left_listeners:
                    listener(order["user_id"], order["group_id"])
            if op == "join" and connections:
                # The group was not in the user's topics when they came online:
                # its members learn it now. Every instance holding one of the
                # user's connections says so; repeats are harmless.
                self._note_presence(order["user_id"], (topic,), online=True)
        elif op == "end_session":
            for connection in list(self._connections.values()):
                if connection.session_id == order["session_id"]:
                    connection.close(CLOSE_SESSION_ENDED, "session ended")
        elif op == "end_user":
            for connection in list(self._by_user.get(order["user_id"], ())):
                connection.close(CLOSE_SESSION_ENDED, "session ended")
