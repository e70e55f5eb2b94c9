"""Messages: sending, editing, deleting, history, catching up, typing, reading."""

from __future__ import annotations

from dataclasses import dataclass, replace

from gortc.entities.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from gortc.entities.events import (
    GroupJoined,
    MessageCreated,
    MessageDeleted,
    MessageUpdated,
    ReadMarkerMoved,
    UserTyping,
)
from gortc.entities.groups import (
    Group,
    GroupKind,
    Member,
    Message,
    NewMessage,
    Role,
    check_message_body,
    direct_key,
    invalid_reply,
)
from gortc.entities.ids import new_id
from gortc.entities.reactions import MAX_REACTIONS_PER_MESSAGE, check_emoji
from gortc.entities.rights import Action
from gortc.usecases.groups import require_member, require_right
from gortc.usecases.ports import (
    Clock,
    EventPublisher,
    MessageStore,
    RateLimiter,
    Repositories,
    UnitOfWork,
)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    limits_enabled: bool = True
    messages_per_second: int = 20
    message_burst: int = 40
    sync_limit: int = 500
    typing_interval: float = 2.0
    history_max: int = 200
    max_attachments: int = 10  # files one message may carry


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Messages newest first, and whether undeleted messages lie beyond the
    page on either side (then the client may ask for more that way)."""

    messages: list[Message]
    more_older: bool
    more_newer: bool


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a reconnecting client missed, as the events it would have heard
    (in seq order when asked by seq, in change order when asked by change).
    ``reset`` means the gap was too large to replay: reload history instead.
    ``last_change`` is given only to a sync by change: one by seq does not
    replay edits, so it must not tell the client it knows every change."""

    events: list[MessageCreated | MessageUpdated | MessageDeleted]
    last_seq: int
    reset: bool
    last_change: int | None = None


