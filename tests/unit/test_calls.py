"""CallService driven through hand-written fakes of its ports: who may join,
what each client is told and in which order, and what the rest of the group
hears about it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from gortc.entities.calls import (
    CallParticipant,
    EndReason,
    HostedElsewhere,
    IceServer,
    MediaKind,
    TrackInfo,
    invalid_sdp,
)
from gortc.entities.errors import Conflict, InvalidInput, NotFound
from gortc.entities.events import CallChanged, Event
from gortc.entities.groups import Group, GroupKind, Member, Role
from gortc.usecases.calls import CallService, CallSettings
from gortc.usecases.ports import MediaSessionEvents
from tests.unit.fakes import START, FakeUnitOfWork

GROUP = "g-standup"
OTHER_GROUP = "g-design"
ANSWER_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=gortc answer\r\n"
OFFER_SDP = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=client offer\r\n"
ELSEWHERE = "wss://b.chat.example.org/api/v1/ws"

Journal = list[tuple[Any, ...]]


class FakeSignals:
    """One client's signaling channel; what it is told also goes, in order,
    into the journal shared with the router."""

    def __init__(self, journal: Journal, name: str) -> None:
        self._journal = journal
        self.name = name
        self.answers: list[tuple[str, str, list[IceServer]]] = []
        self.offers: list[tuple[str, str, list[TrackInfo]]] = []
        self.endings: list[tuple[str, EndReason]] = []

    def answer(self, group_id: str, sdp: str, ice_servers: Sequence[IceServer]) -> None:
        self.answers.append((group_id, sdp, list(ice_servers)))
        self._journal.append(("signals.answer", self.name, group_id))

    def offer(self, group_id: str, sdp: str, tracks: Sequence[TrackInfo]) -> None:
        self.offers.append((group_id, sdp, list(tracks)))
        self._journal.append(("signals.offer", self.name, group_id))

    def ended(self, group_id: str, reason: EndReason) -> None:
        self.endings.append((group_id, reason))
        self._journal.append(("signals.ended", self.name, group_id, reason))


class FakeRouter:
    """Records every call; answers every offer with ANSWER_SDP unless told
    to refuse the next one; keeps each session's events to fire them later."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.sessions: dict[tuple[str, str], MediaSessionEvents] = {}
        self.refuse_next = False
        self.closed = False

    def calls(self, name: str) -> list[tuple[Any, ...]]:
        return [entry[1:] for entry in self._journal if entry[0] == name]

    @property
    def touched(self) -> bool:
        return any(entry[0].startswith("router.") for entry in self._journal)

    async def join(
        self, room_id: str, participant_id: str, offer_sdp: str, events: MediaSessionEvents
    ) -> str:
        self._journal.append(("router.join", room_id, participant_id, offer_sdp))
        await asyncio.sleep(0)  # a real router awaits ICE gathering here
        if self.refuse_next:
            self.refuse_next = False
            raise invalid_sdp("it has no media section")
        self.sessions[(room_id, participant_id)] = events
        return ANSWER_SDP

    def start(self, room_id: str, participant_id: str) -> None:
        self._journal.append(("router.start", room_id, participant_id))

    async def answer(self, room_id: str, participant_id: str, sdp: str) -> None:
        self._journal.append(("router.answer", room_id, participant_id, sdp))

    def set_muted(self, room_id: str, participant_id: str, kind: MediaKind, muted: bool) -> None:
        self._journal.append(("router.set_muted", room_id, participant_id, kind, muted))

    async def leave(self, room_id: str, participant_id: str) -> None:
        self._journal.append(("router.leave", room_id, participant_id))
        self.sessions.pop((room_id, participant_id), None)

    async def close(self) -> None:
        self.closed = True

    # What the SFU does on its own, later.
    def fail(self, room_id: str, participant_id: str) -> None:
        self.sessions[(room_id, participant_id)].failed(EndReason.CONNECTION_FAILED)

    def offer(self, room_id: str, participant_id: str, sdp: str, tracks: list[TrackInfo]) -> None:
        self.sessions[(room_id, participant_id)].offer(sdp, tracks)


