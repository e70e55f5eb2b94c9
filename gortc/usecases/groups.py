"""Groups: creating and running them, their members, invitations."""

from __future__ import annotations

from dataclasses import dataclass, replace

from gortc.entities.errors import Conflict, Forbidden, InvalidInput, NotFound
from gortc.entities.events import (
    GroupJoined,
    GroupLeft,
    GroupUpdated,
    InvitationCreated,
    InvitationDeclined,
    InvitationPending,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    MyGroupUpdated,
)
from gortc.entities.groups import (
    Group,
    GroupKind,
    Invitation,
    Member,
    MemberView,
    MyGroup,
    Role,
    direct_key,
    normalize_group_name,
)
from gortc.entities.ids import new_id
from gortc.entities.rights import Action, may
from gortc.entities.users import User
from gortc.usecases.ports import Clock, EventPublisher, PresenceQuery, Repositories, UnitOfWork


def group_not_found() -> NotFound:
    # The same answer whether the group does not exist or the caller is not
    # in it: outsiders learn nothing, not even that it exists.
    return NotFound("no such group", code="group_not_found")


async def require_member(repos: Repositories, group_id: str, user_id: str) -> tuple[Group, Member]:
    """The group and the caller's membership; NotFound for outsiders."""
    member = await repos.members.get(group_id, user_id)
    group = await repos.groups.get(group_id) if member else None
    if member is None or group is None:
        raise group_not_found()
    return group, member


@dataclass(frozen=True, slots=True)
class ListedMember:
    """A member as the member list shows them: with whether they are online."""

    view: MemberView
    online: bool


@dataclass(frozen=True, slots=True)
class ListedGroup:
    """A group in the caller's list; for a direct conversation, whether the
    other person is online (None for other groups)."""

    mine: MyGroup
    peer_online: bool | None


def require_right(group: Group, member: Member, action: Action) -> None:
    if not may(member.role, action, direct=group.kind is GroupKind.DIRECT):
        raise Forbidden(
            f"your role ({member.role.value}) may not {action.value.replace('_', ' ')} here",
            code="not_allowed",
        )


