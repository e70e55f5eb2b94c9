"""Group calls: who may join, who is in, and what everyone is told.

One call per group, hosted by one instance (the placement decides which);
the media router does the media. Every change of who is in a call, or of
their mutes, is told to the whole group (call.participants), so members
outside the call see it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from gortc.entities.calls import (
    CallParticipant,
    EndReason,
    HostedElsewhere,
    IceServer,
    MediaKind,
    TrackInfo,
    call_full,
    not_in_call,
)
from gortc.entities.errors import Conflict
from gortc.entities.events import CallChanged
from gortc.entities.rights import Action
from gortc.usecases.groups import require_member, require_right
from gortc.usecases.ports import (
    CallPlacement,
    CallSignals,
    EventPublisher,
    IceServerSource,
    MediaRouter,
    UnitOfWork,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallSettings:
    max_participants: int = 8


class _Participation:
    """One user's presence in one call, and the router's line back to it."""

    def __init__(
        self, service: CallService, group_id: str, user_id: str, signals: CallSignals
    ) -> None:
        self.service = service
        self.group_id = group_id
        self.user_id = user_id
        self.signals = signals
        self.state = CallParticipant(user_id)

    def offer(self, sdp: str, tracks: Sequence[TrackInfo]) -> None:
        self.signals.offer(self.group_id, sdp, tracks)

    def failed(self, reason: EndReason) -> None:
        self.service.drop_later(self, reason)


@dataclass
class _Call:
    group_id: str
    members: dict[str, _Participation] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def roster(self) -> tuple[CallParticipant, ...]:
        return tuple(p.state for p in self.members.values())


class CallService:
    def __init__(
        self,
        *,
        uow: UnitOfWork,
        router: MediaRouter,
        placement: CallPlacement,
        ice_servers: IceServerSource,
        events: EventPublisher,
        settings: CallSettings,
    ) -> None:
        self._uow = uow
        self._router = router
        self._placement = placement
        self._ice_servers = ice_servers
        self._events = events
        self._settings = settings
        self._calls: dict[str, _Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def ice_servers(self, user_id: str) -> list[IceServer]:
        return self._ice_servers.servers_for(user_id)

    async def join(self, user_id: str, group_id: str, sdp: str, signals: CallSignals) -> None:
        """Joins the group's call (starting it if there is none) with the
        client's offer; the answer and later offers go through ``signals``.
        A second join by the same user replaces the first. Raises NotFound
        for non-members, Forbidden without the right, HostedElsewhere when
        another instance hosts the call, Conflict (call_full), InvalidInput
        (invalid_sdp)."""
        async with self._uow.reading() as repos:
            group, member = await require_member(repos, group_id, user_id)
            require_right(group, member, Action.START_CALL)
        call = await self._call_for(group_id)
        async with call.lock:
            if self._calls.get(group_id) is not call:  # ended while we waited
                raise _retry()
            previous = call.members.get(user_id)
            if previous is None and len(call.members) >= self._settings.max_participants:
                await self._forget_if_empty(call)
                raise call_full(self._settings.max_participants)
            if previous is not None:
                await self._remove(call, previous, EndReason.JOINED_ELSEWHERE)
            participation = _Participation(self, group_id, user_id, signals)
            try:
                answer = await self._router.join(group_id, user_id, sdp, participation)
            except BaseException:
                if previous is not None:
                    await self._announce(call)
                await self._forget_if_empty(call)
                raise
            call.members[user_id] = participation
            signals.answer(group_id, answer, self.ice_servers(user_id))
            self._router.start(group_id, user_id)
            await self._announce(call)

    async def answer(self, user_id: str, group_id: str, sdp: str, signals: CallSignals) -> None:
        participation = self._participation(user_id, group_id, signals)
        await self._router.answer(group_id, participation.user_id, sdp)

    async def mute(
        self, user_id: str, group_id: str, kind: MediaKind, muted: bool, signals: CallSignals
    ) -> None:
        participation = self._participation(user_id, group_id, signals)
        call = self._calls[group_id]
        async with call.lock:
            if call.members.get(user_id) is not participation:
                raise not_in_call()
            self._router.set_muted(group_id, user_id, kind, muted)
            participation.state = participation.state.muting(kind, muted)
            await self._announce(call)

    async def leave(self, user_id: str, group_id: str, signals: CallSignals) -> None:
        participation = self._participation(user_id, group_id, signals)
        await self._drop(participation, EndReason.LEFT)

    async def connection_closed(self, signals: CallSignals) -> None:
        """The client's signaling channel is gone: it leaves every call it was in."""
        for call in list(self._calls.values()):
            for participation in list(call.members.values()):
                if participation.signals is signals:
                    await self._drop(participation, EndReason.CONNECTION_CLOSED)

    def member_left(self, user_id: str, group_id: str) -> None:
        """Someone left the group or was removed: they leave its call too."""
        call = self._calls.get(group_id)
        participation = call.members.get(user_id) if call else None
        if participation is not None:
            self.drop_later(participation, EndReason.REMOVED_FROM_GROUP)

    async def participants(self, user_id: str, group_id: str) -> tuple[CallParticipant, ...]:
        """Who is in the group's call, wherever it is hosted (empty: none)."""
        async with self._uow.reading() as repos:
            await require_member(repos, group_id, user_id)
        call = self._calls.get(group_id)
        if call is not None:
            return call.roster()
        return await self._placement.participants(group_id) or ()

    def drop_later(self, participation: _Participation, reason: EndReason) -> None:
        """For the router's callbacks, which cannot wait."""
        task = asyncio.create_task(self._drop(participation, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Ends every call hosted here (the server is stopping)."""
        if self._tasks:  # departures under way: short, and they tell the others
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for call in list(self._calls.values()):
            for participation in list(call.members.values()):
                await self._drop(participation, EndReason.SERVER_SHUTDOWN)
        await self._router.close()
        await self._placement.close()

    # -- inside ---------------------------------------------------------------

    def _participation(self, user_id: str, group_id: str, signals: CallSignals) -> _Participation:
        call = self._calls.get(group_id)
        participation = call.members.get(user_id) if call else None
        if participation is None or participation.signals is not signals:
            raise not_in_call()
        return participation

    async def _call_for(self, group_id: str) -> _Call:
        call = self._calls.get(group_id)
        if call is not None:
            return call
        elsewhere = await self._placement.claim(group_id)
        if elsewhere is not None:
            raise HostedElsewhere(elsewhere)
        # Another join may have created it while the placement answered.
        return self._calls.setdefault(group_id, _Call(group_id))

    async def _drop(self, participation: _Participation, reason: EndReason) -> None:
        call = self._calls.get(participation.group_id)
        if call is None:
            return
        async with call.lock:
            if call.members.get(participation.user_id) is not participation:
                return  # already gone, or replaced by a later join
            await self._remove(call, participation, reason)
            await self._announce(call)
            await self._forget_if_empty(call)

    async def _remove(self, call: _Call, participation: _Participation, reason: EndReason) -> None:
        del call.members[participation.user_id]
        await self._router.leave(call.group_id, participation.user_id)
        participation.signals.ended(call.group_id, reason)

    async def _announce(self, call: _Call) -> None:
        roster = call.roster()
        self._events.to_group(call.group_id, CallChanged(call.group_id, roster))
        try:
            await self._placement.publish(call.group_id, roster)
        except Exception:  # other instances' view may lag; the call goes on
            log.warning("could not publish the participants of %s", call.group_id, exc_info=True)

    async def _forget_if_empty(self, call: _Call) -> None:
        if call.members or self._calls.get(call.group_id) is not call:
            return
        del self._calls[call.group_id]
        try:
            await self._placement.release(call.group_id)
        except Exception:  # the pin expires by itself
            log.warning("could not release the call of %s", call.group_id, exc_info=True)


def _retry() -> Conflict:
    return Conflict("the call ended while you were joining: join again", code="call_ended")
