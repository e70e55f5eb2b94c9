"""The Protocols use cases are written against.

Repositories, stores and drivers in ``gortc.repositories`` and
``gortc.adapters`` implement them; unit tests implement them with small
hand-written fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gortc.entities.calls import CallParticipant, EndReason, IceServer, MediaKind, TrackInfo
from gortc.entities.events import Event
from gortc.entities.files import SearchHit, StoredFile
from gortc.entities.groups import (
    Group,
    Invitation,
    Member,
    MemberView,
    Message,
    MyGroup,
    NewMessage,
    Role,
    StoredMessage,
)
from gortc.entities.live import LiveRoom, StreamKeyRecord
from gortc.entities.message_search import MessageHit, SearchOrder
from gortc.entities.query_syntax import Query
from gortc.entities.sessions import (
    AccessClaims,
    Invite,
    OneTimePurpose,
    OneTimeToken,
    RefreshToken,
    Session,
)
from gortc.entities.users import User


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class UserRepository(Protocol):
    async def get(self, user_id: str) -> User | None: ...

    async def get_by_login(self, login: str) -> User | None:
        """The user whose username or email is ``login`` (case-insensitive)."""
        ...

    async def add(self, user: User) -> None:
        """Raises Conflict (code username_taken or email_taken)."""
        ...

    async def update(self, user: User) -> None:
        """Replaces every mutable field; raises Conflict on a taken email."""
        ...

    async def search_candidates(self, folded_query: str, *, enough: int) -> list[User]:
        """Enabled users whose names may match ``folded_query`` (see
        entities/name_search.py), in no particular order: a bounded set the
        caller ranks with ``score_name``. Names merely similar to the query
        are left out when ``enough`` names contain it."""
        ...

    async def list(self, *, limit: int, after: str | None = None) -> list[User]:
        """Users ordered by id, those with id > ``after``."""
        ...

    async def count(self) -> int: ...


class SessionRepository(Protocol):
    async def add(self, session: Session) -> None: ...

    async def get(self, session_id: str) -> Session | None: ...

    async def revoke(self, session_id: str, now: datetime) -> list[tuple[str, datetime]]:
        """Ends a session; returns (jti, expires_at) of its unexpired access tokens."""
        ...

    async def active_ids_for_user(self, user_id: str, now: datetime) -> list[str]: ...

    async def active_for_user(
        self, user_id: str, now: datetime
    ) -> list[tuple[Session, datetime | None]]:
        """The user's unended sign-ins, newest first, each with when it last
        renewed its tokens (None for a cookie session or one never renewed)."""
        ...

    async def revoke_all_for_user(
        self, user_id: str, now: datetime, *, except_session_id: str | None = None
    ) -> list[tuple[str, datetime]]:
        """Ends every session of the user but ``except_session_id``; returns
        their unexpired access tokens."""
        ...


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def get(self, token_hash: str) -> RefreshToken | None: ...

    async def mark_used(self, token_hash: str, now: datetime) -> bool:
        """Marks an unused token used; False if it was already used (a reuse)."""
        ...


class OneTimeTokenRepository(Protocol):
    async def add(self, token: OneTimeToken) -> None: ...

    async def consume(
        self, token_hash: str, purpose: OneTimePurpose, now: datetime
    ) -> OneTimeToken | None:
        """Marks a matching, unused, unexpired token used and returns it; else None."""
        ...

    async def invalidate_for_user(
        self, user_id: str, purpose: OneTimePurpose, now: datetime
    ) -> None:
        """Marks every outstanding token of that purpose used (superseded)."""
        ...


class InviteRepository(Protocol):
    async def add(self, invite: Invite) -> None: ...

    async def consume(self, code_hash: str, user_id: str, now: datetime) -> bool:
        """Uses an unused, unexpired invite for ``user_id``; False if there is none."""
        ...

    async def list(self, *, limit: int) -> list[Invite]: ...


class BlobReferences(Protocol):
    """Reference counts of content-addressed blobs."""

    async def acquire(self, sha256: str, size: int) -> None:
        """Adds one reference, registering the blob on its first."""
        ...

    async def release(self, sha256: str) -> bool:
        """Drops one reference; True when that was the last (delete the bytes)."""
        ...

    async def is_referenced(self, sha256: str) -> bool: ...

    async def list_referenced(self) -> set[str]:
        """The hash of every blob something references."""
        ...


class FileRepository(Protocol):
    """The personal file store. Every method but ``get_readable`` takes the
    owner: another owner's file is, to it, a file that does not exist."""

    async def add(self, file: StoredFile, text: str | None) -> None:
        """Stores a file; a searchable one is indexed (name and ``text``) in
        the same transaction."""
        ...

    async def add_many(self, files: Sequence[tuple[StoredFile, str | None]]) -> None:
        """``add`` for the files of one upload, indexed together."""
        ...

    async def get(self, owner_id: str, file_id: str) -> StoredFile | None: ...

    async def get_readable(self, user_id: str, file_id: str) -> StoredFile | None:
        """The file if ``user_id`` may read it: its owner, or a member of a
        group in which a message (not deleted) carries it. None otherwise."""
        ...

    async def rename(
        self, owner_id: str, file_id: str, name: str, updated_at: datetime
    ) -> StoredFile | None:
        """Renames (and re-indexes) a file; None if the owner has no such file."""
        ...

    async def delete(self, owner_id: str, file_id: str) -> StoredFile | None:
        """Removes the file and its index entry; returns what was removed."""
        ...

    async def usage(self, owner_id: str) -> tuple[int, int]:
        """(bytes, files) the owner stores."""
        ...

    async def search(
        self, owner_id: str, query: Query, *, limit: int, offset: int
    ) -> list[SearchHit]:
        """The owner's files matching ``query``, best first."""
        ...

    # Last: below it, "list" in an annotation would mean this method.
    async def list(
        self, owner_id: str, *, limit: int, before: str | None = None
    ) -> list[StoredFile]:
        """The owner's files newest first, those with id < ``before``."""
        ...


