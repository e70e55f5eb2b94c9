"""Viewer tokens (what a plain HLS player plays a live room with): made and
checked, bound to their room, viewer and sign-in, expiring; a player that
keeps reloading the playlist goes on past the expiry until its viewer signs
out; and the playlist's URIs rewritten to carry one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from gortc.adapters.hmac_signer import HmacSigner
from gortc.adapters.live_registry import LocalLiveRegistry
from gortc.entities.errors import Unauthenticated
from gortc.entities.live import StreamKeyRecord
from gortc.entities.opaque_tokens import hash_opaque_token
from gortc.media.hls_playlist import with_query_parameter, without_query_parameter
from gortc.usecases.live import PLAYING_SECONDS, LiveService, LiveSettings
from gortc.usecases.viewer_tokens import ViewerTokens
from tests.unit.fakes import (
    FakeClock,
    FakeEventPublisher,
    FakeRepositories,
    FakeUnitOfWork,
    World,
    make_world,
)

ROOM = "01ROOMOFBOB0000000000000000"
LIFETIME = 600


def tokens(clock: FakeClock, key: bytes = b"k" * 32) -> ViewerTokens:
    return ViewerTokens(HmacSigner(key), clock, LIFETIME)


def code_of(error: pytest.ExceptionInfo[Unauthenticated]) -> str:
    return error.value.code


def test_a_token_verifies_for_its_room_viewer_and_sign_in_only() -> None:
    clock = FakeClock()
    made = tokens(clock)
    token = made.mint(ROOM, "ann", "session1")
    claim = made.verify(ROOM, token)
    assert (claim.user_id, claim.session_id) == ("ann", "session1")
    assert not made.expired(claim)
    user, session, expires, signature = token.split(".")
    for other_room, forged in [
        ("01ROOMOFCID0000000000000000", token),  # another room
        (ROOM, f"cid.{session}.{expires}.{signature}"),  # another viewer
        (ROOM, f"{user}.session2.{expires}.{signature}"),  # another sign-in
        (ROOM, f"{user}.{session}.{int(expires) + 3600}.{signature}"),  # a later expiry
        (ROOM, f"{user}.{session}.{expires}.{signature[:-1]}x"),
        (ROOM, f"{user}.{session}.{expires}"),
        (ROOM, ""),
        (ROOM, "a.b.c.d"),
        (ROOM, token + "\n"),
    ]:
        with pytest.raises(Unauthenticated) as error:
            made.verify(other_room, forged)
        assert code_of(error) == "invalid_viewer_token"
    # Another server (another secret) does not take it either.
    with pytest.raises(Unauthenticated):
        tokens(clock, b"x" * 32).verify(ROOM, token)


def test_a_token_expires_and_stays_the_same_between_close_fetches() -> None:
    clock = FakeClock()
    made = tokens(clock)
    first = made.mint(ROOM, "ann", "s")
    claim = made.verify(ROOM, first)
    remaining = (claim.expires_at - clock.now()).total_seconds()
    assert LIFETIME * 3 / 4 < remaining <= LIFETIME
    clock.advance(1)
    # A playlist fetched a second later lists the same URIs...
    assert made.mint(ROOM, "ann", "s") == first
    clock.advance(LIFETIME / 2)
    # ...a while later a renewed token, with as long to run again.
    renewed = made.mint(ROOM, "ann", "s")
    assert renewed != first
    assert made.verify(ROOM, renewed).expires_at > claim.expires_at
    clock.advance(LIFETIME)
    assert made.expired(made.verify(ROOM, first))
    assert made.expired(made.verify(ROOM, renewed))


def test_the_token_made_for_given_values_is_the_one_checked() -> None:
    clock = FakeClock()
    made = tokens(clock)
    past = int(clock.now().timestamp()) - 1
    claim = made.verify(ROOM, made.token(ROOM, "ann", "s", past))
    assert made.expired(claim)


# -- LiveService.admit_viewer ---------------------------------------------------


@dataclass
class FakeStreamKeys:
    records: dict[str, StreamKeyRecord] = field(default_factory=dict)  # key hash -> record

    async def get(self, user_id: str) -> StreamKeyRecord | None:
        return next((r for r in self.records.values() if r.user_id == user_id), None)

    async def owner_of(self, key_hash: str) -> StreamKeyRecord | None:
        return self.records.get(key_hash)

    async def put(self, user_id: str, nonce: str, key_hash: str, now: datetime) -> None:
        self.records[key_hash] = StreamKeyRecord(user_id, nonce, "", now)

    async def set_title(self, user_id: str, title: str) -> bool:
        return False

    async def set_public(self, user_id: str, public: bool) -> bool:
        return False


class LiveUnitOfWork(FakeUnitOfWork):
    """The accounts' fake tables, plus stream keys."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.tables = world.uow.tables
        self.stream_keys = FakeStreamKeys()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeRepositories]:
        repos = FakeRepositories(self.tables)
        repos.stream_keys = self.stream_keys  # type: ignore[attr-defined]
        yield repos

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeRepositories]:
        async with self.reading() as repos:
            yield repos