class GroupService:
    """Groups and their members. Raises NotFound for anything about a group
    the caller is not in, Forbidden where the rights matrix says no,
    Conflict for duplicates and for an owner trying to leave."""

    def __init__(
        self, *, uow: UnitOfWork, events: EventPublisher, presence: PresenceQuery, clock: Clock
    ) -> None:
        self._uow = uow
        self._events = events
        self._presence = presence
        self._clock = clock

    async def create(self, user_id: str, name: str) -> MyGroup:
        now = self._clock.now()
        group = Group(
            id=new_id(),
            name=normalize_group_name(name),
            kind=GroupKind.GROUP,
            owner_id=user_id,
            created_at=now,
        )
        async with self._uow.transaction() as repos:
            await repos.groups.add(group)
            await repos.members.add(Member(group.id, user_id, Role.OWNER, now))
        mine = MyGroup(group=group, role=Role.OWNER, read_seq=0, unread=0)
        self._events.join(user_id, group.id)
        self._events.to_user(user_id, GroupJoined(mine))
        return mine

    async def get(self, user_id: str, group_id: str) -> MyGroup:
        async with self._uow.reading() as repos:
            mine = await repos.groups.get_for_user(user_id, group_id)
        if mine is None:
            raise group_not_found()
        return mine

    async def list_mine(
        self, user_id: str, *, limit: int, after: str | None = None
    ) -> list[ListedGroup]:
        async with self._uow.reading() as repos:
            groups = await repos.groups.list_for_user(user_id, limit=limit, after=after)
        # One presence query for the whole page, and none without direct ones.
        peers = {mine.peer_id for mine in groups if mine.peer_id is not None}
        online = await self._presence.online_users(peers) if peers else set()
        return [
            ListedGroup(mine, None if mine.peer_id is None else mine.peer_id in online)
            for mine in groups
        ]

    async def rename(self, user_id: str, group_id: str, name: str) -> Group:
        name = normalize_group_name(name)
        async with self._uow.transaction() as repos:
            group, member = await require_member(repos, group_id, user_id)
            require_right(group, member, Action.RENAME)
            await repos.groups.rename(group_id, name)
        renamed = replace(group, name=name)
        self._events.to_group(group_id, GroupUpdated(renamed))
        return renamed

    async def delete(self, user_id: str, group_id: str) -> None:
        async with self._uow.transaction() as repos:
            group, member = await require_member(repos, group_id, user_id)
            require_right(group, member, Action.DELETE_GROUP)
            user_ids = await repos.members.user_ids(group_id)
            await repos.groups.delete(group_id)
        self._events.to_group(group_id, GroupLeft(group_id))
        for member_id in user_ids:
            self._events.leave(member_id, group_id)

    async def group_ids(self, user_id: str) -> list[str]:
        """Every group the user is in (what a new connection subscribes to)."""
        async with self._uow.reading() as repos:
            return await repos.members.group_ids_for_user(user_id)

    async def members(self, user_id: str, group_id: str) -> list[ListedMember]:
        async with self._uow.reading() as repos:
            await require_member(repos, group_id, user_id)
            views = await repos.members.list(group_id)
        # Asked after the read connection is handed back: with Redis this is
        # a round trip, which should not hold one of the few readers.
        online = await self._presence.online_users([view.member.user_id for view in views])
        return [ListedMember(view, view.member.user_id in online) for view in views]

    async def add_member(
        self, actor_id: str, group_id: str, target: UserRef, role: Role = Role.MEMBER
    ) -> MemberView:
        """Adds a user (by id or username) straight away, without invitation."""
        if role is Role.OWNER:
            raise InvalidInput(
                "there is one owner; transfer ownership instead", code="invalid_role"
            )
        now = self._clock.now()
        async with self._uow.transaction() as repos:
            group, actor = await require_member(repos, group_id, actor_id)
            require_right(group, actor, Action.ADD_MEMBER)
            if role is Role.ADMIN:
                require_right(group, actor, Action.CHANGE_ROLE)
            user = await _find_user(repos, target)
            member = Member(group_id, user.id, role, now)
            await repos.members.add(member)
            await repos.invitations.delete_for(group_id, user.id)
            mine = await _my_group(repos, user.id, group_id)
        view = MemberView(member, user.username, user.display_name)
        self._announce_join(view, mine)
        return view

    def _announce_join(self, view: MemberView, mine: MyGroup) -> None:
        self._events.join(view.member.user_id, view.member.group_id)
        self._events.to_group(view.member.group_id, MemberJoined(view))
        self._events.to_user(view.member.user_id, GroupJoined(mine))

    async def set_role(
        self, actor_id: str, group_id: str, target_id: str, role: Role
    ) -> MemberView:
        if role is Role.OWNER:
            raise InvalidInput(
                "there is one owner; transfer ownership instead", code="invalid_role"
            )
        async with self._uow.transaction() as repos:
            group, actor = await require_member(repos, group_id, actor_id)
            require_right(group, actor, Action.CHANGE_ROLE)
            target = await _require_target(repos, group_id, target_id)
            if target.member.role is Role.OWNER:
                raise Conflict("the owner's role changes only by transfer", code="owner_role")
            await repos.members.set_role(group_id, target_id, role)
            theirs = await _my_group(repos, target_id, group_id)
        view = replace(target, member=replace(target.member, role=role))
        self._events.to_group(group_id, MemberUpdated(view))
        # What the new role lets them do reaches them with their group.
        self._events.to_user(target_id, MyGroupUpdated(theirs))
        return view

    async def remove_member(self, actor_id: str, group_id: str, target_id: str) -> None:
        """Removes someone, or, when the target is the actor, leaves."""
        async with self._uow.transaction() as repos:
            group, actor = await require_member(repos, group_id, actor_id)
            if target_id == actor_id:
                if group.kind is GroupKind.DIRECT:
                    raise Conflict(
                        "a direct conversation cannot be left", code="direct_conversation"
                    )
                if actor.role is Role.OWNER:
                    raise Conflict(
                        "the owner cannot leave; transfer ownership or delete the group",
                        code="owner_cannot_leave",
                    )
            else:
                target = await _require_target(repos, group_id, target_id)
                needed = {
                    Role.OWNER: None,
                    Role.ADMIN: Action.REMOVE_ADMIN,
                    Role.MEMBER: Action.REMOVE_MEMBER,
                }[target.member.role]
                if needed is None:
                    raise Forbidden("nobody may remove the owner", code="not_allowed")
                require_right(group, actor, needed)
            await repos.members.remove(group_id, target_id)
        self._events.to_group(group_id, MemberLeft(group_id, target_id))
        self._events.to_user(target_id, GroupLeft(group_id))
        self._events.leave(target_id, group_id)

    async def transfer_ownership(self, actor_id: str, group_id: str, target_id: str) -> Group:
        async with self._uow.transaction() as repos:
            group, actor = await require_member(repos, group_id, actor_id)
            require_right(group, actor, Action.TRANSFER_OWNERSHIP)
            target = await _require_target(repos, group_id, target_id)
            if target_id == actor_id:
                return group
            await repos.members.set_role(group_id, actor_id, Role.ADMIN)
            await repos.members.set_role(group_id, target_id, Role.OWNER)
            await repos.groups.set_owner(group_id, target_id)
            former = await _require_target(repos, group_id, actor_id)
            theirs = {
                user_id: await _my_group(repos, user_id, group_id)
                for user_id in (actor_id, target_id)
            }
        updated = replace(group, owner_id=target_id)
        self._events.to_group(group_id, MemberUpdated(former))
        self._events.to_group(
            group_id, MemberUpdated(replace(target, member=replace(target.member, role=Role.OWNER)))
        )
        self._events.to_group(group_id, GroupUpdated(updated))
        for user_id, mine in theirs.items():
            self._events.to_user(user_id, MyGroupUpdated(mine))
        return updated

    async def invite(self, actor_id: str, group_id: str, target: UserRef) -> Invitation:
        async with self._uow.transaction() as repos:
            group, actor = await require_member(repos, group_id, actor_id)
            require_right(group, actor, Action.ADD_MEMBER)
            user = await _find_user(repos, target)
            if await repos.members.get(group_id, user.id) is not None:
                raise Conflict("that user is a member already", code="already_member")
            invitation = Invitation(
                id=new_id(),
                group_id=group_id,
                user_id=user.id,
                inviter_id=actor_id,
                created_at=self._clock.now(),
                group_name=group.name,
            )
            await repos.invitations.add(invitation)
        self._events.to_user(user.id, InvitationCreated(invitation))
        self._events.to_group(group_id, InvitationPending(invitation))
        return invitation

    async def invitations(self, user_id: str) -> list[Invitation]:
        async with self._uow.reading() as repos:
            return await repos.invitations.list_for_user(user_id)

    async def group_invitations(self, user_id: str, group_id: str) -> list[Invitation]:
        """The group's pending invitations, shown to every member (who is
        about to join is no secret inside the group); NotFound for outsiders."""
        async with self._uow.reading() as repos:
            await require_member(repos, group_id, user_id)
            return await repos.invitations.list_for_group(group_id)

    async def accept(self, user_id: str, invitation_id: str) -> MemberView:
        now = self._clock.now()
        async with self._uow.transaction() as repos:
            invitation = await _require_invitation(repos, user_id, invitation_id)
            user = await repos.users.get(user_id)
            assert user is not None
            member = Member(invitation.group_id, user_id, Role.MEMBER, now)
            await repos.members.add(member)
            await repos.invitations.delete(invitation_id)
            mine = await _my_group(repos, user_id, invitation.group_id)
        view = MemberView(member, user.username, user.display_name)
        self._announce_join(view, mine)
        return view

    async def decline(self, user_id: str, invitation_id: str) -> None:
        async with self._uow.transaction() as repos:
            invitation = await _require_invitation(repos, user_id, invitation_id)
            await repos.invitations.delete(invitation_id)
        self._events.to_group(
            invitation.group_id, InvitationDeclined(invitation.group_id, invitation_id, user_id)
        )

    async def direct_with(self, user_id: str, peer_id: str) -> MyGroup:
        async with self._uow.reading() as repos:
            group = await repos.groups.get_direct(direct_key(user_id, peer_id))
        if group is None:
            raise NotFound("no conversation with that user yet", code="conversation_not_found")
        return await self.get(user_id, group.id)