class AttachmentRepository(Protocol):
    """Files carried by messages (stored with the message by MessageStore)."""

    async def detach(self, message_id: str) -> None:
        """Forgets the message's files: its group stops having access to them."""
        ...


class UsedUploadUrls(Protocol):
    """Nonces of signed upload URLs that have stored their file."""

    async def is_used(self, nonce: str) -> bool: ...

    async def use(self, nonce: str, expires_at: datetime) -> bool:
        """Records the nonce (kept until ``expires_at``); False if it was
        recorded already (the URL was used)."""
        ...


class GroupRepository(Protocol):
    async def add(self, group: Group, direct_key: str | None = None) -> None:
        """Raises Conflict when a direct conversation with that key exists."""
        ...

    async def get(self, group_id: str) -> Group | None: ...

    async def get_direct(self, direct_key: str) -> Group | None: ...

    async def rename(self, group_id: str, name: str) -> None: ...

    async def set_owner(self, group_id: str, owner_id: str) -> None: ...

    async def delete(self, group_id: str) -> None: ...

    async def get_for_user(self, user_id: str, group_id: str) -> MyGroup | None:
        """The group as that member sees it; None if not a member."""
        ...

    async def list_for_user(
        self, user_id: str, *, limit: int, after: str | None = None
    ) -> list[MyGroup]:
        """The user's groups by id, with their role, read marker and unread count."""
        ...


class MemberRepository(Protocol):
    async def get(self, group_id: str, user_id: str) -> Member | None: ...

    async def add(self, member: Member) -> None:
        """Raises Conflict when the user is already a member."""
        ...

    async def set_role(self, group_id: str, user_id: str, role: Role) -> None: ...

    async def remove(self, group_id: str, user_id: str) -> None: ...

    async def user_ids(self, group_id: str) -> list[str]: ...

    async def group_ids_for_user(self, user_id: str) -> list[str]: ...

    async def mark_read(self, group_id: str, user_id: str, seq: int) -> int:
        """Moves the read marker forward (never back); returns where it is."""
        ...

    async def list(self, group_id: str) -> list[MemberView]: ...


