"""The account repositories through the unit of work: the contract both
backends keep, on a real SQLite file and on a real PostgreSQL database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gortc.entities.errors import Conflict
from gortc.entities.ids import new_id
from gortc.entities.sessions import (
    Invite,
    OneTimePurpose,
    OneTimeToken,
    RefreshToken,
    Session,
    SessionKind,
)
from gortc.entities.users import User
from gortc.usecases.ports import UnitOfWork
from tests.integration.backends import Backend

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
EARLIER = NOW - timedelta(hours=1)


@pytest.fixture
def uow(backend: Backend) -> UnitOfWork:
    return backend.uow


def make_user(username: str, email: str | None = None, *, user_id: str | None = None) -> User:
    return User(
        id=user_id or new_id(),
        username=username,
        email=email or f"{username}@example.com",
        display_name=username.title(),
        password_hash="$2b$04$not-a-real-hash",
        is_admin=False,
        email_verified=False,
        disabled_at=None,
        created_at=NOW,
        updated_at=NOW,
    )


def make_session(user: User, *, expires_at: datetime = NOW + timedelta(days=30)) -> Session:
    return Session(
        id=new_id(),
        user_id=user.id,
        kind=SessionKind.TOKEN,
        created_at=NOW,
        expires_at=expires_at,
        revoked_at=None,
        user_agent="pytest",
        ip="127.0.0.1",
    )


def make_refresh_token(session: Session, *, access_expires_at: datetime) -> RefreshToken:
    return RefreshToken(
        token_hash=new_id(),
        session_id=session.id,
        access_jti=new_id(),
        access_expires_at=access_expires_at,
        created_at=NOW,
        used_at=None,
    )


def make_one_time_token(
    user: User, purpose: OneTimePurpose, *, expires_at: datetime = LATER
) -> OneTimeToken:
    return OneTimeToken(
        token_hash=new_id(),
        user_id=user.id,
        purpose=purpose,
        email=user.email,
        created_at=NOW,
        expires_at=expires_at,
        used_at=None,
    )


def make_invite(*, expires_at: datetime = LATER) -> Invite:
    return Invite(
        id=new_id(),
        code_hash=new_id(),
        created_by=None,
        note="for bob",
        created_at=NOW,
        expires_at=expires_at,
        used_by=None,
        used_at=None,
    )


async def add_users(uow: UnitOfWork, *users: User) -> None:
    async with uow.transaction() as repos:
        for user in users:
            await repos.users.add(user)


# -- users -------------------------------------------------------------------


async def test_a_user_reads_back_as_written(uow: UnitOfWork) -> None:
    alice = replace(
        make_user("alice", "Alice@example.com"),
        is_admin=True,
        email_verified=True,
        disabled_at=NOW,
        updated_at=LATER,
    )
    await add_users(uow, alice)

    async with uow.reading() as repos:
        assert await repos.users.get(alice.id) == alice
        assert await repos.users.get("no-such-id") is None
        assert await repos.users.count() == 1


@pytest.mark.parametrize(
    "login",
    ["alice", "ALICE", "Alice", "Alice@example.com", "alice@EXAMPLE.COM", "ALICE@example.com"],
)
async def test_get_by_login_finds_by_username_or_email_ignoring_case(
    uow: UnitOfWork, login: str
) -> None:
    alice = make_user("alice", "Alice@example.com")
    await add_users(uow, alice, make_user("bob"))

    async with uow.reading() as repos:
        assert await repos.users.get_by_login(login) == alice


async def test_get_by_login_finds_nobody_for_an_unknown_login(uow: UnitOfWork) -> None:
    await add_users(uow, make_user("alice"))

    async with uow.reading() as repos:
        for login in ("alic", "bob", "alice@example.org", ""):
            assert await repos.users.get_by_login(login) is None


@pytest.mark.parametrize(
    ("username", "email", "code"),
    [
        ("ALICE", "other@example.com", "username_taken"),
        ("other", "ALICE@Example.com", "email_taken"),
    ],
)
async def test_adding_a_taken_username_or_email_is_a_conflict(
    uow: UnitOfWork, username: str, email: str, code: str
) -> None:
    await add_users(uow, make_user("alice", "alice@example.com"))

    with pytest.raises(Conflict) as error:
        await add_users(uow, make_user(username.lower(), email))

    assert error.value.code == code
    async with uow.reading() as repos:
        assert await repos.users.count() == 1


async def test_update_replaces_the_fields_and_keeps_names_unique(uow: UnitOfWork) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    await add_users(uow, alice, bob)
    changed = replace(
        alice,
        email="alice@example.org",
        display_name="Alice A.",
        password_hash="$2b$04$another",
        is_admin=True,
        email_verified=True,
        updated_at=LATER,
    )

    async with uow.transaction() as repos:
        await repos.users.update(changed)
    async with uow.reading() as repos:
        assert await repos.users.get(alice.id) == changed
        assert await repos.users.get_by_login("alice@example.com") is None
        assert await repos.users.get_by_login("alice@example.org") == changed
        assert await repos.users.get(bob.id) == bob

    for clash, code in (
        (replace(bob, username="alice"), "username_taken"),
        (replace(bob, email="ALICE@example.org"), "email_taken"),
    ):
        with pytest.raises(Conflict) as error:
            async with uow.transaction() as repos:
                await repos.users.update(clash)
        assert error.value.code == code
    async with uow.reading() as repos:
        assert await repos.users.get(bob.id) == bob


async def test_list_pages_through_users_in_id_order(uow: UnitOfWork) -> None:
    base_ms = int(NOW.timestamp() * 1000)
    users = [make_user(f"user{n:02}", user_id=new_id(base_ms + n)) for n in (3, 0, 4, 1, 2)]
    await add_users(uow, *users)
    expected = sorted(user.id for user in users)

    seen: list[str] = []
    after: str | None = None
    async with uow.reading() as repos:
        while True:
            page = await repos.users.list(limit=2, after=after)
            if not page:
                break
            assert len(page) <= 2
            seen.extend(user.id for user in page)
            after = page[-1].id
        assert [user.username for user in await repos.users.list(limit=10)] == [
            f"user{n:02}" for n in range(5)
        ]
    assert seen == expected


# -- sessions and refresh tokens ----------------------------------------------


async def test_a_session_reads_back_and_revoking_it_returns_its_live_access_tokens(
    uow: UnitOfWork,
) -> None:
    alice = make_user("alice")
    session = make_session(alice)
    live = make_refresh_token(session, access_expires_at=LATER)
    expired = make_refresh_token(session, access_expires_at=EARLIER)
    other_session = make_session(alice)
    other = make_refresh_token(other_session, access_expires_at=LATER)
    async with uow.transaction() as repos:
        await repos.users.add(alice)
        for each in (session, other_session):
            await repos.sessions.add(each)
        for token in (live, expired, other):
            await repos.refresh_tokens.add(token)

    async with uow.reading() as repos:
        assert await repos.sessions.get(session.id) == session
        assert await repos.sessions.get("nope") is None
        assert await repos.refresh_tokens.get(live.token_hash) == live

    async with uow.transaction() as repos:
        ended = await repos.sessions.revoke(session.id, NOW)
    assert ended == [(live.access_jti, LATER)]

    async with uow.transaction() as repos:
        # Revoking again keeps the first moment.
        await repos.sessions.revoke(session.id, LATER)
    async with uow.reading() as repos:
        stored = await repos.sessions.get(session.id)
        untouched = await repos.sessions.get(other_session.id)
    assert stored is not None and stored.revoked_at == NOW
    assert not stored.is_active(NOW)
    assert untouched is not None and untouched.is_active(NOW)


async def test_revoke_all_for_user_spares_the_excepted_session_and_other_users(
    uow: UnitOfWork,
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    kept, first, second = make_session(alice), make_session(alice), make_session(alice)
    bobs = make_session(bob)
    tokens = {
        each.id: make_refresh_token(each, access_expires_at=LATER)
        for each in (kept, first, second, bobs)
    }
    stale = make_refresh_token(first, access_expires_at=EARLIER)
    async with uow.transaction() as repos:
        await repos.users.add(alice)
        await repos.users.add(bob)
        for each in (kept, first, second, bobs):
            await repos.sessions.add(each)
        for token in (*tokens.values(), stale):
            await repos.refresh_tokens.add(token)

    async with uow.transaction() as repos:
        ended = await repos.sessions.revoke_all_for_user(alice.id, NOW, except_session_id=kept.id)

    assert sorted(ended) == sorted((tokens[each.id].access_jti, LATER) for each in (first, second))
    async with uow.reading() as repos:
        states = {
            each.id: (await repos.sessions.get(each.id)).is_active(NOW)  # type: ignore[union-attr]
            for each in (kept, first, second, bobs)
        }
    assert states == {kept.id: True, first.id: False, second.id: False, bobs.id: True}

    async with uow.transaction() as repos:
        ended = await repos.sessions.revoke_all_for_user(alice.id, NOW)
    assert (tokens[kept.id].access_jti, LATER) in ended
    async with uow.reading() as repos:
        last = await repos.sessions.get(kept.id)
    assert last is not None and not last.is_active(NOW)


async def test_a_refresh_token_is_marked_used_only_once(uow: UnitOfWork) -> None:
    alice = make_user("alice")
    session = make_session(alice)
    token = make_refresh_token(session, access_expires_at=LATER)
    async with uow.transaction() as repos:
        await repos.users.add(alice)
        await repos.sessions.add(session)
        await repos.refresh_tokens.add(token)

    async with uow.transaction() as repos:
        assert await repos.refresh_tokens.mark_used(token.token_hash, NOW) is True
    async with uow.transaction() as repos:
        assert await repos.refresh_tokens.mark_used(token.token_hash, LATER) is False
        assert await repos.refresh_tokens.mark_used("unknown", LATER) is False
    async with uow.reading() as repos:
        stored = await repos.refresh_tokens.get(token.token_hash)
    assert stored == replace(token, used_at=NOW)


# -- mailed tokens and invites --------------------------------------------------


async def test_a_one_time_token_is_consumed_once_and_only_for_its_purpose(
    uow: UnitOfWork,
) -> None:
    alice = make_user("alice")
    token = make_one_time_token(alice, OneTimePurpose.RESET_PASSWORD)
    async with uow.transaction() as repos:
        await repos.users.add(alice)
        await repos.one_time_tokens.add(token)

    async with uow.transaction() as repos:
        wrong = await repos.one_time_tokens.consume(
            token.token_hash, OneTimePurpose.VERIFY_EMAIL, NOW
        )
        assert wrong is None
        used = await repos.one_time_tokens.consume(
            token.token_hash, OneTimePurpose.RESET_PASSWORD, NOW
        )
        assert used == replace(token, used_at=NOW)
    async with uow.transaction() as repos:
        again = await repos.one_time_tokens.consume(
            token.token_hash, OneTimePurpose.RESET_PASSWORD, NOW
        )
        assert again is None


async def test_a_one_time_token_is_not_consumed_once_expired(uow: UnitOfWork) -> None:
    alice = make_user("alice")
    token = make_one_time_token(alice, OneTimePurpose.VERIFY_EMAIL, expires_at=NOW)
    async with uow.transaction() as repos:
        await repos.users.add(alice)
        await repos.one_time_tokens.add(token)

    async with uow.transaction() as repos:
        for moment in (NOW, LATER):
            assert (
                await repos.one_time_tokens.consume(
                    token.token_hash, OneTimePurpose.VERIFY_EMAIL, moment
                )
                is None
            )
        still_valid = await repos.one_time_tokens.consume(
            token.token_hash, OneTimePurpose.VERIFY_EMAIL, NOW - timedelta(microseconds=1)
        )
        assert still_valid is not None


async def test_invalidate_for_user_ends_only_that_users_tokens_of_that_purpose(
    uow: UnitOfWork,
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    resets = [make_one_time_token(alice, OneTimePurpose.RESET_PASSWORD) for _ in range(2)]
    verify = make_one_time_token(alice, OneTimePurpose.VERIFY_EMAIL)
    bobs_reset = make_one_time_token(bob, OneTimePurpose.RESET_PASSWORD)
    async with uow.transaction() as repos:
        await repos.users.add(alice)
        await repos.users.add(bob)
        for token in (*resets, verify, bobs_reset):
            await repos.one_time_tokens.add(token)

    async with uow.transaction() as repos:
        await repos.one_time_tokens.invalidate_for_user(
            alice.id, OneTimePurpose.RESET_PASSWORD, NOW
        )

    async with uow.transaction() as repos:
        for token in resets:
            assert await repos.one_time_tokens.consume(token.token_hash, token.purpose, NOW) is None
        for token in (verify, bobs_reset):
            assert await repos.one_time_tokens.consume(token.token_hash, token.purpose, NOW)


async def test_an_invite_is_consumed_once_and_not_after_it_expires(
    uow: UnitOfWork,
) -> None:
    bob, carol = make_user("bob"), make_user("carol")
    invite = make_invite()
    expired = make_invite(expires_at=NOW)
    async with uow.transaction() as repos:
        await repos.users.add(bob)
        await repos.users.add(carol)
        await repos.invites.add(invite)
        await repos.invites.add(expired)

    async with uow.transaction() as repos:
        assert await repos.invites.consume(expired.code_hash, bob.id, NOW) is False
        assert await repos.invites.consume("unknown", bob.id, NOW) is False
        assert await repos.invites.consume(invite.code_hash, bob.id, NOW) is True
    async with uow.transaction() as repos:
        assert await repos.invites.consume(invite.code_hash, carol.id, NOW) is False

    async with uow.reading() as repos:
        listed = {each.id: each for each in await repos.invites.list(limit=10)}
    assert listed[invite.id] == replace(invite, used_by=bob.id, used_at=NOW)
    assert listed[expired.id] == expired


# -- blobs --------------------------------------------------------------------


async def blob_rows(backend: Backend) -> list[tuple[str, int, int]]:
    return await backend.rows("SELECT sha256, size, refcount FROM blobs ORDER BY sha256")


async def test_blob_references_are_counted_and_the_last_release_says_so(
    backend: Backend, uow: UnitOfWork
) -> None:
    sha, other = "a" * 64, "b" * 64
    async with uow.transaction() as repos:
        await repos.blobs.acquire(sha, 1000)
        await repos.blobs.acquire(sha, 1000)
        await repos.blobs.acquire(other, 5)
    assert await blob_rows(backend) == [(sha, 1000, 2), (other, 5, 1)]

    async with uow.transaction() as repos:
        assert await repos.blobs.release(sha) is False
    assert await blob_rows(backend) == [(sha, 1000, 1), (other, 5, 1)]
    async with uow.transaction() as repos:
        assert await repos.blobs.release(sha) is True
    assert await blob_rows(backend) == [(other, 5, 1)]
    async with uow.transaction() as repos:
        assert await repos.blobs.release(sha) is False
        assert await repos.blobs.release("c" * 64) is False

    # Stored again after its last reference went: counted from one.
    async with uow.transaction() as repos:
        await repos.blobs.acquire(sha, 1000)
    assert await blob_rows(backend) == [(sha, 1000, 1), (other, 5, 1)]


# -- revoked access tokens and housekeeping -------------------------------------


async def test_revoked_tokens_are_remembered(backend: Backend) -> None:
    store = backend.revoked

    await store.revoke("jti-1", LATER)
    await store.revoke("jti-1", LATER)  # twice is harmless

    assert await store.is_revoked("jti-1") is True
    assert await store.is_revoked("jti-2") is False


async def test_purge_expired_forgets_expired_revocations_and_old_sessions(
    backend: Backend, uow: UnitOfWork
) -> None:
    store = backend.revoked
    await store.revoke("expired", EARLIER)
    await store.revoke("expires-now", NOW)
    await store.revoke("live", LATER)
    alice = make_user("alice")
    long_expired = make_session(alice, expires_at=NOW - timedelta(days=8))
    recently_expired = make_session(alice, expires_at=NOW - timedelta(days=1))
    active = make_session(alice)
    old_token = make_refresh_token(long_expired, access_expires_at=NOW - timedelta(days=8))
    old_mail = make_one_time_token(
        alice, OneTimePurpose.VERIFY_EMAIL, expires_at=NOW - timedelta(days=8)
    )
    async with uow.transaction() as repos:
        await repos.users.add(alice)
        for each in (long_expired, recently_expired, active):
            await repos.sessions.add(each)
        await repos.refresh_tokens.add(old_token)
        await repos.one_time_tokens.add(old_mail)

    removed = await backend.purge_expired(NOW)

    assert await store.is_revoked("expired") is False
    assert await store.is_revoked("expires-now") is False
    assert await store.is_revoked("live") is True
    async with uow.reading() as repos:
        assert await repos.sessions.get(long_expired.id) is None
        assert await repos.refresh_tokens.get(old_token.token_hash) is None  # cascaded
        assert await repos.sessions.get(recently_expired.id) is not None
        assert await repos.sessions.get(active.id) is not None
    assert removed == 4  # two revocations, one session, one mailed token
    assert await backend.purge_expired(NOW) == 0