async def _my_group(repos: Repositories, user_id: str, group_id: str) -> MyGroup:
    mine = await repos.groups.get_for_user(user_id, group_id)
    assert mine is not None  # just joined, in this very transaction
    return mine


@dataclass(frozen=True, slots=True)
class UserRef:
    """Someone named by id or by username; never by email, which would let
    group managers find out who has an account."""

    user_id: str | None = None
    username: str | None = None


async def _find_user(repos: Repositories, ref: UserRef) -> User:
    user = None
    if ref.user_id is not None:
        user = await repos.users.get(ref.user_id)
    elif ref.username is not None:
        name = ref.username.strip().lower()
        candidate = await repos.users.get_by_login(name)
        user = candidate if candidate is not None and candidate.username == name else None
    if user is None or user.is_disabled:
        raise NotFound("no such user", code="user_not_found")
    return user


async def _require_target(repos: Repositories, group_id: str, user_id: str) -> MemberView:
    for view in await repos.members.list(group_id):
        if view.member.user_id == user_id:
            return view
    raise NotFound("that user is not a member of this group", code="member_not_found")


async def _require_invitation(repos: Repositories, user_id: str, invitation_id: str) -> Invitation:
    invitation = await repos.invitations.get(invitation_id)
    if invitation is None or invitation.user_id != user_id:
        raise NotFound("no such invitation", code="invitation_not_found")
    return invitation