class InvitationRepository(Protocol):
    async def add(self, invitation: Invitation) -> None:
        """Raises Conflict when that user is already invited to that group."""
        ...

    async def get(self, invitation_id: str) -> Invitation | None: ...

    async def delete(self, invitation_id: str) -> None: ...

    async def delete_for(self, group_id: str, user_id: str) -> None: ...

    async def list_for_user(self, user_id: str) -> list[Invitation]: ...

    async def list_for_group(self, group_id: str) -> list[Invitation]:
        """The group's pending invitations, oldest first."""
        ...


class MessageRepository(Protocol):
    async def get(self, message_id: str) -> Message | None: ...

    async def before(self, group_id: str, *, before_seq: int | None, limit: int) -> list[Message]:
        """Undeleted messages with seq < before_seq (or the newest), newest first."""
        ...

    async def newer(self, group_id: str, *, after_seq: int, limit: int) -> list[Message]:
        """Undeleted messages with seq > after_seq, oldest first."""
        ...

    async def after(self, group_id: str, *, after_seq: int, limit: int) -> list[Message]:
        """Messages with seq > after_seq in order, deleted ones included."""
        ...

    async def changed_after(self, group_id: str, *, after_change: int, limit: int) -> list[Message]:
        """Messages whose latest change is above ``after_change``, in change
        order, deleted ones included."""
        ...

    async def update(self, message: Message) -> Message:
        """Stores the body and the edit and deletion times. The change takes
        the next number of the group's change counter; returns the message
        as stored, with that number."""
        ...

    async def touch(self, message: Message) -> Message:
        """Gives the message the next number of its group's change counter,
        changing nothing else (its reactions changed); returns it with that
        number."""
        ...

    async def search(
        self,
        user_id: str,
        query: Query,
        *,
        group_id: str | None,
        order: SearchOrder,
        below: int | None,
        offset: int,
        limit: int,
    ) -> list[MessageHit]:
        """Undeleted messages matching ``query`` in the groups ``user_id`` is
        a member of (``group_id`` only, if given). Newest first, positions
        below ``below``; or by relevance, after ``offset`` hits."""
        ...


class ReactionRepository(Protocol):
    """Emojis on messages; messages are read with theirs (Message.reactions)."""

    async def add(self, message_id: str, user_id: str, emoji: str, now: datetime) -> bool:
        """False when that user had put that emoji there already."""
        ...

    async def remove(self, message_id: str, user_id: str, emoji: str) -> bool:
        """False when there was no such reaction."""
        ...

    async def clear(self, message_id: str) -> None:
        """Every reaction to the message (it is being deleted)."""
        ...


class MessageStore(Protocol):
    """Stores new messages; concurrent calls share transactions (group commit)."""

    async def add(self, draft: NewMessage) -> StoredMessage:
        """The stored message with its seq, once committed; or, when the
        sender already stored one with the draft's client_id in that group,
        that one (``is_new`` False). Raises NotFound when the group no longer
        exists or the sender is not a member, and NotFound (file_not_found)
        when one of the draft's file_ids is not a file of the sender, and
        InvalidInput (invalid_reply) when its reply_to_id is not a message
        of the group, or a deleted one; the draft's files are stored with
        it, in the same transaction."""
        ...

    async def close(self) -> None:
        """Waits for the messages being stored."""
        ...


class EventPublisher(Protocol):
    """Sends events to the connected clients (on every instance)."""

    def to_group(self, group_id: str, event: Event) -> None: ...

    def to_user(self, user_id: str, event: Event) -> None: ...

    def join(self, user_id: str, group_id: str) -> None:
        """The user's open connections start receiving the group's events."""
        ...

    def leave(self, user_id: str, group_id: str) -> None: ...

    def end_session(self, session_id: str) -> None:
        """Closes the connections opened with that sign-in."""
        ...

    def end_user(self, user_id: str) -> None:
        """Closes every connection of the user."""
        ...

    def to_everyone(self, event: Event) -> None:
        """Every connected client (e.g. a stream going live)."""
        ...

    def to_live_room(self, room_id: str, event: Event) -> None:
        """The clients watching a live room."""
        ...