class FakePlacement:
    """Hosts every call here except those another instance is said to host."""

    def __init__(self) -> None:
        self.elsewhere: dict[str, str] = {}  # group -> ws_url of the host
        self.remote: dict[str, tuple[CallParticipant, ...]] = {}  # published by that host
        self.claimed: list[str] = []
        self.released: list[str] = []
        self.published: dict[str, tuple[CallParticipant, ...]] = {}
        self.closed = False

    async def claim(self, group_id: str) -> str | None:
        if group_id in self.elsewhere:
            return self.elsewhere[group_id]
        self.claimed.append(group_id)
        return None

    async def release(self, group_id: str) -> None:
        self.released.append(group_id)

    async def publish(self, group_id: str, participants: Sequence[CallParticipant]) -> None:
        self.published[group_id] = tuple(participants)

    async def participants(self, group_id: str) -> tuple[CallParticipant, ...] | None:
        return self.remote.get(group_id)

    async def close(self) -> None:
        self.closed = True


class FakeIceServers:
    """A STUN server for all, and TURN credentials made for each user."""

    def servers_for(self, user_id: str) -> list[IceServer]:
        return [
            IceServer(("stun:stun.example.org:3478",)),
            IceServer(("turn:turn.example.org:3478",), f"9999:{user_id}", f"pw-{user_id}"),
        ]


class FakeEvents:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Event]] = []  # ("group" | "user", id, event)

    def to_group(self, group_id: str, event: Event) -> None:
        self.sent.append(("group", group_id, event))

    def to_user(self, user_id: str, event: Event) -> None:
        self.sent.append(("user", user_id, event))

    def rosters(self, group_id: str) -> list[list[str]]:
        """The user ids of every call.participants sent to the group, in order."""
        return [
            [p.user_id for p in event.participants]
            for target, to, event in self.sent
            if target == "group" and to == group_id and isinstance(event, CallChanged)
        ]


@dataclass
class Calls:
    service: CallService
    router: FakeRouter
    placement: FakePlacement
    events: FakeEvents
    uow: FakeUnitOfWork
    journal: Journal = field(default_factory=list)

    def signals(self, name: str) -> FakeSignals:
        return FakeSignals(self.journal, name)

    async def roster(self, group_id: str = GROUP, asker: str = "ann") -> list[str]:
        return [p.user_id for p in await self.service.participants(asker, group_id)]


def make_calls(max_participants: int = 8) -> Calls:
    journal: Journal = []
    uow = FakeUnitOfWork()
    router = FakeRouter(journal)
    placement = FakePlacement()
    events = FakeEvents()
    service = CallService(
        uow=uow,  # type: ignore[arg-type]
        router=router,
        placement=placement,
        ice_servers=FakeIceServers(),
        events=events,
        settings=CallSettings(max_participants=max_participants),
    )
    for group_id in (GROUP, OTHER_GROUP):
        uow.tables.groups[group_id] = Group(group_id, "team", GroupKind.GROUP, "ann", START)
        for user_id in ("ann", "ben", "cat"):
            role = Role.OWNER if user_id == "ann" else Role.MEMBER
            uow.tables.members[(group_id, user_id)] = Member(group_id, user_id, role, START)
    return Calls(service, router, placement, events, uow, journal)


@pytest.fixture
def calls() -> Calls:
    return make_calls()


