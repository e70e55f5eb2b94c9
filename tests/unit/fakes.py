"""Hand-written in-memory fakes of the ports in ``gortc.usecases.ports``.

They keep the contracts the SQLite repositories and the adapters keep
(case-insensitive logins, Conflict on taken names, single-use tokens,
reference-counted blobs), so the use cases can be driven without I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from gortc.adapters.jwt_tokens import JwtAccessTokens
from gortc.entities.errors import Conflict, NotFound, TooLarge, Unavailable
from gortc.entities.events import Event, MessageUpdated
from gortc.entities.groups import (
    Group,
    GroupKind,
    Member,
    Message,
    NewMessage,
    Quote,
    Role,
    StoredMessage,
    invalid_reply,
)
from gortc.entities.reactions import Reaction
from gortc.entities.sessions import Invite, OneTimePurpose, OneTimeToken, RefreshToken, Session
from gortc.entities.users import User
from gortc.usecases.accounts import AccountService, AccountSettings
from gortc.usecases.admin import AdminService
from gortc.usecases.chat import ChatService
from gortc.usecases.ports import BlobLocation, DirectUpload, MailMessage, ServedAs, StagedBlob

# Before any wall-clock time the tests run at: pyjwt compares a token's
# "iat" with the system clock, whatever clock issued it.
START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
JWT_KEY = b"unit-test-signing-key-of-32-bytes-or-more"


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


@dataclass
class FakeTables:
    """Every row the fake database holds; entities are frozen, so copying the
    dicts is a full snapshot."""

    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    one_time_tokens: dict[str, OneTimeToken] = field(default_factory=dict)
    invites: dict[str, Invite] = field(default_factory=dict)
    blobs: dict[str, tuple[int, int]] = field(default_factory=dict)  # sha256 -> (size, refs)
    groups: dict[str, Group] = field(default_factory=dict)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)  # (group, user)
    direct_keys: dict[str, str] = field(default_factory=dict)  # direct_key -> group id
    # Stored as written: without files, reactions or quote (see FakeMessageRepository).
    messages: dict[str, Message] = field(default_factory=dict)
    reply_to: dict[str, str] = field(default_factory=dict)  # message id -> id it answers
    # (message id, user id, emoji), in the order they were added
    reactions: list[tuple[str, str, str]] = field(default_factory=list)

    def snapshot(self) -> FakeTables:
        return FakeTables(
            users=dict(self.users),
            sessions=dict(self.sessions),
            refresh_tokens=dict(self.refresh_tokens),
            one_time_tokens=dict(self.one_time_tokens),
            invites=dict(self.invites),
            blobs=dict(self.blobs),
            groups=dict(self.groups),
            members=dict(self.members),
            direct_keys=dict(self.direct_keys),
            messages=dict(self.messages),
            reply_to=dict(self.reply_to),
            reactions=list(self.reactions),
        )

    def restore(self, saved: FakeTables) -> None:
        for name in (
            "users",
            "sessions",
            "refresh_tokens",
            "one_time_tokens",
            "invites",
            "blobs",
            "groups",
            "members",
            "direct_keys",
            "messages",
            "reply_to",
        ):
            table = getattr(self, name)
            table.clear()
            table.update(getattr(saved, name))
        self.reactions[:] = saved.reactions


class FakeUserRepository:
    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def get(self, user_id: str) -> User | None:
        return self._tables.users.get(user_id)

    async def get_by_login(self, login: str) -> User | None:
        wanted = login.lower()
        for user in self._tables.users.values():
            if user.username.lower() == wanted or user.email.lower() == wanted:
                return user
        return None

    async def add(self, user: User) -> None:
        self._check_unique(user)
        self._tables.users[user.id] = user

    async def update(self, user: User) -> None:
        self._check_unique(user)
        if user.id in self._tables.users:
            self._tables.users[user.id] = user

    def _check_unique(self, user: User) -> None:
        for other in self._tables.users.values():
            if other.id == user.id:
                continue
            if other.username.lower() == user.username.lower():
                raise Conflict("that username is taken", code="username_taken")
            if other.email.lower() == user.email.lower():
                raise Conflict("that email is already registered", code="email_taken")

    async def list(self, *, limit: int, after: str | None = None) -> list[User]:
        ids = sorted(user_id for user_id in self._tables.users if user_id > (after or ""))
        return [self._tables.users[user_id] for user_id in ids[:limit]]

    async def count(self) -> int:
        return len(self._tables.users)


class FakeSessionRepository:
    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def add(self, session: Session) -> None:
        self._tables.sessions[session.id] = session

    async def active_ids_for_user(self, user_id: str, now: datetime) -> list[str]:
        return [
            session.id
            for session in self._tables.sessions.values()
            if session.user_id == user_id and session.is_active(now)
        ]

    async def get(self, session_id: str) -> Session | None:
        return self._tables.sessions.get(session_id)

    async def revoke(self, session_id: str, now: datetime) -> list[tuple[str, datetime]]:
        self._end(session_id, now)
        return self._live_access_tokens({session_id}, now)

    async def revoke_all_for_user(
        self, user_id: str, now: datetime, *, except_session_id: str | None = None
    ) -> list[tuple[str, datetime]]:
        ended = {
            session.id
            for session in self._tables.sessions.values()
            if session.user_id == user_id and session.id != except_session_id
        }
        for session_id in ended:
            self._end(session_id, now)
        return self._live_access_tokens(ended, now)

    def _end(self, session_id: str, now: datetime) -> None:
        session = self._tables.sessions.get(session_id)
        if session is not None and session.revoked_at is None:
            self._tables.sessions[session_id] = replace(session, revoked_at=now)

    def _live_access_tokens(
        self, session_ids: set[str], now: datetime
    ) -> list[tuple[str, datetime]]:
        return [
            (token.access_jti, token.access_expires_at)
            for token in self._tables.refresh_tokens.values()
            if token.session_id in session_ids and token.access_expires_at > now
        ]


class FakeRefreshTokenRepository:
    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def add(self, token: RefreshToken) -> None:
        self._tables.refresh_tokens[token.token_hash] = token

    async def get(self, token_hash: str) -> RefreshToken | None:
        return self._tables.refresh_tokens.get(token_hash)

    async def mark_used(self, token_hash: str, now: datetime) -> bool:
        token = self._tables.refresh_tokens.get(token_hash)
        if token is None or token.used_at is not None:
            return False
        self._tables.refresh_tokens[token_hash] = replace(token, used_at=now)
        return True


class FakeOneTimeTokenRepository:
    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def add(self, token: OneTimeToken) -> None:
        self._tables.one_time_tokens[token.token_hash] = token

    async def consume(
        self, token_hash: str, purpose: OneTimePurpose, now: datetime
    ) -> OneTimeToken | None:
        token = self._tables.one_time_tokens.get(token_hash)
        if (
            token is None
            or token.purpose is not purpose
            or token.used_at is not None
            or token.expires_at <= now
        ):
            return None
        used = replace(token, used_at=now)
        self._tables.one_time_tokens[token_hash] = used
        return used

    async def invalidate_for_user(
        self, user_id: str, purpose: OneTimePurpose, now: datetime
    ) -> None:
        for token_hash, token in list(self._tables.one_time_tokens.items()):
            if token.user_id == user_id and token.purpose is purpose and token.used_at is None:
                self._tables.one_time_tokens[token_hash] = replace(token, used_at=now)


class FakeInviteRepository:
    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def add(self, invite: Invite) -> None:
        self._tables.invites[invite.id] = invite

    async def consume(self, code_hash: str, user_id: str, now: datetime) -> bool:
        for invite in self._tables.invites.values():
            if invite.code_hash == code_hash and invite.used_at is None and invite.expires_at > now:
                self._tables.invites[invite.id] = replace(invite, used_by=user_id, used_at=now)
                return True
        return False

    async def list(self, *, limit: int) -> list[Invite]:
        ids = sorted(self._tables.invites, reverse=True)
        return [self._tables.invites[invite_id] for invite_id in ids[:limit]]


class FakeBlobReferences:
    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def acquire(self, sha256: str, size: int) -> None:
        _, refs = self._tables.blobs.get(sha256, (size, 0))
        self._tables.blobs[sha256] = (size, refs + 1)

    async def release(self, sha256: str) -> bool:
        if sha256 not in self._tables.blobs:
            return False
        size, refs = self._tables.blobs[sha256]
        if refs > 1:
            self._tables.blobs[sha256] = (size, refs - 1)
            return False
        del self._tables.blobs[sha256]
        return True

    async def is_referenced(self, sha256: str) -> bool:
        return sha256 in self._tables.blobs

    async def list_referenced(self) -> set[str]:
        return set(self._tables.blobs)


class FakeGroupRepository:
    """The part of GroupRepository the call service uses."""

    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def add(self, group: Group, direct_key: str | None = None) -> None:
        if direct_key is not None:
            if direct_key in self._tables.direct_keys:
                raise Conflict("that conversation exists already", code="conversation_exists")
            self._tables.direct_keys[direct_key] = group.id
        self._tables.groups[group.id] = group

    async def get(self, group_id: str) -> Group | None:
        return self._tables.groups.get(group_id)

    async def get_direct(self, direct_key: str) -> Group | None:
        group_id = self._tables.direct_keys.get(direct_key)
        return None if group_id is None else self._tables.groups.get(group_id)

    def next_change(self, group_id: str) -> int:
        group = self._tables.groups[group_id]
        self._tables.groups[group_id] = replace(group, last_change=group.last_change + 1)
        return group.last_change + 1


class FakeMemberRepository:
    """The part of MemberRepository the call service uses."""

    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def get(self, group_id: str, user_id: str) -> Member | None:
        return self._tables.members.get((group_id, user_id))

    async def add(self, member: Member) -> None:
        key = (member.group_id, member.user_id)
        if key in self._tables.members:
            raise Conflict("that user is a member already", code="already_member")
        self._tables.members[key] = member

    async def remove(self, group_id: str, user_id: str) -> None:
        self._tables.members.pop((group_id, user_id), None)

    async def user_ids(self, group_id: str) -> list[str]:
        return sorted(user for group, user in self._tables.members if group == group_id)


class FakeMessageRepository:
    """The part of MessageRepository the chat service uses; messages are
    read as the SQLite repository reads them: with reactions and quote."""

    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def get(self, message_id: str) -> Message | None:
        message = self._tables.messages.get(message_id)
        return None if message is None else shown(self._tables, message)

    async def before(self, group_id: str, *, before_seq: int | None, limit: int) -> list[Message]:
        found = [
            m
            for m in self._tables.messages.values()
            if m.group_id == group_id and not m.is_deleted and m.seq < (before_seq or 2**62)
        ]
        found.sort(key=lambda m: -m.seq)
        return [shown(self._tables, m) for m in found[:limit]]

    async def newer(self, group_id: str, *, after_seq: int, limit: int) -> list[Message]:
        found = [
            m
            for m in self._tables.messages.values()
            if m.group_id == group_id and not m.is_deleted and m.seq > after_seq
        ]
        found.sort(key=lambda m: m.seq)
        return [shown(self._tables, m) for m in found[:limit]]

    async def update(self, message: Message) -> Message:
        changed = replace(
            message, change=FakeGroupRepository(self._tables).next_change(message.group_id)
        )
        self._tables.messages[message.id] = replace(changed, reactions=(), reply_to=None)
        return changed

    async def touch(self, message: Message) -> Message:
        change = FakeGroupRepository(self._tables).next_change(message.group_id)
        stored = self._tables.messages[message.id]
        self._tables.messages[message.id] = replace(stored, change=change)
        return replace(message, change=change)


class FakeReactionRepository:
    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def add(self, message_id: str, user_id: str, emoji: str, now: datetime) -> bool:
        row = (message_id, user_id, emoji)
        if row in self._tables.reactions:
            return False
        self._tables.reactions.append(row)
        return True

    async def remove(self, message_id: str, user_id: str, emoji: str) -> bool:
        row = (message_id, user_id, emoji)
        if row not in self._tables.reactions:
            return False
        self._tables.reactions.remove(row)
        return True

    async def clear(self, message_id: str) -> None:
        self._tables.reactions[:] = [r for r in self._tables.reactions if r[0] != message_id]


class FakeAttachmentRepository:
    async def detach(self, message_id: str) -> None:
        pass


def shown(tables: FakeTables, message: Message) -> Message:
    """A stored message with its reactions and the quote of what it answers."""
    by_emoji: dict[str, list[str]] = {}
    for message_id, user_id, emoji in tables.reactions:
        if message_id == message.id:
            by_emoji.setdefault(emoji, []).append(user_id)
    quote = None
    answered = tables.messages.get(tables.reply_to.get(message.id, ""))
    if answered is not None and not message.is_deleted:
        quote = Quote.of(answered.id, answered.sender_id, answered.body, answered.is_deleted)
    return replace(
        message,
        reactions=tuple(Reaction(emoji, tuple(users)) for emoji, users in by_emoji.items()),
        reply_to=quote,
    )


class FakeMessageStore:
    """Stores drafts one at a time, with the checks of the group-commit
    store: membership, repeats of a client_id, what a reply answers."""

    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables
        self.drafts: list[NewMessage] = []

    async def add(self, draft: NewMessage) -> StoredMessage:
        self.drafts.append(draft)
        tables = self._tables
        if (draft.group_id, draft.sender_id) not in tables.members:
            raise NotFound("no such group", code="group_not_found")
        for stored in tables.messages.values():
            if draft.client_id is not None and (
                stored.group_id,
                stored.sender_id,
                stored.client_id,
            ) == (draft.group_id, draft.sender_id, draft.client_id):
                return StoredMessage(shown(tables, stored), is_new=False)
        if draft.reply_to_id is not None:
            answered = tables.messages.get(draft.reply_to_id)
            if answered is None or answered.group_id != draft.group_id or answered.is_deleted:
                raise invalid_reply()
            tables.reply_to[draft.id] = draft.reply_to_id
        change = FakeGroupRepository(tables).next_change(draft.group_id)
        group = tables.groups[draft.group_id]
        seq = group.last_seq + 1
        tables.groups[draft.group_id] = replace(group, last_seq=seq)
        message = Message(
            id=draft.id,
            group_id=draft.group_id,
            seq=seq,
            sender_id=draft.sender_id,
            body=draft.body,
            created_at=draft.created_at,
            file_ids=draft.file_ids,
            client_id=draft.client_id,
            change=change,
            created_change=change,
        )
        tables.messages[message.id] = message
        return StoredMessage(shown(tables, message), is_new=True)

    async def close(self) -> None:
        pass


class FakeEventPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Event]] = []  # ("group" | "user", id, event)

    def to_group(self, group_id: str, event: Event) -> None:
        self.sent.append(("group", group_id, event))

    def to_user(self, user_id: str, event: Event) -> None:
        self.sent.append(("user", user_id, event))

    def join(self, user_id: str, group_id: str) -> None:
        self.sent.append(("join", user_id, group_id))  # type: ignore[arg-type]

    def leave(self, user_id: str, group_id: str) -> None:
        self.sent.append(("leave", user_id, group_id))  # type: ignore[arg-type]

    def end_session(self, session_id: str) -> None:
        pass

    def end_user(self, user_id: str) -> None:
        pass

    def to_everyone(self, event: Event) -> None:
        self.sent.append(("everyone", "", event))

    def to_live_room(self, room_id: str, event: Event) -> None:
        self.sent.append(("live", room_id, event))


class FakeRepositories:
    def __init__(self, tables: FakeTables) -> None:
        self.users = FakeUserRepository(tables)
        self.sessions = FakeSessionRepository(tables)
        self.refresh_tokens = FakeRefreshTokenRepository(tables)
        self.one_time_tokens = FakeOneTimeTokenRepository(tables)
        self.invites = FakeInviteRepository(tables)
        self.blobs = FakeBlobReferences(tables)
        self.groups = FakeGroupRepository(tables)
        self.members = FakeMemberRepository(tables)
        self.messages = FakeMessageRepository(tables)
        self.reactions = FakeReactionRepository(tables)
        self.attachments = FakeAttachmentRepository()


class FakeUnitOfWork:
    """Transactions commit when the block ends and restore the snapshot taken
    on entry when it raises. A transaction opened inside another fails the
    test: the real single writer connection would deadlock there."""

    def __init__(self) -> None:
        self.tables = FakeTables()
        self.committed = 0
        self.rolled_back = 0
        self._writing = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeRepositories]:
        if self._writing:
            raise AssertionError("nested write transaction: the single writer would deadlock")
        saved = self.tables.snapshot()
        self._writing = True
        try:
            yield FakeRepositories(self.tables)
        except BaseException:
            self.tables.restore(saved)
            self.rolled_back += 1
            raise
        else:
            self.committed += 1
        finally:
            self._writing = False

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeRepositories]:
        yield FakeRepositories(self.tables)


class FakeRevokedTokenStore:
    def __init__(self) -> None:
        self.revoked: dict[str, datetime] = {}

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        self.revoked[jti] = expires_at

    async def is_revoked(self, jti: str) -> bool:
        return jti in self.revoked


class FakeHasher:
    async def hash(self, password: str) -> str:
        return "hashed:" + password

    async def verify(self, password: str, password_hash: str) -> bool:
        return password_hash == "hashed:" + password


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[MailMessage] = []
        self.failing = False

    async def send(self, message: MailMessage) -> None:
        if self.failing:
            raise Unavailable("the mail server is down", code="mail_unavailable")
        self.sent.append(message)

    def to(self, address: str) -> list[MailMessage]:
        return [message for message in self.sent if message.to == address]


class FakeRateLimiter:
    """Allows everything until told to refuse keys starting with a prefix."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, int, float]] = []
        self._refusals: dict[str, float] = {}

    def refuse(self, retry_after: float, prefix: str = "") -> None:
        self._refusals[prefix] = retry_after

    async def hit(self, key: str, capacity: int, period_seconds: float) -> float:
        self.hits.append((key, capacity, period_seconds))
        for prefix, retry_after in self._refusals.items():
            if key.startswith(prefix):
                return retry_after
        return 0.0


class FakeBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.staged: dict[str, bytes] = {}  # by handle, until promoted or discarded

    async def put(self, chunks: AsyncIterator[bytes], max_size: int) -> tuple[str, int]:
        data = b""
        async for chunk in chunks:
            data += chunk
            if len(data) > max_size:
                raise TooLarge(f"the upload exceeds {max_size} bytes")
        sha256 = hashlib.sha256(data).hexdigest()
        self.blobs[sha256] = data
        return sha256, len(data)

    async def stage(self, chunks: AsyncIterator[bytes], max_size: int) -> StagedBlob:
        data = b""
        async for chunk in chunks:
            data += chunk
            if len(data) > max_size:
                raise TooLarge(f"the upload exceeds {max_size} bytes")
        handle = f"{len(self.staged):032x}"
        self.staged[handle] = data
        return StagedBlob(hashlib.sha256(data).hexdigest(), len(data), handle)

    async def wait_durable(self, staged: Sequence[StagedBlob]) -> None:
        return None

    async def promote(self, staged: StagedBlob) -> None:
        self.blobs[staged.sha256] = self.staged[staged.handle]

    async def promote_many(self, staged: Sequence[StagedBlob]) -> None:
        for item in staged:
            await self.promote(item)

    async def discard(self, staged: StagedBlob) -> None:
        self.staged.pop(staged.handle, None)

    async def read(self, sha256: str) -> bytes:
        return self.blobs[sha256]

    def path(self, sha256: str) -> str:
        return f"/blobs/{sha256}"

    direct_uploads = False

    async def locate(self, sha256: str, served: ServedAs, expires_seconds: int) -> BlobLocation:
        return BlobLocation(path=self.path(sha256))

    async def presign_upload(
        self, handle: str, size: int, content_type: str, expires_seconds: int
    ) -> DirectUpload:
        raise Conflict("no direct uploads here", code="direct_upload_unavailable")

    async def stage_uploaded(
        self, handle: str, max_size: int, feed: Callable[[bytes], None]
    ) -> StagedBlob | None:
        raise Conflict("no direct uploads here", code="direct_upload_unavailable")

    async def remove_stale_staged(self, older_than_seconds: float = 86_400.0) -> int:
        return 0

    async def delete(self, sha256: str) -> None:
        self.blobs.pop(sha256, None)

    async def list_stored(self) -> list[str]:
        return list(self.blobs)