class PresenceQuery(Protocol):
    """Who is connected now (on any instance)."""

    async def online_users(self, user_ids: Collection[str]) -> set[str]:
        """Those of ``user_ids`` with an open connection anywhere. Never
        raises: when the shared registry is unreachable, the answer is what
        this instance knows."""
        ...


class StreamKeyRepository(Protocol):
    async def get(self, user_id: str) -> StreamKeyRecord | None: ...

    async def owner_of(self, key_hash: str) -> StreamKeyRecord | None:
        """The record whose current key hashes to ``key_hash``."""
        ...

    async def put(self, user_id: str, nonce: str, key_hash: str, now: datetime) -> None:
        """Replaces the user's key (the old one stops matching at once)."""
        ...

    async def set_title(self, user_id: str, title: str) -> bool: ...

    async def set_public(self, user_id: str, public: bool) -> bool: ...


class Repositories(Protocol):
    """The repositories of one unit of work, all on one connection."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    @property
    def one_time_tokens(self) -> OneTimeTokenRepository: ...

    @property
    def invites(self) -> InviteRepository: ...

    @property
    def blobs(self) -> BlobReferences: ...

    @property
    def groups(self) -> GroupRepository: ...

    @property
    def members(self) -> MemberRepository: ...

    @property
    def invitations(self) -> InvitationRepository: ...

    @property
    def messages(self) -> MessageRepository: ...

    @property
    def reactions(self) -> ReactionRepository: ...

    @property
    def files(self) -> FileRepository: ...

    @property
    def attachments(self) -> AttachmentRepository: ...

    @property
    def used_upload_urls(self) -> UsedUploadUrls: ...

    @property
    def stream_keys(self) -> StreamKeyRepository: ...


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Repositories]:
        """A write transaction: committed when the block ends, rolled back on error."""
        ...

    def reading(self) -> AbstractAsyncContextManager[Repositories]:
        """Read-only access that does not wait for writers."""
        ...


class RevokedTokenStore(Protocol):
    """Access token ids that stop working before they expire."""

    async def revoke(self, jti: str, expires_at: datetime) -> None: ...

    async def is_revoked(self, jti: str) -> bool: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str) -> bool: ...


class Signer(Protocol):
    """Signs short lists of text with a key of the server's (signed URLs)."""

    def sign(self, fields: Sequence[str]) -> str:
        """A URL-safe signature of the fields, in order; no two different
        lists share their signing input."""
        ...

    def verify(self, fields: Sequence[str], signature: str) -> bool:
        """Whether ``signature`` is ``sign(fields)``, compared in constant time."""
        ...


class AccessTokenCodec(Protocol):
    def issue(self, user_id: str, session_id: str, now: datetime) -> tuple[str, AccessClaims]:
        """A signed access token and the claims inside it."""
        ...

    def verify(self, token: str, now: datetime) -> AccessClaims:
        """Raises Unauthenticated when the token is malformed, forged or expired."""
        ...


@dataclass(frozen=True, slots=True)
class MailMessage:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, message: MailMessage) -> None:
        """Delivers the message; raises Unavailable when the mail server fails."""
        ...


class RateLimiter(Protocol):
    async def hit(self, key: str, capacity: int, period_seconds: float) -> float:
        """Takes one token from the bucket ``key`` (``capacity`` tokens refilled
        evenly over ``period_seconds``); 0 if allowed, else seconds to wait."""
        ...


@dataclass(frozen=True, slots=True)
class StagedBlob:
    """Bytes written but not yet under their name (see BlobStore.stage)."""

    sha256: str
    size: int
    handle: str  # the store's own reference to the staged bytes