async def until(condition: Callable[[], bool]) -> None:
    """Lets the loop run the service's background work (bounded)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never became true")


# -- joining ------------------------------------------------------------------


async def test_a_member_joining_gets_the_answer_before_media_starts(calls: Calls) -> None:
    ann = calls.signals("ann")

    await calls.service.join("ann", GROUP, OFFER_SDP, ann)

    assert calls.router.calls("router.join") == [(GROUP, "ann", OFFER_SDP)]
    assert ann.answers == [(GROUP, ANSWER_SDP, FakeIceServers().servers_for("ann"))]
    # The client must hold the answer before the router starts offering it
    # the others' tracks.
    assert [entry[:2] for entry in calls.journal] == [
        ("router.join", GROUP),
        ("signals.answer", "ann"),
        ("router.start", GROUP),
    ]
    assert calls.events.sent == [("group", GROUP, CallChanged(GROUP, (CallParticipant("ann"),)))]
    assert calls.placement.claimed == [GROUP]
    assert calls.placement.published == {GROUP: (CallParticipant("ann"),)}
    assert await calls.roster(asker="cat") == ["ann"]


async def test_everyone_in_the_group_hears_of_each_joiner(calls: Calls) -> None:
    await calls.service.join("ann", GROUP, OFFER_SDP, calls.signals("ann"))
    await calls.service.join("ben", GROUP, OFFER_SDP, calls.signals("ben"))

    assert calls.events.rosters(GROUP) == [["ann"], ["ann", "ben"]]
    assert calls.placement.claimed == [GROUP]  # claimed once, by the first
    assert await calls.roster() == ["ann", "ben"]


@pytest.mark.parametrize(("user_id", "group_id"), [("dan", GROUP), ("ann", "g-unknown")])
async def test_outsiders_are_told_there_is_no_such_group(
    calls: Calls, user_id: str, group_id: str
) -> None:
    with pytest.raises(NotFound) as raised:
        await calls.service.join(user_id, group_id, OFFER_SDP, calls.signals(user_id))

    assert raised.value.code == "group_not_found"
    assert not calls.router.touched
    assert calls.placement.claimed == []
    assert calls.events.sent == []
    with pytest.raises(NotFound):
        await calls.service.participants(user_id, group_id)


async def test_a_full_call_turns_the_next_joiner_away_and_changes_nothing() -> None:
    calls = make_calls(max_participants=2)
    ann, ben = calls.signals("ann"), calls.signals("ben")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    await calls.service.join("ben", GROUP, OFFER_SDP, ben)
    journal_before, events_before = list(calls.journal), list(calls.events.sent)

    cat = calls.signals("cat")
    with pytest.raises(Conflict) as raised:
        await calls.service.join("cat", GROUP, OFFER_SDP, cat)

    assert raised.value.code == "call_full"
    assert "2" in raised.value.message
    assert calls.journal == journal_before  # the router never saw cat
    assert calls.events.sent == events_before
    assert cat.answers == [] and cat.endings == []
    assert await calls.roster() == ["ann", "ben"]
    assert calls.placement.released == []
    # Someone already in may still join again (it replaces, it does not add).
    await calls.service.join("ben", GROUP, OFFER_SDP, calls.signals("ben, second tab"))
    assert await calls.roster() == ["ann", "ben"]


async def test_joining_again_replaces_the_earlier_participation(calls: Calls) -> None:
    first, second = calls.signals("ann, laptop"), calls.signals("ann, phone")
    await calls.service.join("ann", GROUP, OFFER_SDP, first)
    await calls.service.join("ben", GROUP, OFFER_SDP, calls.signals("ben"))
    calls.journal.clear()

    await calls.service.join("ann", GROUP, "second offer", second)

    assert first.endings == [(GROUP, EndReason.JOINED_ELSEWHERE)]
    assert second.answers[0][:2] == (GROUP, ANSWER_SDP)
    assert second.endings == []
    # The old media session is closed before the new one is made.
    assert [entry[0] for entry in calls.journal if entry[0].startswith("router.")] == [
        "router.leave",
        "router.join",
        "router.start",
    ]
    assert calls.router.calls("router.join") == [(GROUP, "ann", "second offer")]
    assert await calls.roster() == ["ben", "ann"]
    # The earlier tab is out: what it sends now is refused.
    with pytest.raises(Conflict) as raised:
        await calls.service.leave("ann", GROUP, first)
    assert raised.value.code == "not_in_call"
    assert await calls.roster() == ["ben", "ann"]


async def test_an_unusable_first_offer_leaves_no_call_behind(calls: Calls) -> None:
    calls.router.refuse_next = True
    ann = calls.signals("ann")

    with pytest.raises(InvalidInput) as raised:
        await calls.service.join("ann", GROUP, "not an sdp", ann)

    assert raised.value.code == "invalid_sdp"
    assert ann.answers == [] and ann.endings == []
    assert not any(entry[0] == "router.start" for entry in calls.journal)
    assert await calls.roster() == []
    assert calls.placement.released == [GROUP]  # another instance may host it now
    assert calls.events.sent == []  # nobody was told of a call that never was
    # The next (good) offer starts the call afresh.
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    assert await calls.roster() == ["ann"]
    assert calls.placement.claimed == [GROUP, GROUP]


async def test_an_unusable_offer_to_a_running_call_keeps_the_others_in(calls: Calls) -> None:
    await calls.service.join("ann", GROUP, OFFER_SDP, calls.signals("ann"))
    calls.router.refuse_next = True

    with pytest.raises(InvalidInput):
        await calls.service.join("ben", GROUP, "not an sdp", calls.signals("ben"))

    assert await calls.roster() == ["ann"]
    assert calls.placement.released == []
    assert calls.events.rosters(GROUP) == [["ann"]]


async def test_a_call_hosted_elsewhere_sends_the_joiner_there(calls: Calls) -> None:
    calls.placement.elsewhere[GROUP] = ELSEWHERE
    calls.placement.remote[GROUP] = (CallParticipant("cat", audio_muted=True),)

    with pytest.raises(HostedElsewhere) as raised:
        await calls.service.join("ann", GROUP, OFFER_SDP, calls.signals("ann"))

    assert raised.value.ws_url == ELSEWHERE
    assert raised.value.code == "call_elsewhere"
    assert raised.value.details == {"ws_url": ELSEWHERE}
    assert not calls.router.touched
    assert calls.events.sent == []
    # Who is in it comes from the host's published roster.
    assert await calls.service.participants("ann", GROUP) == (
        CallParticipant("cat", audio_muted=True),
    )


async def test_with_no_call_anywhere_nobody_is_in_it(calls: Calls) -> None:
    assert await calls.service.participants("ann", GROUP) == ()


async def test_joiners_get_their_own_ice_servers(calls: Calls) -> None:
    ben = calls.signals("ben")
    await calls.service.join("ben", GROUP, OFFER_SDP, ben)

    (_, _, servers) = ben.answers[0]
    assert servers[1].username == "9999:ben"
    assert calls.service.ice_servers("cat")[1].username == "9999:cat"


# -- during the call ----------------------------------------------------------


async def test_answers_and_offers_go_between_the_client_and_the_router(calls: Calls) -> None:
    ann, ben = calls.signals("ann"), calls.signals("ben")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    await calls.service.join("ben", GROUP, OFFER_SDP, ben)
    tracks = [TrackInfo("1", "ben", "audio"), TrackInfo("2", "ben", "video")]

    calls.router.offer(GROUP, "ann", "server offer", tracks)
    assert ann.offers == [(GROUP, "server offer", tracks)]
    assert ben.offers == []

    await calls.service.answer("ann", GROUP, "ann's answer", ann)
    assert calls.router.calls("router.answer") == [(GROUP, "ann", "ann's answer")]


async def test_muting_is_forwarded_and_shown_to_the_group(calls: Calls) -> None:
    ann = calls.signals("ann")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    await calls.service.join("ben", GROUP, OFFER_SDP, calls.signals("ben"))

    await calls.service.mute("ann", GROUP, MediaKind.AUDIO, True, ann)
    await calls.service.mute("ann", GROUP, MediaKind.VIDEO, True, ann)
    await calls.service.mute("ann", GROUP, MediaKind.AUDIO, False, ann)

    assert calls.router.calls("router.set_muted") == [
        (GROUP, "ann", MediaKind.AUDIO, True),
        (GROUP, "ann", MediaKind.VIDEO, True),
        (GROUP, "ann", MediaKind.AUDIO, False),
    ]
    changes = [e for _, _, e in calls.events.sent if isinstance(e, CallChanged)]
    assert [c.participants[0] for c in changes[-3:]] == [
        CallParticipant("ann", audio_muted=True),
        CallParticipant("ann", audio_muted=True, video_muted=True),
        CallParticipant("ann", video_muted=True),
    ]
    assert all(c.participants[1] == CallParticipant("ben") for c in changes[-3:])
    assert await calls.service.participants("cat", GROUP) == (
        CallParticipant("ann", video_muted=True),
        CallParticipant("ben"),
    )
    assert calls.placement.published[GROUP] == (
        CallParticipant("ann", video_muted=True),
        CallParticipant("ben"),
    )


async def test_sharing_a_screen_is_unmuting_it_and_shown_to_the_group(calls: Calls) -> None:
    ann = calls.signals("ann")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    assert (await calls.service.participants("ann", GROUP))[0].screen_sharing is False

    await calls.service.mute("ann", GROUP, MediaKind.SCREEN, False, ann)
    await calls.service.mute("ann", GROUP, MediaKind.VIDEO, True, ann)
    await calls.service.mute("ann", GROUP, MediaKind.SCREEN, True, ann)

    assert calls.router.calls("router.set_muted") == [
        (GROUP, "ann", MediaKind.SCREEN, False),
        (GROUP, "ann", MediaKind.VIDEO, True),
        (GROUP, "ann", MediaKind.SCREEN, True),
    ]
    changes = [e for _, _, e in calls.events.sent if isinstance(e, CallChanged)]
    assert [c.participants[0] for c in changes[-3:]] == [
        CallParticipant("ann", screen_sharing=True),
        CallParticipant("ann", video_muted=True, screen_sharing=True),
        CallParticipant("ann", video_muted=True),
    ]


async def mute(calls: Calls, user_id: str, signals: FakeSignals) -> None:
    await calls.service.mute(user_id, GROUP, MediaKind.VIDEO, True, signals)


async def answer(calls: Calls, user_id: str, signals: FakeSignals) -> None:
    await calls.service.answer(user_id, GROUP, "an answer", signals)


async def leave(calls: Calls, user_id: str, signals: FakeSignals) -> None:
    await calls.service.leave(user_id, GROUP, signals)


@pytest.mark.parametrize("action", [answer, mute, leave])
@pytest.mark.parametrize("who", ["outside the call", "another tab of a participant"])
async def test_a_connection_not_in_the_call_may_not_act_in_it(
    calls: Calls, action: Callable[[Calls, str, FakeSignals], Any], who: str
) -> None:
    await calls.service.join("ann", GROUP, OFFER_SDP, calls.signals("ann"))
    user_id = "ben" if who == "outside the call" else "ann"
    calls.journal.clear()
    events_before = list(calls.events.sent)

    with pytest.raises(Conflict) as raised:
        await action(calls, user_id, calls.signals("stranger"))

    assert raised.value.code == "not_in_call"
    assert calls.journal == []  # the router was not asked anything
    assert calls.events.sent == events_before
    assert await calls.service.participants("cat", GROUP) == (CallParticipant("ann"),)


async def test_acting_in_another_groups_call_is_refused(calls: Calls) -> None:
    ann = calls.signals("ann")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)

    with pytest.raises(Conflict) as raised:
        await calls.service.mute("ann", OTHER_GROUP, MediaKind.AUDIO, True, ann)

    assert raised.value.code == "not_in_call"


# -- leaving ------------------------------------------------------------------


async def test_leaving_tells_the_leaver_and_the_group(calls: Calls) -> None:
    ann, ben = calls.signals("ann"), calls.signals("ben")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    await calls.service.join("ben", GROUP, OFFER_SDP, ben)

    await calls.service.leave("ann", GROUP, ann)

    assert ann.endings == [(GROUP, EndReason.LEFT)]
    assert ben.endings == []
    assert calls.router.calls("router.leave") == [(GROUP, "ann")]
    assert calls.events.rosters(GROUP)[-1] == ["ben"]
    assert calls.placement.released == []  # ben is still in it
    assert await calls.roster() == ["ben"]

    await calls.service.leave("ben", GROUP, ben)

    assert ben.endings == [(GROUP, EndReason.LEFT)]
    assert calls.events.rosters(GROUP)[-1] == []  # the call is over
    assert calls.placement.published[GROUP] == ()
    assert calls.placement.released == [GROUP]
    assert await calls.roster() == []
    # Leaving twice is refused: that connection is no longer in it.
    with pytest.raises(Conflict):
        await calls.service.leave("ben", GROUP, ben)


async def test_a_closed_connection_leaves_every_call_it_was_in(calls: Calls) -> None:
    ann, ben, cat = calls.signals("ann"), calls.signals("ben"), calls.signals("cat")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    await calls.service.join("ann", OTHER_GROUP, OFFER_SDP, ann)
    await calls.service.join("ben", GROUP, OFFER_SDP, ben)
    await calls.service.join("cat", OTHER_GROUP, OFFER_SDP, cat)
    # The same user on another connection, which stays open.
    await calls.service.connection_closed(calls.signals("ann, idle tab"))
    assert await calls.roster(GROUP) == ["ann", "ben"]

    await calls.service.connection_closed(ann)

    assert sorted(ann.endings) == sorted(
        [(GROUP, EndReason.CONNECTION_CLOSED), (OTHER_GROUP, EndReason.CONNECTION_CLOSED)]
    )
    assert ben.endings == [] and cat.endings == []
    assert sorted(calls.router.calls("router.leave")) == sorted(
        [(GROUP, "ann"), (OTHER_GROUP, "ann")]
    )
    assert await calls.roster(GROUP) == ["ben"]
    assert await calls.roster(OTHER_GROUP) == ["cat"]
    assert calls.events.rosters(GROUP)[-1] == ["ben"]
    assert calls.events.rosters(OTHER_GROUP)[-1] == ["cat"]
    assert calls.placement.released == []


async def test_a_broken_media_path_drops_the_participant(calls: Calls) -> None:
    ann, ben = calls.signals("ann"), calls.signals("ben")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    await calls.service.join("ben", GROUP, OFFER_SDP, ben)

    calls.router.fail(GROUP, "ann")  # from a callback: the service acts later
    await until(lambda: bool(ann.endings))

    assert ann.endings == [(GROUP, EndReason.CONNECTION_FAILED)]
    assert ben.endings == []
    assert calls.router.calls("router.leave") == [(GROUP, "ann")]
    assert calls.events.rosters(GROUP)[-1] == ["ben"]
    assert await calls.roster() == ["ben"]


async def test_a_failure_reported_for_a_replaced_session_changes_nothing(calls: Calls) -> None:
    first, second = calls.signals("ann, laptop"), calls.signals("ann, phone")
    await calls.service.join("ann", GROUP, OFFER_SDP, first)
    old_session = calls.router.sessions[(GROUP, "ann")]
    await calls.service.join("ann", GROUP, OFFER_SDP, second)
    events_before = list(calls.events.sent)

    old_session.failed(EndReason.CONNECTION_FAILED)
    for _ in range(10):
        await asyncio.sleep(0)

    assert second.endings == []
    assert await calls.roster() == ["ann"]
    assert calls.events.sent == events_before


async def test_shutting_down_ends_every_call(calls: Calls) -> None:
    ann, ben, cat = calls.signals("ann"), calls.signals("ben"), calls.signals("cat")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    await calls.service.join("ben", GROUP, OFFER_SDP, ben)
    await calls.service.join("cat", OTHER_GROUP, OFFER_SDP, cat)

    await calls.service.close()

    for signals, group_id in ((ann, GROUP), (ben, GROUP), (cat, OTHER_GROUP)):
        assert signals.endings == [(group_id, EndReason.SERVER_SHUTDOWN)]
    assert calls.events.rosters(GROUP)[-1] == []
    assert calls.events.rosters(OTHER_GROUP)[-1] == []
    assert sorted(calls.placement.released) == sorted([GROUP, OTHER_GROUP])
    assert calls.router.closed and calls.placement.closed
    assert await calls.roster(GROUP) == [] and await calls.roster(OTHER_GROUP) == []


async def test_a_departure_under_way_at_shutdown_keeps_its_reason(calls: Calls) -> None:
    ann, ben = calls.signals("ann"), calls.signals("ben")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    await calls.service.join("ben", GROUP, OFFER_SDP, ben)

    calls.router.fail(GROUP, "ann")
    await calls.service.close()

    assert ann.endings == [(GROUP, EndReason.CONNECTION_FAILED)]
    assert ben.endings == [(GROUP, EndReason.SERVER_SHUTDOWN)]
    assert calls.events.rosters(GROUP)[-2:] == [["ben"], []]


async def test_a_member_who_leaves_the_group_leaves_its_call(calls: Calls) -> None:
    ann, ben = calls.signals("ann"), calls.signals("ben")
    await calls.service.join("ann", GROUP, OFFER_SDP, ann)
    await calls.service.join("ben", GROUP, OFFER_SDP, ben)
    await calls.service.join("ben", OTHER_GROUP, OFFER_SDP, ben)

    calls.service.member_left("ben", GROUP)
    calls.service.member_left("cat", GROUP)  # not in the call: nothing to do
    await until(lambda: bool(ben.endings))

    assert ben.endings == [(GROUP, EndReason.REMOVED_FROM_GROUP)]
    assert calls.router.calls("router.leave") == [(GROUP, "ben")]
    assert calls.events.rosters(GROUP)[-1] == ["ann"]
    assert await calls.roster(GROUP) == ["ann"]
    assert await calls.roster(OTHER_GROUP) == ["ben"]  # still in the other group's call
