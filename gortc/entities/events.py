"""What happened, told to connected clients. Named in the past tense; the
delivery layer decides how each is written on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gortc.entities.calls import CallParticipant
from gortc.entities.groups import Group, Invitation, MemberView, Message, MyGroup
from gortc.entities.live import LiveRoom


@dataclass(frozen=True, slots=True)
class MessageCreated:
    message: Message


@dataclass(frozen=True, slots=True)
class MessageUpdated:
    message: Message


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    group_id: str
    message_id: str
    seq: int
    change: int  # the deletion's number from the group's change counter


@dataclass(frozen=True, slots=True)
class GroupJoined:
    group: MyGroup


@dataclass(frozen=True, slots=True)
class GroupUpdated:
    group: Group


@dataclass(frozen=True, slots=True)
class MyGroupUpdated:
    """The group as one member now sees it (their role changed), told to
    that member only."""

    group: MyGroup


@dataclass(frozen=True, slots=True)
class GroupLeft:
    group_id: str


@dataclass(frozen=True, slots=True)
class MemberJoined:
    member: MemberView


@dataclass(frozen=True, slots=True)
class MemberUpdated:
    member: MemberView


@dataclass(frozen=True, slots=True)
class MemberLeft:
    group_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class InvitationCreated:
    invitation: Invitation


@dataclass(frozen=True, slots=True)
class InvitationPending:
    """To the group: someone was invited (the invitee hears InvitationCreated)."""

    invitation: Invitation


@dataclass(frozen=True, slots=True)
class InvitationDeclined:
    """To the group: an invitation is no longer pending, and nobody joined
    (an accepted one, or one settled by a direct add, ends in MemberJoined)."""

    group_id: str
    invitation_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class UserTyping:
    group_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class ReadMarkerMoved:
    group_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """Who among one group's members came online or went offline since the
    group was last told: one report for many changes (the last state of
    each user wins), so that a crowd connecting at once costs one report
    per group, not one per member."""

    group_id: str
    online: tuple[str, ...]
    offline: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CallChanged:
    """Who is in the group's call now (empty: the call is over), told to
    every member, in the call or not."""

    group_id: str
    participants: tuple[CallParticipant, ...]


@dataclass(frozen=True, slots=True)
class LiveStarted:
    room: LiveRoom
    hls_base: str = ""  # where the room's HLS is played (a public URL; "": relative)


@dataclass(frozen=True, slots=True)
class LiveEnded:
    room_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class LiveChatPosted:
    """A line of a live room's chat: told to its watchers, kept nowhere."""

    room_id: str
    user_id: str
    username: str
    body: str
    sent_at: datetime
    client_id: str | None


Event = (
    MessageCreated
    | MessageUpdated
    | MessageDeleted
    | GroupJoined
    | GroupUpdated
    | MyGroupUpdated
    | GroupLeft
    | MemberJoined
    | MemberUpdated
    | MemberLeft
    | InvitationCreated
    | InvitationPending
    | InvitationDeclined
    | UserTyping
    | ReadMarkerMoved
    | PresenceChanged
    | CallChanged
    | LiveStarted
    | LiveEnded
    | LiveChatPosted
)