@dataclass(frozen=True, slots=True)
class ServedAs:
    """The headers a download of a blob is answered with, wherever its bytes
    come from (the server, or the object store by a presigned URL)."""

    content_type: str
    cache_control: str
    content_disposition: str | None = None


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where a client gets a blob's bytes: exactly one of a local file the
    server streams, or a short-lived URL of the object store it redirects to."""

    path: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class DirectUpload:
    """A presigned request that puts bytes straight into the object store."""

    url: str
    method: str
    headers: dict[str, str]


class BlobStore(Protocol):
    """Bytes on disk (or elsewhere) named by their SHA-256."""

    @property
    def direct_uploads(self) -> bool:
        """Whether clients can put bytes straight into the store
        (``presign_upload``); the local disk cannot."""
        ...

    async def put(self, chunks: AsyncIterator[bytes], max_size: int) -> tuple[str, int]:
        """Stores the stream; returns (sha256, size). Raises TooLarge past max_size."""
        ...

    async def stage(self, chunks: AsyncIterator[bytes], max_size: int) -> StagedBlob:
        """Writes the stream aside, hashing it; raises TooLarge past max_size.
        Nothing is visible under the hash until ``promote``: call that in the
        write transaction that takes the reference, so that deleting an
        unreferenced blob (also in a write transaction) cannot remove bytes
        a concurrent upload is about to reference."""
        ...

    async def promote(self, staged: StagedBlob) -> None:
        """Puts staged bytes under their hash (identical bytes may be there)."""
        ...

    async def promote_many(self, staged: Sequence[StagedBlob]) -> None:
        """``promote`` for several at once."""
        ...

    async def wait_durable(self, staged: Sequence[StagedBlob]) -> None:
        """Returns once staged bytes are safely on disk. ``promote`` waits for
        it too; calling it before the write transaction keeps that wait out
        of the writer lock."""
        ...

    async def discard(self, staged: StagedBlob) -> None:
        """Forgets staged bytes; harmless after promote."""
        ...

    async def read(self, sha256: str) -> bytes: ...

    async def locate(self, sha256: str, served: ServedAs, expires_seconds: int) -> BlobLocation:
        """Where a client gets the bytes: a local file, or a URL valid for
        ``expires_seconds`` that answers with ``served``'s headers."""
        ...

    async def presign_upload(
        self, handle: str, size: int, content_type: str, expires_seconds: int
    ) -> DirectUpload:
        """A request a client makes to put exactly ``size`` bytes aside under
        ``handle`` (a token of 16-64 URL-safe characters). Raises
        Conflict ``direct_upload_unavailable`` when ``direct_uploads`` is false."""
        ...

    async def stage_uploaded(
        self, handle: str, max_size: int, feed: Callable[[bytes], None]
    ) -> StagedBlob | None:
        """The bytes a client put under ``handle``, read once (each chunk
        given to ``feed``), hashed and staged as ``stage`` would have: None
        if nothing is there. Raises TooLarge past ``max_size`` (the bytes
        are removed); ``discard`` of the result removes them too."""
        ...

    async def remove_stale_staged(self, older_than_seconds: float = 86_400.0) -> int:
        """Deletes staged bytes left behind (a crash, an upload never
        confirmed); returns how many."""
        ...

    async def delete(self, sha256: str) -> None: ...

    async def list_stored(self) -> list[str]:
        """The hash of every blob under its final name (staged bytes aside)."""
        ...


# -- calls --------------------------------------------------------------------


class CallSignals(Protocol):
    """One participant's signaling channel (their WebSocket): what the call
    service tells that client about its call."""

    def answer(self, group_id: str, sdp: str, ice_servers: Sequence[IceServer]) -> None:
        """The server's answer to the client's call.join offer."""
        ...

    def offer(self, group_id: str, sdp: str, tracks: Sequence[TrackInfo]) -> None:
        """A new offer from the server (others' tracks came or went)."""
        ...

    def ended(self, group_id: str, reason: EndReason) -> None:
        """The client is no longer in the call."""
        ...


