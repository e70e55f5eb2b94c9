"""Live streaming: stream keys, who is live, and who is watching.

A streamer's key is shown to them alone and can be replaced at any moment
(the old one stops working for new publishes at once). The media side
(RTMP/WHIP ingest, HLS packaging) calls :meth:`LiveService.start` when a
publisher presents a key and :meth:`LiveService.end` when it stops; the
room is announced to everyone connected (``live.started``/``live.ended``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from gortc.entities.errors import InvalidInput, NotFound, RateLimited, Unauthenticated
from gortc.entities.events import LiveChatPosted, LiveEnded, LiveStarted
from gortc.entities.live import LiveRoom, already_live, clean_title
from gortc.entities.opaque_tokens import hash_opaque_token
from gortc.usecases.ports import (
    Clock,
    EventPublisher,
    LiveMedia,
    LiveRegistry,
    RateLimiter,
    Signer,
    UnitOfWork,
)
from gortc.usecases.viewer_tokens import ViewerTokens, viewer_token_expired

KEY_PREFIX = "live_"
# A viewer counts while they fetched the playlist this recently (players
# fetch it every segment, i.e. every 1–2 s).
VIEWER_SECONDS = 10.0
CHAT_MAX = 500
CHAT_BURST = 5  # lines at once, then
CHAT_PER_SECOND = 1.0  # refilled at this rate
# A player that reloaded a room's playlist with a viewer token this
# recently may go on reloading it past the token's expiry (see admit_viewer).
PLAYING_SECONDS = 60.0
# What an instance signs when it tells another how many viewers it relays
# one of its rooms to (under the stream-key signer's key, a label of its own).
_REPORT = "relayed viewers v1"


@dataclass(frozen=True, slots=True)
class LiveSettings:
    rtmp_url: str  # rtmp://host:port/live, the URL without the key
    # With several instances: this one's server.instance_url (where the
    # others fetch the HLS and pass the WHEP viewers of the rooms it
    # ingests), and its server.public_url (where live.started's hls_url
    # points); both empty with one instance (URLs relative to it).
    instance: str = ""
    public_url: str = ""


@dataclass(frozen=True, slots=True)
class StreamKey:
    stream_key: str
    rtmp_url: str  # with the key: paste as OBS's server + key, or as a whole URL
    server_url: str  # without it: OBS's "Server" field
    title: str
    public: bool = False  # anyone plays the room, signed in or not


class LiveService:
    def __init__(
        self,
        *,
        uow: UnitOfWork,
        signer: Signer,
        viewer_tokens: ViewerTokens,
        registry: LiveRegistry,
        events: EventPublisher,
        clock: Clock,
        settings: LiveSettings,
        media: LiveMedia | None = None,
        limiter: RateLimiter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._media = media
        self._limiter = limiter
        self._tasks: set[asyncio.Task[None]] = set()
        self._uow = uow
        self._signer = signer
        self._viewer_tokens = viewer_tokens
        self._registry = registry
        self._events = events
        self._clock = clock
        self._settings = settings
        self._monotonic = monotonic
        # room id -> viewer -> when last seen (rooms ingested here)
        self._viewers: dict[str, dict[str, float]] = {}
        # room id -> viewer token (its signature) -> when a playlist was
        # last fetched with it (rooms ingested here)
        self._playing: dict[str, dict[str, float]] = {}
        # Rooms another instance ingests: room id -> viewer -> when last
        # seen here (what this instance tells the ingesting one).
        self._viewers_elsewhere: dict[str, dict[str, float]] = {}
        # Rooms ingested here: room id -> relaying instance -> (its viewers,
        # when it said so).
        self._relayed_viewers: dict[str, dict[str, tuple[int, float]]] = {}

    # -- the streamer's key ---------------------------------------------------

    async def stream_key(self, user_id: str) -> StreamKey:
        """The user's key (made on first asking)."""
        async with self._uow.reading() as repos:
            record = await repos.stream_keys.get(user_id)
        if record is None:
            return await self.new_stream_key(user_id)
        return self._shown(user_id, record.nonce, record.title, record.public)

    async def new_stream_key(self, user_id: str) -> StreamKey:
        """Replaces the user's key; the old one is refused from now on."""
        nonce = secrets.token_urlsafe(12)
        key = self._key(user_id, nonce)
        async with self._uow.transaction() as repos:
            await repos.stream_keys.put(user_id, nonce, hash_opaque_token(key), self._clock.now())
            record = await repos.stream_keys.get(user_id)
        return self._shown(
            user_id, nonce, record.title if record else "", record.public if record else False
        )

    async def set_title(self, user_id: str, title: str) -> StreamKey:
        cleaned = clean_title(title)
        await self.stream_key(user_id)  # the row exists from here on
        async with self._uow.transaction() as repos:
            await repos.stream_keys.set_title(user_id, cleaned)
        return await self.stream_key(user_id)

    async def set_public(self, user_id: str, public: bool) -> StreamKey:
        """Makes the user's room public (anyone plays its HLS without
        signing in) or not; at once, for a stream under way too: a player
        of its token-free URL is refused from its next fetch on."""
        await self.stream_key(user_id)  # the row exists from here on
        async with self._uow.transaction() as repos:
            await repos.stream_keys.set_public(user_id, public)
        return await self.stream_key(user_id)

    async def is_public(self, room_id: str) -> bool:
        """Whether anyone may play the room (its streamer made it public)."""
        async with self._uow.reading() as repos:
            record = await repos.stream_keys.get(room_id)
        return record is not None and record.public

    # -- publishing -------------------------------------------------------------

    async def start(self, stream_key: str) -> LiveRoom:
        """A publisher presents a key: its owner's room goes live. Raises
        Unauthenticated (invalid_stream_key) for a wrong, replaced or
        disabled owner's key, Conflict (already_live) when that key is
        publishing already."""
        if not stream_key.startswith(KEY_PREFIX) or len(stream_key) > 100:
            raise _invalid_key()
        async with self._uow.reading() as repos:
            record = await repos.stream_keys.owner_of(hash_opaque_token(stream_key))
            user = await repos.users.get(record.user_id) if record else None
        if record is None or user is None or user.disabled_at is not None:
            raise _invalid_key()
        room = LiveRoom(
            id=user.id,
            user_id=user.id,
            username=user.username,
            title=record.title or f"{user.display_name or user.username} is live",
            started_at=self._clock.now(),
            instance=self._settings.instance,
        )
        if not await self._registry.add(room):
            raise already_live()
        self._viewers[room.id] = {}
        self._playing[room.id] = {}
        self._events.to_everyone(LiveStarted(room, hls_base=self._settings.public_url))
        return room

    async def end(self, room_id: str, reason: str = "ended") -> None:
        """The publisher stopped (or was cut off, or its stream broke)."""
        if self._viewers.pop(room_id, None) is None:
            return  # not live here (or already ended)
        self._playing.pop(room_id, None)
        self._relayed_viewers.pop(room_id, None)
        if self._media is not None:
            await self._media.end_room(room_id)
        await self._registry.remove(room_id)
        self._events.to_everyone(LiveEnded(room_id, reason))

    # -- WebRTC: WHIP publishers, WHEP viewers ------------------------------

    async def whip_publish(self, stream_key: str, offer_sdp: str) -> tuple[LiveRoom, str]:
        """A WHIP publisher (OBS 30+): its key opens its room, as over RTMP."""
        media = self._require_media()
        room = await self.start(stream_key)
        try:
            answer = await media.publish(room.id, offer_sdp, lambda: self._end_soon(room.id))
        except BaseException:
            await self.end(room.id, "broken")
            raise
        return room, answer

    async def whip_stop(self, stream_key: str, room_id: str) -> None:
        """The WHIP publisher's DELETE: only with the room's own key."""
        async with self._uow.reading() as repos:
            record = await repos.stream_keys.owner_of(hash_opaque_token(stream_key))
        if record is None or record.user_id != room_id:
            raise _invalid_key()
        await self.end(room_id)

    async def whep_watch(self, user_id: str, room_id: str, offer_sdp: str) -> tuple[str, str]:
        """A WHEP viewer: (resource id, answer)."""
        media = self._require_media()
        await self.room(room_id)
        resource, answer = await media.watch(room_id, offer_sdp, user_id)
        self.watching(room_id, user_id)
        return resource, answer

    async def whep_stop(self, user_id: str, room_id: str, resource: str) -> None:
        """Ends the caller's own viewing session. Someone else's answers
        as one that does not exist: a session is its viewer's, like the
        WHIP resource is its publisher's (only their stream key ends it)."""
        media = self._require_media()
        if not await media.stop_watching(room_id, resource, user_id):
            raise NotFound("no such viewing session", code="not_found")

    def _require_media(self) -> LiveMedia:
        if self._media is None:
            raise NotFound("WebRTC live streaming is off on this server", code="not_found")
        return self._media

    def _end_soon(self, room_id: str) -> None:
        task = asyncio.create_task(self.end(room_id, "ended"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def rooms(self) -> list[LiveRoom]:
        return await self._registry.rooms()

    async def ingested_elsewhere(self, room_id: str) -> str | None:
        """The instance_url of the instance that ingests the room, when that
        is another instance (its HLS and WHEP are relayed from there);
        None when the room is ingested here or nobody is live there."""
        if room_id in self._viewers:
            return None
        room = await self._registry.get(room_id)
        if room is None or not room.instance or room.instance == self._settings.instance:
            return None
        return room.instance

    async def room(self, room_id: str) -> LiveRoom:
        room = await self._registry.get(room_id)
        if room is None:
            raise NotFound("nobody is live there", code="not_live")
        return room

    async def chat(
        self, user_id: str, room_id: str, body: str, client_id: str | None = None
    ) -> LiveChatPosted:
        """A line in a live room's chat, told to its watchers (not stored:
        a live room's chat lasts as long as its stream)."""
        text = body.strip()
        if not text or len(text) > CHAT_MAX:
            raise InvalidInput(f"a chat line has 1 to {CHAT_MAX} characters", code="invalid_body")
        if self._limiter is not None:
            wait = await self._limiter.hit(
                f"live-chat:{user_id}", CHAT_BURST, CHAT_BURST / CHAT_PER_SECOND
            )
            if wait > 0:
                raise RateLimited("you are chatting too fast", retry_after=wait)
        await self.room(room_id)
        async with self._uow.reading() as repos:
            user = await repos.users.get(user_id)
        if user is None:
            raise Unauthenticated("sign in first")
        line = LiveChatPosted(
            room_id=room_id,
            user_id=user_id,
            username=user.username,
            body=text,
            sent_at=self._clock.now(),
            client_id=client_id,
        )
        self._events.to_live_room(room_id, line)
        return line

    # -- viewer tokens: playing without headers or cookies ---------------------

    def viewer_token(self, room_id: str, user_id: str, session_id: str) -> str:
        """A token that lets a plain HLS player play the room as this
        viewer, for ``live.viewer_token_seconds`` and while the sign-in
        ``session_id`` lives."""
        return self._viewer_tokens.mint(room_id, user_id, session_id)

    async def admit_viewer(self, room_id: str, token: str, *, playlist: bool) -> tuple[str, str]:
        """The (user id, session id) a viewer token stands for, if it may
        fetch the room's playlist (``playlist``) or a segment now.

        Raises Unauthenticated: ``invalid_viewer_token`` (not made by us for
        this room), ``viewer_token_expired``, ``session_ended`` (the viewer
        signed out, or their sign-in was ended by a password change or a
        disabled account).

        A player reloads the playlist at the URL it was given, whose token
        was fixed when the URL was: so an expired token still fetches the
        playlist while the same player keeps reloading it (a fetch with it,
        before or after the expiry, less than PLAYING_SECONDS ago, on a
        room ingested here) and the sign-in lives. Segments need a token
        that has not expired: each playlist lists them with a fresh one.
        """
        claim = self._viewer_tokens.verify(room_id, token)
        if self._viewer_tokens.expired(claim):
            seen = self._playing.get(room_id, {}).get(claim.signature)
            if not playlist or seen is None or self._monotonic() - seen > PLAYING_SECONDS:
                raise viewer_token_expired()
        async with self._uow.reading() as repos:
            session = await repos.sessions.get(claim.session_id)
        if (
            session is None
            or session.user_id != claim.user_id
            or not session.is_active(self._clock.now())
        ):
            raise Unauthenticated(
                "the sign-in this viewer token was made for has ended; sign in again",
                code="session_ended",
            )
        if playlist:
            # Noted for a room ingested elsewhere too: behind a load balancer
            # a player's reloads reach any instance, and each one that
            # served it lets it go on past the expiry (pruned by
            # count_viewers; only tokens with our signature get here).
            self._playing.setdefault(room_id, {})[claim.signature] = self._monotonic()
        return claim.user_id, claim.session_id

    def watching(self, room_id: str, viewer: str) -> bool:
        """A viewer fetched the room's playlist here; False when the room is
        not ingested here (no such stream)."""
        seen = self._viewers.get(room_id)
        if seen is None:
            return False
        seen[viewer] = self._monotonic()
        return True

    def watching_elsewhere(self, room_id: str, viewer: str) -> int:
        """A viewer fetched the playlist of a room another instance ingests
        through this one: how many different viewers did lately."""
        seen = self._viewers_elsewhere.setdefault(room_id, {})
        now = self._monotonic()
        seen[viewer] = now
        cutoff = now - VIEWER_SECONDS
        return sum(1 for at in seen.values() if at >= cutoff)

    def viewers_report(self, room_id: str, viewers: int) -> str:
        """What this instance tells the one that ingests the room about its
        own viewers of it (with each relayed playlist fetch): signed with
        the instances' shared secret, so a viewer cannot make one up to
        inflate a room's count."""
        relay = self._settings.instance
        signature = self._signer.sign([_REPORT, room_id, relay, str(viewers)])
        return f"{viewers} {relay} {signature}"

    def relayed_viewers(self, room_id: str, report: str) -> None:
        """Another instance relays the room, ingested here, to viewers of
        its own (``viewers_report``): counted with this instance's. A
        report that is not one is ignored."""
        parts = report.split(" ")
        if room_id not in self._viewers or len(parts) != 3:
            return
        viewers, relay, signature = parts
        if not (viewers.isdigit() and len(viewers) <= 7 and len(relay) <= 2000):
            return
        if self._signer.verify([_REPORT, room_id, relay, viewers], signature):
            self._relayed_viewers.setdefault(room_id, {})[relay] = (
                int(viewers),
                self._monotonic(),
            )

    def ingests(self, room_id: str) -> bool:
        """Whether the room is live and ingested here."""
        return room_id in self._viewers

    async def count_viewers(self) -> None:
        """Publishes each room's viewer count (call every few seconds)."""
        cutoff = self._monotonic() - VIEWER_SECONDS
        for room_id, seen in list(self._viewers_elsewhere.items()):
            for viewer in [v for v, at in seen.items() if at < cutoff]:
                del seen[viewer]
            if not seen:
                del self._viewers_elsewhere[room_id]
        for room_id, seen in list(self._viewers.items()):
            for viewer in [v for v, at in seen.items() if at < cutoff]:
                del seen[viewer]
            relays = self._relayed_viewers.get(room_id, {})
            for relay in [r for r, (_, at) in relays.items() if at < cutoff]:
                del relays[relay]
            playing = self._playing.get(room_id, {})
            gone = self._monotonic() - PLAYING_SECONDS
            for token in [t for t, at in playing.items() if at < gone]:
                del playing[token]
            # (A viewer whose player reloads through two instances counts
            # twice: a load balancer keeps a client on one, mostly.)
            elsewhere = sum(count for count, _ in relays.values())
            await self._registry.set_viewers(room_id, len(seen) + elsewhere)
        gone = self._monotonic() - PLAYING_SECONDS
        for room_id in [r for r in self._playing if r not in self._viewers]:
            playing = self._playing[room_id]
            for token in [t for t, at in playing.items() if at < gone]:
                del playing[token]
            if not playing:
                del self._playing[room_id]

    def ingest_at(self, rtmp_url: str) -> None:
        """The ingest URL to show, once the RTMP server listens (its port
        may have been chosen then)."""
        self._settings = dataclasses.replace(self._settings, rtmp_url=rtmp_url)

    def _key(self, user_id: str, nonce: str) -> str:
        return KEY_PREFIX + self._signer.sign(["stream-key", user_id, nonce])[:32]

    def _shown(self, user_id: str, nonce: str, title: str, public: bool) -> StreamKey:
        key = self._key(user_id, nonce)
        server = self._settings.rtmp_url
        return StreamKey(
            stream_key=key,
            rtmp_url=f"{server}/{key}",
            server_url=server,
            title=title,
            public=public,
        )


def _invalid_key() -> Unauthenticated:
    return Unauthenticated(
        "this stream key is not valid (it may have been replaced)", code="invalid_stream_key"
    )


# Room ids are user ids (ULIDs); this is as much as a URL may carry.
ROOM_ID_PATTERN = re.compile(r"[0-9A-Za-z]{1,64}")


def check_room_id(room_id: str) -> str:
    if not ROOM_ID_PATTERN.fullmatch(room_id):
        raise InvalidInput("not a live room id", code="invalid_room")
    return room_id