@dataclass
class World:
    """The real services wired to fresh fakes (and the real JWT codec)."""

    accounts: AccountService
    admin: AdminService
    settings: AccountSettings
    uow: FakeUnitOfWork
    revoked: FakeRevokedTokenStore
    mailer: FakeMailer
    limiter: FakeRateLimiter
    blob_store: FakeBlobStore
    clock: FakeClock
    tokens: JwtAccessTokens


INVITE_TTL = 7 * 24 * 3600


def make_world(settings: AccountSettings | None = None) -> World:
    settings = settings or AccountSettings(public_url="https://chat.example.org")
    uow = FakeUnitOfWork()
    revoked = FakeRevokedTokenStore()
    hasher = FakeHasher()
    mailer = FakeMailer()
    limiter = FakeRateLimiter()
    blob_store = FakeBlobStore()
    clock = FakeClock()
    tokens = JwtAccessTokens(JWT_KEY, settings.access_token_ttl)
    accounts = AccountService(
        uow=uow,
        revoked=revoked,
        hasher=hasher,
        tokens=tokens,
        mailer=mailer,
        limiter=limiter,
        blobs=blob_store,
        clock=clock,
        settings=settings,
    )
    admin = AdminService(
        uow=uow, revoked=revoked, hasher=hasher, clock=clock, invite_ttl=INVITE_TTL
    )
    return World(
        accounts=accounts,
        admin=admin,
        settings=settings,
        uow=uow,
        revoked=revoked,
        mailer=mailer,
        limiter=limiter,
        blob_store=blob_store,
        clock=clock,
        tokens=tokens,
    )


@dataclass
class Chat:
    """The real ChatService on fresh fakes, with groups whose owner is "ann"
    and whose other member is "ben"."""

    service: ChatService
    uow: FakeUnitOfWork
    store: FakeMessageStore
    events: FakeEventPublisher
    clock: FakeClock

    def updates(self) -> list[Message]:
        return [e.message for _, _, e in self.events.sent if isinstance(e, MessageUpdated)]


def make_chat(*group_ids: str) -> Chat:
    uow = FakeUnitOfWork()
    store = FakeMessageStore(uow.tables)
    events = FakeEventPublisher()
    clock = FakeClock()
    service = ChatService(
        uow=uow,  # type: ignore[arg-type]
        store=store,
        events=events,
        limiter=FakeRateLimiter(),
        clock=clock,
    )
    for group_id in group_ids:
        uow.tables.groups[group_id] = Group(group_id, "team", GroupKind.GROUP, "ann", START)
        for user_id in ("ann", "ben"):
            role = Role.OWNER if user_id == "ann" else Role.MEMBER
            uow.tables.members[(group_id, user_id)] = Member(group_id, user_id, role, START)
    return Chat(service, uow, store, events, clock)