class MediaSessionEvents(Protocol):
    """What a media router tells the call service about one participant."""

    def offer(self, sdp: str, tracks: Sequence[TrackInfo]) -> None:
        """Send this offer to the participant; answer() brings the reply."""
        ...

    def failed(self, reason: EndReason) -> None:
        """The participant's media path broke (ICE failed, no answer in time)."""
        ...


class MediaRouter(Protocol):
    """The SFU: one media session per participant of a room, each one's
    tracks forwarded to all the others without re-encoding."""

    async def join(
        self, room_id: str, participant_id: str, offer_sdp: str, events: MediaSessionEvents
    ) -> str:
        """Accepts the participant's offer (its own tracks) and returns the
        answer. Raises InvalidInput (invalid_sdp) for an unusable offer.
        Nothing is forwarded until start()."""
        ...

    def start(self, room_id: str, participant_id: str) -> None:
        """Begins forwarding between the participant and the rest of the
        room (offers follow through the events). Call it once the client has
        the answer."""
        ...

    async def answer(self, room_id: str, participant_id: str, sdp: str) -> None:
        """The participant's answer to the last offer. Raises InvalidInput
        (invalid_sdp), or Conflict (no_offer_pending) when no offer waits."""
        ...

    def set_muted(self, room_id: str, participant_id: str, kind: MediaKind, muted: bool) -> None:
        """Stops (or resumes) forwarding the participant's tracks of a kind."""
        ...

    async def leave(self, room_id: str, participant_id: str) -> None:
        """Closes the participant's session; harmless if there is none."""
        ...

    async def close(self) -> None:
        """Closes every session."""
        ...


class CallPlacement(Protocol):
    """Which server instance hosts each group's call (one per group)."""

    async def claim(self, group_id: str) -> str | None:
        """None when this instance hosts the call (now or already); else the
        WebSocket URL of the instance that does."""
        ...

    async def release(self, group_id: str) -> None:
        """The call is over here."""
        ...

    async def publish(self, group_id: str, participants: Sequence[CallParticipant]) -> None:
        """Records who is in a call hosted here, for the other instances."""
        ...

    async def participants(self, group_id: str) -> tuple[CallParticipant, ...] | None:
        """Who is in a call hosted elsewhere (None: no call known)."""
        ...

    async def close(self) -> None: ...


class IceServerSource(Protocol):
    def servers_for(self, user_id: str) -> list[IceServer]:
        """The STUN/TURN servers this user's client should use (TURN
        credentials may be made per user)."""
        ...


# -- live streaming -----------------------------------------------------------


class LiveRegistry(Protocol):
    """The streams live now, on every instance."""

    async def add(self, room: LiveRoom) -> bool:
        """False when that room is already live (one publisher per key)."""
        ...

    async def remove(self, room_id: str) -> None: ...

    async def get(self, room_id: str) -> LiveRoom | None: ...

    async def rooms(self) -> list[LiveRoom]:
        """Oldest first."""
        ...

    async def set_viewers(self, room_id: str, viewers: int) -> None: ...

    async def close(self) -> None: ...


class LiveMedia(Protocol):
    """Live rooms over WebRTC: WHIP publishers and WHEP viewers."""

    async def publish(self, room_id: str, offer_sdp: str, on_gone: Callable[[], None]) -> str:
        """A WHIP publisher's offer; the answer. Raises InvalidInput
        (invalid_sdp). ``on_gone`` runs if its connection fails or closes."""
        ...

    async def watch(self, room_id: str, offer_sdp: str, viewer_id: str) -> tuple[str, str]:
        """A WHEP viewer's offer: (resource id, answer). Raises NotFound
        (not_live) when the room has no media, InvalidInput (invalid_sdp)."""
        ...

    async def stop_watching(self, room_id: str, resource: str, viewer_id: str) -> bool:
        """Ends the viewing session if it is ``viewer_id``'s; False when
        there is none that is theirs."""
        ...

    async def end_room(self, room_id: str) -> None:
        """Closes the room's publisher connection and viewers (if any)."""
        ...