@dataclass
class Stage:
    world: World
    live: LiveService
    now: list[float]  # the monotonic clock
    room_id: str
    ann_user: str
    ann_session: str


async def live_stage() -> Stage:
    world = make_world()
    bob = await world.accounts.register(
        username="bob", email="bob@example.com", password="correct horse battery"
    )
    ann = await world.accounts.register(
        username="ann", email="ann@example.com", password="correct horse battery"
    )
    signed_in = await world.accounts.login(login="ann", password="correct horse battery")
    now = [1000.0]
    uow = LiveUnitOfWork(world)
    live = LiveService(
        uow=uow,
        signer=HmacSigner(b"s" * 32),
        viewer_tokens=ViewerTokens(HmacSigner(b"v" * 32), world.clock, LIFETIME),
        registry=LocalLiveRegistry(),
        events=FakeEventPublisher(),
        clock=world.clock,
        settings=LiveSettings(rtmp_url="rtmp://127.0.0.1/live"),
        monotonic=lambda: now[0],
    )
    key = await live.stream_key(bob.id)
    await uow.stream_keys.put(bob.id, "n", hash_opaque_token(key.stream_key), world.clock.now())
    room = await live.start(key.stream_key)
    return Stage(world, live, now, room.id, ann.id, signed_in.session.id)


def later(stage: Stage, seconds: float) -> None:
    stage.world.clock.advance(seconds)
    stage.now[0] += seconds


async def refused(stage: Stage, token: str, *, playlist: bool) -> str:
    with pytest.raises(Unauthenticated) as error:
        await stage.live.admit_viewer(stage.room_id, token, playlist=playlist)
    return error.value.code


async def test_a_player_that_keeps_reloading_goes_on_past_the_first_expiry() -> None:
    stage = await live_stage()
    live = stage.live
    listed = live.viewer_token(stage.room_id, stage.ann_user, stage.ann_session)
    viewer = (stage.ann_user, stage.ann_session)
    assert await live.admit_viewer(stage.room_id, listed, playlist=True) == viewer
    # The player reloads the playlist at the listed URL every couple of
    # seconds, for longer than the token lasts; the segments each playlist
    # lists carry fresh tokens, always good.
    for _ in range(int(LIFETIME * 1.5 / 2)):
        later(stage, 2)
        assert await live.admit_viewer(stage.room_id, listed, playlist=True) == viewer
        fresh = live.viewer_token(stage.room_id, stage.ann_user, stage.ann_session)
        assert await live.admit_viewer(stage.room_id, fresh, playlist=False) == viewer
    # Past its expiry, the listed token fetches no segment...
    assert await refused(stage, listed, playlist=False) == "viewer_token_expired"
    # ...and once the player stopped for a while, no playlist either.
    later(stage, PLAYING_SECONDS + 1)
    assert await refused(stage, listed, playlist=True) == "viewer_token_expired"