class ChatService:
    """Raises NotFound for groups the caller is not in and for unknown
    messages, Forbidden where the rights matrix says no, InvalidInput for a
    bad body, RateLimited when a user sends too fast."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        store: MessageStore,
        events: EventPublisher,
        limiter: RateLimiter,
        clock: Clock,
        settings: ChatSettings = ChatSettings(),
    ) -> None:
        self._uow = uow
        self._store = store
        self._events = events
        self._limiter = limiter
        self._clock = clock
        self._settings = settings

    async def send(
        self,
        user_id: str,
        group_id: str,
        body: str,
        file_ids: tuple[str, ...] = (),
        *,
        client_id: str | None = None,
        reply_to: str | None = None,
    ) -> Message:
        """Stores the message and tells the group. Returns once committed.

        Every role may post, so membership is all there is to check, and the
        store checks it inside the transaction that writes the message. Until
        the message is queued there, nothing here suspends, so messages from
        one client keep the order it sent them in. For the same reason the
        store, not this method, checks that every file in ``file_ids`` is the
        sender's (NotFound ``file_not_found`` otherwise; nothing is stored).
        Sharing a file so gives the group's members read access to it, for
        as long as the message exists (see FileService.get).

        ``reply_to`` makes it a reply to that message, which must be one of
        the group's and not deleted: the store checks that too, in its
        transaction (InvalidInput ``invalid_reply``; nothing is stored).

        A ``client_id`` this sender already used in this group makes the
        send a repeat (a retry after a lost answer): nothing new is stored or
        told, and the earlier message, as it is now, is returned.
        """
        file_ids = self._check_files(file_ids)
        check_message_body(body, with_files=bool(file_ids))
        await self._limit_sending(user_id)
        return await self._store_and_tell(user_id, group_id, body, file_ids, client_id, reply_to)

    async def _store_and_tell(
        self,
        user_id: str,
        group_id: str,
        body: str,
        file_ids: tuple[str, ...],
        client_id: str | None,
        reply_to: str | None,
    ) -> Message:
        stored = await self._store.add(
            NewMessage(
                id=new_id(),
                group_id=group_id,
                sender_id=user_id,
                body=body,
                created_at=self._clock.now(),
                file_ids=file_ids,
                client_id=client_id,
                reply_to_id=reply_to,
            )
        )
        if stored.is_new:
            # No await between the commit and this: senders wake in seq order,
            # so the group hears its messages in seq order.
            self._events.to_group(group_id, MessageCreated(stored.message))
        return stored.message

    async def send_direct(
        self,
        user_id: str,
        peer_id: str,
        body: str,
        file_ids: tuple[str, ...] = (),
        *,
        client_id: str | None = None,
        reply_to: str | None = None,
    ) -> Message:
        """Sends to the direct conversation with ``peer_id``, creating it on
        the first message (only once the message is sure to be accepted)."""
        file_ids = self._check_files(file_ids)
        check_message_body(body, with_files=bool(file_ids))
        if peer_id == user_id:
            raise InvalidInput("a direct message needs another person", code="invalid_peer")
        await self._limit_sending(user_id)
        # Before the conversation is made; the store checks again.
        if file_ids:
            await self._require_own_files(user_id, file_ids)
        if reply_to is not None:
            await self._require_quotable_in_direct(user_id, peer_id, reply_to)
        group = await self._direct_conversation(user_id, peer_id)
        return await self._store_and_tell(user_id, group.id, body, file_ids, client_id, reply_to)

    async def _require_quotable_in_direct(self, user_id: str, peer_id: str, reply_to: str) -> None:
        """A reply in a conversation not made yet answers nothing there."""
        async with self._uow.reading() as repos:
            conversation = await repos.groups.get_direct(direct_key(user_id, peer_id))
            quoted = await repos.messages.get(reply_to) if conversation is not None else None
        if (
            conversation is None
            or quoted is None
            or quoted.group_id != conversation.id
            or quoted.is_deleted
        ):
            raise invalid_reply()

    async def _direct_conversation(self, user_id: str, peer_id: str) -> Group:
        key = direct_key(user_id, peer_id)
        async with self._uow.reading() as repos:
            existing = await repos.groups.get_direct(key)
        if existing is not None:
            return existing
        now = self._clock.now()
        group = Group(id=new_id(), name="", kind=GroupKind.DIRECT, owner_id=None, created_at=now)
        try:
            async with self._uow.transaction() as repos:
                peer = await repos.users.get(peer_id)
                if peer is None or peer.is_disabled:
                    raise NotFound("no such user", code="user_not_found")
                await repos.groups.add(group, direct_key=key)
                for member_id in (user_id, peer_id):
                    await repos.members.add(Member(group.id, member_id, Role.MEMBER, now))
                mine = {
                    member_id: await repos.groups.get_for_user(member_id, group.id)
                    for member_id in (user_id, peer_id)
                }
        except Conflict:
            # The other person's first message made it a moment ago.
            async with self._uow.reading() as repos:
                existing = await repos.groups.get_direct(key)
            assert existing is not None
            return existing
        for member_id, view in mine.items():
            self._events.join(member_id, group.id)
            if view is not None:
                self._events.to_user(member_id, GroupJoined(view))
        return group

    async def edit(self, user_id: str, group_id: str, message_id: str, body: str) -> Message:
        check_message_body(body)
        async with self._uow.transaction() as repos:
            group, member = await require_member(repos, group_id, user_id)
            message = await _require_message(repos, group_id, message_id)
            if message.sender_id != user_id:
                raise Forbidden("only its author may edit a message", code="not_author")
            require_right(group, member, Action.EDIT_OWN_MESSAGE)
            edited = await repos.messages.update(
                replace(message, body=body, edited_at=self._clock.now())
            )
        self._events.to_group(group_id, MessageUpdated(edited))
        return edited

    async def delete(self, user_id: str, group_id: str, message_id: str) -> None:
        """Deletes for everyone: the author may, and so may the group's
        owner and admins."""
        async with self._uow.transaction() as repos:
            group, member = await require_member(repos, group_id, user_id)
            message = await _require_message(repos, group_id, message_id)
            own = message.sender_id == user_id
            require_right(
                group,
                member,
                Action.DELETE_OWN_MESSAGE if own else Action.DELETE_OTHERS_MESSAGE,
            )
            deleted = await repos.messages.update(
                replace(message, body="", deleted_at=self._clock.now())
            )
            # The group's access to the message's files ends with it, and
            # nothing of it is shown any more, its reactions included.
            await repos.attachments.detach(message_id)
            await repos.reactions.clear(message_id)
        self._events.to_group(
            group_id, MessageDeleted(group_id, message_id, message.seq, deleted.change)
        )

    async def react(self, user_id: str, group_id: str, message_id: str, emoji: str) -> Message:
        """Puts ``emoji`` on the message for the caller and returns the
        message. Idempotent: an emoji the caller has there already changes
        nothing. Raises InvalidInput ``invalid_emoji`` (see check_emoji),
        Conflict ``too_many_reactions`` for a new emoji on a message that has
        MAX_REACTIONS_PER_MESSAGE different ones, NotFound for a deleted
        message as for a missing one.

        A change takes the next number of the group's change counter and is
        told to the group as the message updated (its edit time unchanged),
        so a client catching up by change gets it too."""
        emoji = check_emoji(emoji)
        return await self._change_reaction(user_id, group_id, message_id, emoji, adding=True)

    async def unreact(self, user_id: str, group_id: str, message_id: str, emoji: str) -> Message:
        """Takes the caller's ``emoji`` off the message; one the caller has
        not put there changes nothing. Otherwise as ``react``."""
        emoji = check_emoji(emoji)
        return await self._change_reaction(user_id, group_id, message_id, emoji, adding=False)

    async def _change_reaction(
        self, user_id: str, group_id: str, message_id: str, emoji: str, *, adding: bool
    ) -> Message:
        async with self._uow.transaction() as repos:
            group, member = await require_member(repos, group_id, user_id)
            message = await _require_message(repos, group_id, message_id)
            require_right(group, member, Action.REACT)
            if adding:
                kinds = {reaction.emoji for reaction in message.reactions}
                if emoji not in kinds and len(kinds) >= MAX_REACTIONS_PER_MESSAGE:
                    raise Conflict(
                        f"a message holds at most {MAX_REACTIONS_PER_MESSAGE} different "
                        "emojis; add one of those already there",
                        code="too_many_reactions",
                    )
                changed = await repos.reactions.add(message_id, user_id, emoji, self._clock.now())
            else:
                changed = await repos.reactions.remove(message_id, user_id, emoji)
            if not changed:
                return message
            await repos.messages.touch(message)
            updated = await repos.messages.get(message_id)
        assert updated is not None  # read in the transaction that changed it
        self._events.to_group(group_id, MessageUpdated(updated))
        return updated

    async def history(
        self,
        user_id: str,
        group_id: str,
        *,
        limit: int,
        before_seq: int | None = None,
        after_seq: int | None = None,
        around_seq: int | None = None,
    ) -> HistoryPage:
        """A page of undeleted messages, newest first. At most one of:
        ``before_seq`` (older than it), ``after_seq`` (the oldest ones newer
        than it), ``around_seq`` (it, or where it was, with about half the
        page older and half newer; fewer on one side fill up from the
        other); none: the newest. InvalidInput ``invalid_cursor`` for more
        than one."""
        if sum(seq is not None for seq in (before_seq, after_seq, around_seq)) > 1:
            raise InvalidInput("give one of before, after or around", code="invalid_cursor")
        limit = max(1, min(limit, self._settings.history_max))
        async with self._uow.reading() as repos:
            await require_member(repos, group_id, user_id)
            messages = repos.messages
            # One more than asked on each side read says whether more lie there.
            if after_seq is not None:
                newer = await messages.newer(group_id, after_seq=after_seq, limit=limit + 1)
                older = await messages.before(group_id, before_seq=after_seq + 1, limit=1)
                return HistoryPage(newer[:limit][::-1], bool(older), len(newer) > limit)
            if around_seq is not None:
                older = await messages.before(group_id, before_seq=around_seq + 1, limit=limit + 1)
                newer = await messages.newer(group_id, after_seq=around_seq, limit=limit + 1)
                # About half newer; what one side lacks, the other gives.
                older_count = min(len(older), limit - limit // 2)
                newer_count = min(len(newer), limit - older_count)
                older_count = min(len(older), limit - newer_count)
                return HistoryPage(
                    newer[:newer_count][::-1] + older[:older_count],
                    len(older) > older_count,
                    len(newer) > newer_count,
                )
            older = await messages.before(group_id, before_seq=before_seq, limit=limit + 1)
            newer = (
                await messages.newer(group_id, after_seq=before_seq - 1, limit=1)
                if before_seq is not None
                else []
            )
            return HistoryPage(older[:limit], len(older) > limit, bool(newer))

    async def sync(
        self,
        user_id: str,
        group_id: str,
        after_seq: int = 0,
        *,
        after_change: int | None = None,
    ) -> SyncResult:
        """By seq: every message after ``after_seq`` in seq order, as created
        (deleted ones as deletions); edits are not replayed.

        By change (``after_change`` given; ``after_seq`` is then ignored):
        every message changed after it, in change order, each once, as it is
        now: created (if it was created after ``after_change``), updated or
        deleted.

        Either way a reset when more than ``sync_limit`` would be replayed.
        """
        if after_seq < 0 or (after_change is not None and after_change < 0):
            raise InvalidInput("after_seq and after_change must be 0 or more", code="invalid_seq")
        if after_change is not None:
            return await self._sync_by_change(user_id, group_id, after_change)
        limit = self._settings.sync_limit
        async with self._uow.reading() as repos:
            group, _ = await require_member(repos, group_id, user_id)
            if group.last_seq - after_seq > limit:
                return SyncResult(events=[], last_seq=group.last_seq, reset=True)
            messages = await repos.messages.after(group_id, after_seq=after_seq, limit=limit)
        last_seq = max([group.last_seq, *(message.seq for message in messages)])
        events: list[MessageCreated | MessageUpdated | MessageDeleted] = [
            _deletion(message) if message.is_deleted else MessageCreated(message)
            for message in messages
        ]
        return SyncResult(events=events, last_seq=last_seq, reset=False)

    async def _sync_by_change(self, user_id: str, group_id: str, after_change: int) -> SyncResult:
        limit = self._settings.sync_limit
        async with self._uow.reading() as repos:
            group, _ = await require_member(repos, group_id, user_id)
            # Change numbers skip the earlier changes of a message changed
            # again, so the gap in numbers only bounds the rows: read one
            # past the limit to know whether they fit.
            messages = await repos.messages.changed_after(
                group_id, after_change=after_change, limit=limit + 1
            )
        # The group and the messages may be read at different moments (each
        # statement sees the latest commit): take the newest of both.
        last_seq = max([group.last_seq, *(message.seq for message in messages)])
        last_change = max([group.last_change, *(message.change for message in messages)])
        if len(messages) > limit:
            return SyncResult(events=[], last_seq=last_seq, reset=True, last_change=last_change)
        events: list[MessageCreated | MessageUpdated | MessageDeleted] = []
        for message in messages:
            if message.is_deleted:
                events.append(_deletion(message))
            elif message.created_change > after_change:
                events.append(MessageCreated(message))
            else:
                events.append(MessageUpdated(message))
        return SyncResult(events=events, last_seq=last_seq, reset=False, last_change=last_change)

    async def typing(self, user_id: str, group_id: str) -> None:
        """Tells the group someone is typing; repeats within the interval are
        dropped silently (they carry no news)."""
        wait = await self._limiter.hit(
            f"typing:{user_id}:{group_id}", 1, self._settings.typing_interval
        )
        if wait > 0:
            return
        async with self._uow.reading() as repos:
            await require_member(repos, group_id, user_id)
        self._events.to_group(group_id, UserTyping(group_id, user_id))

    async def mark_read(self, user_id: str, group_id: str, seq: int) -> int:
        if seq < 0:
            raise InvalidInput("seq must be 0 or more", code="invalid_seq")
        async with self._uow.transaction() as repos:
            await require_member(repos, group_id, user_id)
            read_seq = await repos.members.mark_read(group_id, user_id, seq)
        self._events.to_user(user_id, ReadMarkerMoved(group_id, read_seq))
        return read_seq

    async def _limit_sending(self, user_id: str) -> None:
        if not self._settings.limits_enabled:
            return
        burst = self._settings.message_burst
        wait = await self._limiter.hit(
            f"message:{user_id}", burst, burst / self._settings.messages_per_second
        )
        if wait > 0:
            raise RateLimited("you are sending messages too fast; slow down", retry_after=wait)

    def _check_files(self, file_ids: tuple[str, ...]) -> tuple[str, ...]:
        """The ids without repeats, in the order given; at most
        ``max_attachments`` of them."""
        unique = tuple(dict.fromkeys(file_ids))
        if len(unique) > self._settings.max_attachments:
            raise InvalidInput(
                f"a message carries at most {self._settings.max_attachments} files",
                code="too_many_attachments",
            )
        return unique

    async def _require_own_files(self, user_id: str, file_ids: tuple[str, ...]) -> None:
        async with self._uow.reading() as repos:
            for file_id in file_ids:
                if await repos.files.get(user_id, file_id) is None:
                    raise NotFound("no such file", code="file_not_found")


def _deletion(message: Message) -> MessageDeleted:
    return MessageDeleted(message.group_id, message.id, message.seq, message.change)


async def _require_message(repos: Repositories, group_id: str, message_id: str) -> Message:
    message = await repos.messages.get(message_id)
    if message is None or message.group_id != group_id or message.is_deleted:
        raise NotFound("no such message", code="message_not_found")
    return message