async def test_an_expired_token_never_played_is_refused() -> None:
    stage = await live_stage()
    listed = stage.live.viewer_token(stage.room_id, stage.ann_user, stage.ann_session)
    later(stage, LIFETIME + 1)
    assert await refused(stage, listed, playlist=True) == "viewer_token_expired"
    assert await refused(stage, listed, playlist=False) == "viewer_token_expired"


async def test_signing_out_ends_the_viewer_s_tokens() -> None:
    stage = await live_stage()
    live = stage.live
    listed = live.viewer_token(stage.room_id, stage.ann_user, stage.ann_session)
    await live.admit_viewer(stage.room_id, listed, playlist=True)
    await stage.world.accounts.end_cookie_session(stage.ann_session)
    assert await refused(stage, listed, playlist=True) == "session_ended"
    assert await refused(stage, listed, playlist=False) == "session_ended"


async def test_a_disabled_account_s_tokens_stop() -> None:
    stage = await live_stage()
    listed = stage.live.viewer_token(stage.room_id, stage.ann_user, stage.ann_session)
    await stage.world.admin.set_disabled("ann", True)
    assert await refused(stage, listed, playlist=True) == "session_ended"


async def test_a_token_for_another_sign_in_of_someone_else_is_refused() -> None:
    stage = await live_stage()
    # Signed by us, but naming a sign-in that is not the viewer's.
    bob = await stage.world.accounts.login(login="bob", password="correct horse battery")
    token = stage.live.viewer_token(stage.room_id, stage.ann_user, bob.session.id)
    assert await refused(stage, token, playlist=True) == "session_ended"


# -- the playlist's URIs ----------------------------------------------------------


def test_every_uri_of_a_playlist_gets_the_parameter() -> None:
    playlist = (
        "#EXTM3U\r\n"
        "#EXT-X-VERSION:7\r\n"
        '#EXT-X-MAP:URI="init_ab.mp4"\r\n'
        '#EXT-X-KEY:METHOD=AES-128,URI="key?kid=1",IV=0x1\r\n'
        "#EXTINF:1.0,\r\n"
        "seg_ab_00001.m4s\r\n"
        "#EXTINF:1.0,\r\n"
        "https://cdn.example.org/seg_ab_00002.m4s\r\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x",URI="//elsewhere/a.m3u8"\r\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=1\r\n"
        "360p/index.m3u8#part\r\n"
        "#EXT-X-ENDLIST\r\n"
    )
    assert with_query_parameter(playlist, "vt", "a.b-c_d") == (
        "#EXTM3U\r\n"
        "#EXT-X-VERSION:7\r\n"
        '#EXT-X-MAP:URI="init_ab.mp4?vt=a.b-c_d"\r\n'
        '#EXT-X-KEY:METHOD=AES-128,URI="key?kid=1&vt=a.b-c_d",IV=0x1\r\n'
        "#EXTINF:1.0,\r\n"
        "seg_ab_00001.m4s?vt=a.b-c_d\r\n"
        "#EXTINF:1.0,\r\n"
        "https://cdn.example.org/seg_ab_00002.m4s\r\n"  # not ours to sign for
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x",URI="//elsewhere/a.m3u8"\r\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=1\r\n"
        "360p/index.m3u8?vt=a.b-c_d#part\r\n"
        "#EXT-X-ENDLIST\r\n"
    )


def test_a_relayed_playlist_loses_the_ingesting_instance_s_tokens_and_gets_the_viewer_s() -> None:
    relayed = with_query_parameter(
        '#EXT-X-MAP:URI="init.mp4"\nseg_1.ts\nkey?kid=1\nhttps://cdn.example.org/s.ts?vt=x\n',
        "vt",
        "for-the-relay",
    )
    cached = without_query_parameter(relayed, "vt")
    assert cached == (
        '#EXT-X-MAP:URI="init.mp4"\nseg_1.ts\nkey?kid=1\nhttps://cdn.example.org/s.ts?vt=x\n'
    )
    assert "for-the-relay" not in with_query_parameter(cached, "vt", "ann")


async def test_another_instance_admits_a_room_s_viewers_and_lets_a_player_reload() -> None:
    stage = await live_stage()
    registry = LocalLiveRegistry()  # as Redis would be, shared by both
    uow = LiveUnitOfWork(stage.world)

    def instance(url: str) -> LiveService:
        return LiveService(
            uow=uow,
            signer=HmacSigner(b"s" * 32),
            viewer_tokens=ViewerTokens(HmacSigner(b"v" * 32), stage.world.clock, LIFETIME),
            registry=registry,
            events=FakeEventPublisher(),
            clock=stage.world.clock,
            settings=LiveSettings(rtmp_url="rtmp://a/live", instance=url),
            monotonic=lambda: stage.now[0],
        )

    a, b = instance("http://10.0.0.1:8080"), instance("http://10.0.0.2:8080")
    bob = stage.room_id
    key = await a.stream_key(bob)
    await uow.stream_keys.put(bob, "n", hash_opaque_token(key.stream_key), stage.world.clock.now())
    await a.start(key.stream_key)
    assert await a.ingested_elsewhere(bob) is None
    assert await b.ingested_elsewhere(bob) == "http://10.0.0.1:8080"
    assert await b.ingested_elsewhere("01NOBODY") is None

    # A player behind a load balancer reloads through B past its token's expiry.
    listed = a.viewer_token(bob, stage.ann_user, stage.ann_session)
    viewer = (stage.ann_user, stage.ann_session)
    for _ in range(int(LIFETIME * 1.5 / 2)):
        assert await b.admit_viewer(bob, listed, playlist=True) == viewer
        later(stage, 2)
    await b.count_viewers()  # keeps what is recent
    assert await b.admit_viewer(bob, listed, playlist=True) == viewer
    later(stage, PLAYING_SECONDS + 1)
    await b.count_viewers()
    with pytest.raises(Unauthenticated):
        await b.admit_viewer(bob, listed, playlist=True)


async def test_viewers_through_another_instance_count_in_the_room_s_viewers() -> None:
    stage = await live_stage()
    registry = LocalLiveRegistry()
    uow = LiveUnitOfWork(stage.world)

    def instance(url: str) -> LiveService:
        return LiveService(
            uow=uow,
            signer=HmacSigner(b"s" * 32),  # the secret every instance shares
            viewer_tokens=ViewerTokens(HmacSigner(b"v" * 32), stage.world.clock, LIFETIME),
            registry=registry,
            events=FakeEventPublisher(),
            clock=stage.world.clock,
            settings=LiveSettings(rtmp_url="rtmp://a/live", instance=url),
            monotonic=lambda: stage.now[0],
        )

    a, b = instance("http://10.0.0.1:8080"), instance("http://10.0.0.2:8080")
    bob = stage.room_id
    key = await a.stream_key(bob)
    await uow.stream_keys.put(bob, "n", hash_opaque_token(key.stream_key), stage.world.clock.now())
    await a.start(key.stream_key)
    assert a.watching(bob, "dan")  # one viewer on A itself
    # Three on B; what B tells A with its next playlist fetch.
    for viewer in ("ann", "cid", "ann", "eve"):
        count = b.watching_elsewhere(bob, viewer)
    assert count == 3
    a.relayed_viewers(bob, b.viewers_report(bob, count))
    # Made-up or altered reports (a viewer sending the header) are ignored.
    a.relayed_viewers(bob, "1000 http://evil:1 forged")
    a.relayed_viewers(bob, b.viewers_report(bob, count).replace("3 ", "300 ", 1))
    await a.count_viewers()
    assert (await registry.get(bob)).viewers == 4  # type: ignore[union-attr]
    # B stops telling (its viewers left): they drop out of the count.
    later(stage, 11)
    await a.count_viewers()
    assert (await registry.get(bob)).viewers == 0  # type: ignore[union-attr]
