"""AccountService driven through the in-memory fakes."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from gortc.adapters.jwt_tokens import JwtAccessTokens
from gortc.entities.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from gortc.entities.sessions import SessionKind
from gortc.entities.users import User
from gortc.usecases.accounts import AVATAR_MAX_BYTES, AccountSettings, ClientInfo, SignedIn
from gortc.usecases.ports import MailMessage
from tests.unit.fakes import JWT_KEY, START, World, make_world

PASSWORD = "correct horse battery"
NEW_PASSWORD = "tr0ub4dor & 3"

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32


def code_in(message: MailMessage) -> str:
    """The token a mail carries (its link and its 'use this code' line agree)."""
    found = re.search(r"use this code: (\S+)", message.body)
    assert found is not None, message.body
    assert f"token={found.group(1)}" in message.body
    return found.group(1)


async def register(world: World, username: str = "alice", **extra: object) -> User:
    return await world.accounts.register(
        username=username,
        email=f"{username}@example.com",
        password=PASSWORD,
        **extra,  # type: ignore[arg-type]
    )


async def login(
    world: World, login_name: str = "alice", password: str = PASSWORD, **extra: object
) -> SignedIn:
    return await world.accounts.login(login=login_name, password=password, **extra)  # type: ignore[arg-type]


def invite_world() -> World:
    return make_world(AccountSettings(signup="invite"))


# -- registration -------------------------------------------------------------


async def test_register_lowercases_the_username(world: World) -> None:
    user = await world.accounts.register(
        username="  Alice.Smith ", email="Alice@Example.COM", password=PASSWORD
    )

    assert user.username == "alice.smith"
    assert user.display_name == "alice.smith"
    # The domain is case-insensitive; the local part is kept as typed.
    assert user.email == "Alice@example.com"
    assert (await world.accounts.get_user(user.id)).username == "alice.smith"


@pytest.mark.parametrize(
    ("username", "email", "password", "code"),
    [
        ("al", "al@example.com", PASSWORD, "invalid_username"),
        ("a" * 33, "long@example.com", PASSWORD, "invalid_username"),
        ("bad name", "bad@example.com", PASSWORD, "invalid_username"),
        ("alice!", "alice@example.com", PASSWORD, "invalid_username"),
        ("jürgen", "jurgen@example.com", PASSWORD, "invalid_username"),
        ("", "empty@example.com", PASSWORD, "invalid_username"),
        ("alice", "not-an-address", PASSWORD, "invalid_email"),
        ("alice", "alice@localhost", PASSWORD, "invalid_email"),
        ("alice", "alice smith@example.com", PASSWORD, "invalid_email"),
        ("alice", "alice@@example.com", PASSWORD, "invalid_email"),
        ("alice", "a" * 65 + "@example.com", PASSWORD, "invalid_email"),
        ("alice", "alice@" + "d" * 250 + ".com", PASSWORD, "invalid_email"),
        ("alice", "alice@example.com", "short", "weak_password"),
        ("alice", "alice@example.com", "7chars!", "weak_password"),
        ("alice", "alice@example.com", "é" * 37, "invalid_password"),
    ],
)
async def test_register_refuses_bad_input(
    world: World, username: str, email: str, password: str, code: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await world.accounts.register(username=username, email=email, password=password)

    assert caught.value.code == code
    assert world.uow.tables.users == {}
    assert world.mailer.sent == []


@pytest.mark.parametrize(
    ("username", "email", "code"),
    [
        ("ALICE", "other@example.com", "username_taken"),
        ("Alice", "other@example.com", "username_taken"),
        ("bob", "ALICE@EXAMPLE.COM", "email_taken"),
        ("bob", "alice@example.com", "email_taken"),
    ],
)
async def test_register_refuses_a_taken_name_whatever_its_case(
    world: World, username: str, email: str, code: str
) -> None:
    first = await register(world, "alice")

    with pytest.raises(Conflict) as caught:
        await world.accounts.register(username=username, email=email, password=PASSWORD)

    assert caught.value.code == code
    assert list(world.uow.tables.users) == [first.id]


async def test_first_user_is_admin_and_later_ones_are_not(world: World) -> None:
    first = await register(world, "alice")
    second = await register(world, "bob")
    third = await register(world, "carol")

    assert first.is_admin
    assert not second.is_admin
    assert not third.is_admin


async def test_register_mails_a_verification_link(world: World) -> None:
    user = await register(world, "alice")

    [mail] = world.mailer.sent
    assert mail.to == "alice@example.com"
    assert "https://chat.example.org/#verify-email?token=" in mail.body
    assert not user.email_verified
    verified = await world.accounts.verify_email(code_in(mail))
    assert verified.email_verified


async def test_register_succeeds_when_the_mail_server_is_down(world: World) -> None:
    world.mailer.failing = True

    user = await register(world, "alice")

    assert (await world.accounts.get_user(user.id)).username == "alice"
    assert world.mailer.sent == []


async def test_closed_signup_refuses_registration() -> None:
    world = make_world(AccountSettings(signup="closed"))

    with pytest.raises(Forbidden) as caught:
        await register(world, "alice")

    assert caught.value.code == "signup_closed"
    assert world.uow.tables.users == {}


async def test_invite_signup_without_a_code_is_refused() -> None:
    world = invite_world()

    for code in (None, ""):
        with pytest.raises(Forbidden) as caught:
            await register(world, "alice", invite_code=code)
        assert caught.value.code == "invite_required"
    assert world.uow.tables.users == {}


async def _invite_world_with_operator() -> World:
    """An invite-only server whose first account the operator made."""
    world = invite_world()
    await world.admin.add_user(
        username="root", email="root@example.com", password=PASSWORD, admin=True
    )
    return world


async def test_invite_signup_with_a_good_code_works_once() -> None:
    world = await _invite_world_with_operator()
    invite = await world.admin.create_invite(None, note="for bob")

    bob = await register(world, "bob", invite_code=invite.code)

    assert (await login(world, "bob")).user.id == bob.id
    [stored] = await world.admin.list_invites(None)
    assert stored.used_by == bob.id
    with pytest.raises(Forbidden) as caught:
        await register(world, "carol", invite_code=invite.code)
    assert caught.value.code == "invalid_invite"
    assert sorted(user.username for user in await world.admin.list_users()) == ["bob", "root"]


@pytest.mark.parametrize("case", ["unknown", "used", "expired"])
async def test_invite_signup_with_a_bad_code_creates_no_user(case: str) -> None:
    world = await _invite_world_with_operator()
    invite = await world.admin.create_invite(None)
    code = invite.code
    if case == "unknown":
        code = "not-a-code"
    elif case == "used":
        await register(world, "carol", invite_code=code)
    else:
        world.clock.advance((invite.invite.expires_at - START).total_seconds())
    users_before = dict(world.uow.tables.users)
    world.mailer.sent.clear()

    with pytest.raises(Forbidden) as caught:
        await register(world, "bob", invite_code=code)

    assert caught.value.code == "invalid_invite"
    assert world.uow.tables.users == users_before
    assert world.mailer.sent == []
    with pytest.raises(Unauthenticated):
        await login(world, "bob")


async def test_first_account_on_an_invite_server_needs_a_real_code() -> None:
    world = invite_world()

    with pytest.raises(Forbidden) as caught:
        await register(world, "alice", invite_code="made-up")

    assert caught.value.code == "invalid_invite"
    assert world.uow.tables.users == {}


async def test_invite_used_by_the_first_account_cannot_be_used_again() -> None:
    world = invite_world()
    invite = await world.admin.create_invite(None)
    await register(world, "alice", invite_code=invite.code)

    with pytest.raises(Forbidden) as caught:
        await register(world, "bob", invite_code=invite.code)

    assert caught.value.code == "invalid_invite"


# -- signing in and out -------------------------------------------------------


@pytest.mark.parametrize("login_name", ["alice", "ALICE", " alice ", "alice@example.com"])
async def test_login_by_username_or_email(world: World, login_name: str) -> None:
    user = await register(world, "alice")

    signed_in = await login(world, login_name)

    assert signed_in.user.id == user.id
    assert signed_in.tokens is not None
    claims = await world.accounts.authenticate_token(signed_in.tokens.access_token)
    assert claims.user_id == user.id
    assert claims.session_id == signed_in.session.id
    assert signed_in.tokens.expires_in == world.settings.access_token_ttl


@pytest.mark.parametrize(
    ("login_name", "password"),
    [
        ("alice", "wrong password"),
        ("alice@example.com", "wrong password"),
        ("nobody", PASSWORD),
        ("nobody@example.com", PASSWORD),
        ("", PASSWORD),
    ],
)
async def test_login_with_bad_credentials_is_refused_alike(
    world: World, login_name: str, password: str
) -> None:
    await register(world, "alice")

    with pytest.raises(Unauthenticated) as caught:
        await login(world, login_name, password)

    assert caught.value.code == "invalid_credentials"
    assert caught.value.message == "wrong login or password"
    assert world.uow.tables.sessions == {}


async def test_login_to_a_disabled_account_is_forbidden(world: World) -> None:
    await register(world, "alice")
    await world.admin.set_disabled("alice", True)

    with pytest.raises(Forbidden) as caught:
        await login(world, "alice")

    assert caught.value.code == "account_disabled"


async def test_cookie_session_lives_until_ended(world: World) -> None:
    await register(world, "alice")

    signed_in = await login(world, kind=SessionKind.COOKIE)

    assert signed_in.tokens is None
    session = await world.accounts.authenticate_cookie_session(signed_in.session.id)
    assert session.user_id == signed_in.user.id
    await world.accounts.end_cookie_session(signed_in.session.id)
    with pytest.raises(Unauthenticated) as caught:
        await world.accounts.authenticate_cookie_session(signed_in.session.id)
    assert caught.value.code == "session_ended"


async def test_a_token_session_is_not_a_cookie_session(world: World) -> None:
    await register(world, "alice")
    signed_in = await login(world)

    with pytest.raises(Unauthenticated):
        await world.accounts.authenticate_cookie_session(signed_in.session.id)


async def test_refresh_rotates_the_tokens(world: World) -> None:
    await register(world, "alice")
    first = await login(world)
    assert first.tokens is not None

    user, second = await world.accounts.refresh(first.tokens.refresh_token)

    assert user.id == first.user.id
    assert second.refresh_token != first.tokens.refresh_token
    claims = await world.accounts.authenticate_token(second.access_token)
    assert claims.session_id == first.session.id
    _, third = await world.accounts.refresh(second.refresh_token)
    assert await world.accounts.authenticate_token(third.access_token)


async def test_reusing_a_rotated_refresh_token_ends_the_whole_sign_in(world: World) -> None:
    await register(world, "alice")
    signed_in = await login(world)
    assert signed_in.tokens is not None
    stolen = signed_in.tokens.refresh_token
    _, newest = await world.accounts.refresh(stolen)

    with pytest.raises(Unauthenticated) as caught:
        await world.accounts.refresh(stolen)

    assert caught.value.code == "token_reused"
    with pytest.raises(Unauthenticated) as refused:
        await world.accounts.refresh(newest.refresh_token)
    assert refused.value.code == "invalid_token"
    for access_token in (newest.access_token, signed_in.tokens.access_token):
        with pytest.raises(Unauthenticated):
            await world.accounts.authenticate_token(access_token)


async def test_reuse_ends_only_that_sign_in(world: World) -> None:
    await register(world, "alice")
    phone = await login(world)
    laptop = await login(world)
    assert phone.tokens is not None and laptop.tokens is not None
    await world.accounts.refresh(phone.tokens.refresh_token)

    with pytest.raises(Unauthenticated):
        await world.accounts.refresh(phone.tokens.refresh_token)

    assert await world.accounts.authenticate_token(laptop.tokens.access_token)
    assert await world.accounts.refresh(laptop.tokens.refresh_token)


@pytest.mark.parametrize("token", ["", "garbage", "x" * 43])
async def test_refresh_with_an_unknown_token_is_refused(world: World, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await world.accounts.refresh(token)

    assert caught.value.code == "invalid_token"


async def test_refresh_after_the_session_lifetime_is_refused(world: World) -> None:
    await register(world, "alice")
    signed_in = await login(world)
    assert signed_in.tokens is not None

    world.clock.advance(world.settings.refresh_token_ttl)

    with pytest.raises(Unauthenticated) as caught:
        await world.accounts.refresh(signed_in.tokens.refresh_token)
    assert caught.value.code == "invalid_token"


async def test_logout_revokes_the_access_and_refresh_tokens(world: World) -> None:
    await register(world, "alice")
    signed_in = await login(world)
    assert signed_in.tokens is not None
    claims = await world.accounts.authenticate_token(signed_in.tokens.access_token)

    await world.accounts.logout(claims)

    with pytest.raises(Unauthenticated) as access:
        await world.accounts.authenticate_token(signed_in.tokens.access_token)
    assert access.value.code == "invalid_token"
    with pytest.raises(Unauthenticated) as refresh:
        await world.accounts.refresh(signed_in.tokens.refresh_token)
    assert refresh.value.code == "invalid_token"


async def test_access_token_expires_after_its_lifetime(world: World) -> None:
    await register(world, "alice")
    signed_in = await login(world)
    assert signed_in.tokens is not None

    world.clock.advance(world.settings.access_token_ttl - 1)
    assert await world.accounts.authenticate_token(signed_in.tokens.access_token)
    world.clock.advance(1)

    with pytest.raises(Unauthenticated) as caught:
        await world.accounts.authenticate_token(signed_in.tokens.access_token)
    assert caught.value.code == "token_expired"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not.a.jwt",
        JwtAccessTokens(b"another-key-of-at-least-32-bytes-long", 900).issue(
            "user", "session", START
        )[0],
    ],
)
async def test_forged_or_malformed_access_token_is_refused(world: World, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await world.accounts.authenticate_token(token)

    assert caught.value.code == "invalid_token"


def test_access_token_is_judged_by_the_given_clock_only() -> None:
    # A server whose clock runs a little ahead of the one checking the token
    # (another instance, or a test clock) issues tokens "from the future".
    codec = JwtAccessTokens(JWT_KEY, 900)
    ahead = START.replace(year=2099)
    token, issued = codec.issue("user", "session", ahead)

    assert codec.verify(token, ahead + timedelta(seconds=1)) == issued


# -- password reset -----------------------------------------------------------


async def _reset_mail(world: World, address: str = "alice@example.com") -> str:
    world.mailer.sent.clear()
    await world.accounts.request_password_reset(address)
    [mail] = world.mailer.sent
    assert mail.to == "alice@example.com"
    assert "https://chat.example.org/#reset-password?token=" in mail.body
    return code_in(mail)


async def test_password_reset_mails_a_link_to_an_active_account(world: World) -> None:
    await register(world, "alice")

    await _reset_mail(world, "ALICE@example.com")


@pytest.mark.parametrize("case", ["unknown address", "disabled account", "mail rate limited"])
async def test_password_reset_is_silent_when_no_mail_goes_out(world: World, case: str) -> None:
    await register(world, "alice")
    world.mailer.sent.clear()
    address = "alice@example.com"
    if case == "unknown address":
        address = "nobody@example.com"
    elif case == "disabled account":
        await world.admin.set_disabled("alice", True)
    else:
        world.limiter.refuse(60.0, prefix="mail:")

    await world.accounts.request_password_reset(address)  # no error: the same answer

    assert world.mailer.sent == []


async def test_password_reset_token_works_once(world: World) -> None:
    await register(world, "alice")
    token = await _reset_mail(world)

    await world.accounts.reset_password(token, NEW_PASSWORD)

    assert await login(world, password=NEW_PASSWORD)
    with pytest.raises(Unauthenticated):
        await login(world, password=PASSWORD)
    with pytest.raises(InvalidInput) as caught:
        await world.accounts.reset_password(token, "yet another password")
    assert caught.value.code == "invalid_token"
    assert await login(world, password=NEW_PASSWORD)


async def test_password_reset_token_expires(world: World) -> None:
    await register(world, "alice")
    token = await _reset_mail(world)

    world.clock.advance(world.settings.password_reset_ttl)

    with pytest.raises(InvalidInput) as caught:
        await world.accounts.reset_password(token, NEW_PASSWORD)
    assert caught.value.code == "invalid_token"
    assert await login(world, password=PASSWORD)


async def test_password_reset_token_is_still_good_just_before_it_expires(world: World) -> None:
    await register(world, "alice")
    token = await _reset_mail(world)

    world.clock.advance(world.settings.password_reset_ttl - 1)

    await world.accounts.reset_password(token, NEW_PASSWORD)
    assert await login(world, password=NEW_PASSWORD)


async def test_password_reset_ends_every_sign_in(world: World) -> None:
    await register(world, "alice")
    signed_in = await login(world)
    assert signed_in.tokens is not None
    cookie = await login(world, kind=SessionKind.COOKIE)
    token = await _reset_mail(world)

    await world.accounts.reset_password(token, NEW_PASSWORD)

    with pytest.raises(Unauthenticated):
        await world.accounts.authenticate_token(signed_in.tokens.access_token)
    with pytest.raises(Unauthenticated):
        await world.accounts.refresh(signed_in.tokens.refresh_token)
    with pytest.raises(Unauthenticated):
        await world.accounts.authenticate_cookie_session(cookie.session.id)


async def test_password_reset_with_a_weak_password_keeps_the_token(world: World) -> None:
    await register(world, "alice")
    token = await _reset_mail(world)

    with pytest.raises(InvalidInput) as caught:
        await world.accounts.reset_password(token, "short")

    assert caught.value.code == "weak_password"
    await world.accounts.reset_password(token, NEW_PASSWORD)
    assert await login(world, password=NEW_PASSWORD)


async def test_using_one_reset_link_retires_the_others(world: World) -> None:
    await register(world, "alice")
    first = await _reset_mail(world)
    second = await _reset_mail(world)

    await world.accounts.reset_password(second, NEW_PASSWORD)

    with pytest.raises(InvalidInput):
        await world.accounts.reset_password(first, "yet another password")


async def test_password_reset_proves_the_address(world: World) -> None:
    user = await register(world, "alice")
    assert not user.email_verified
    token = await _reset_mail(world)

    await world.accounts.reset_password(token, NEW_PASSWORD)

    assert (await world.accounts.get_user(user.id)).email_verified


# -- email verification and changes -------------------------------------------


async def test_email_verification_link_works_once(world: World) -> None:
    user = await register(world, "alice")
    [mail] = world.mailer.sent

    await world.accounts.verify_email(code_in(mail))

    assert (await world.accounts.get_user(user.id)).email_verified
    with pytest.raises(InvalidInput) as caught:
        await world.accounts.verify_email(code_in(mail))
    assert caught.value.code == "invalid_token"


async def test_the_mailed_code_pasted_with_spaces_around_it_verifies(world: World) -> None:
    await register(world)
    [mail] = world.mailer.sent
    # Copied from a mail client: a line break and spaces come along.
    verified = await world.accounts.verify_email(f"  {code_in(mail)}\n")
    assert verified.email_verified
    with pytest.raises(InvalidInput):  # still once only
        await world.accounts.verify_email(code_in(mail))


async def test_email_verification_link_expires(world: World) -> None:
    user = await register(world, "alice")
    [mail] = world.mailer.sent

    world.clock.advance(world.settings.email_verification_ttl)

    with pytest.raises(InvalidInput):
        await world.accounts.verify_email(code_in(mail))
    assert not (await world.accounts.get_user(user.id)).email_verified


async def test_email_verification_link_is_void_after_an_email_change(world: World) -> None:
    user = await register(world, "alice")
    [old_mail] = world.mailer.sent

    await world.accounts.update_profile(
        user.id, email="alice@elsewhere.org", current_password=PASSWORD
    )

    with pytest.raises(InvalidInput) as caught:
        await world.accounts.verify_email(code_in(old_mail))
    assert caught.value.code == "invalid_token"
    assert not (await world.accounts.get_user(user.id)).email_verified
    [new_mail] = world.mailer.to("alice@elsewhere.org")
    verified = await world.accounts.verify_email(code_in(new_mail))
    assert verified.email == "alice@elsewhere.org"
    assert verified.email_verified


async def test_request_email_verification_sends_another_link(world: World) -> None:
    user = await register(world, "alice")

    await world.accounts.request_email_verification(user.id)

    assert len(world.mailer.to("alice@example.com")) == 2
    await world.accounts.verify_email(code_in(world.mailer.sent[-1]))
    with pytest.raises(Conflict) as caught:
        await world.accounts.request_email_verification(user.id)
    assert caught.value.code == "already_verified"


@pytest.mark.parametrize("password", [None, "", "wrong password"])
async def test_changing_the_email_needs_the_current_password(
    world: World, password: str | None
) -> None:
    user = await register(world, "alice")

    with pytest.raises(Forbidden) as caught:
        await world.accounts.update_profile(
            user.id, email="alice@elsewhere.org", current_password=password
        )

    assert caught.value.code == "wrong_password"
    assert (await world.accounts.get_user(user.id)).email == "alice@example.com"
    assert world.mailer.to("alice@elsewhere.org") == []


async def test_changing_the_email_unverifies_it(world: World) -> None:
    user = await register(world, "alice")
    await world.accounts.verify_email(code_in(world.mailer.sent[0]))

    updated = await world.accounts.update_profile(
        user.id, email="alice@elsewhere.org", current_password=PASSWORD
    )

    assert updated.email == "alice@elsewhere.org"
    assert not updated.email_verified
    assert not (await world.accounts.get_user(user.id)).email_verified
    assert len(world.mailer.to("alice@elsewhere.org")) == 1
    assert await login(world, "alice@elsewhere.org")


async def test_changing_only_the_capitalisation_keeps_verification(world: World) -> None:
    user = await register(world, "alice")
    await world.accounts.verify_email(code_in(world.mailer.sent[0]))

    updated = await world.accounts.update_profile(user.id, email="Alice@example.com")

    assert updated.email == "Alice@example.com"
    assert updated.email_verified


async def test_changing_to_a_taken_email_changes_nothing(world: World) -> None:
    user = await register(world, "alice")
    await register(world, "bob")

    with pytest.raises(Conflict) as caught:
        await world.accounts.update_profile(
            user.id, email="BOB@example.com", current_password=PASSWORD
        )

    assert caught.value.code == "email_taken"
    assert await world.accounts.get_user(user.id) == user
    assert world.mailer.to("BOB@example.com") == []


@pytest.mark.parametrize(
    ("display_name", "shown"),
    [("  Alice   in\tWonderland ", "Alice in Wonderland"), ("", "alice"), ("   ", "alice")],
)
async def test_display_name_is_tidied(world: World, display_name: str, shown: str) -> None:
    user = await register(world, "alice")

    updated = await world.accounts.update_profile(user.id, display_name=display_name)

    assert updated.display_name == shown
    assert (await world.accounts.get_user(user.id)).display_name == shown


async def test_get_user_of_an_unknown_id_is_not_found(world: World) -> None:
    with pytest.raises(NotFound) as caught:
        await world.accounts.get_user("01HZZZZZZZZZZZZZZZZZZZZZZZ")

    assert caught.value.code == "user_not_found"


# -- password change ----------------------------------------------------------


async def test_change_password_ends_other_sign_ins_but_keeps_this_one(world: World) -> None:
    await register(world, "alice")
    here = await login(world)
    there = await login(world)
    browser = await login(world, kind=SessionKind.COOKIE)
    assert here.tokens is not None and there.tokens is not None

    await world.accounts.change_password(
        here.user.id,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        session_id=here.session.id,
    )

    assert await world.accounts.authenticate_token(here.tokens.access_token)
    assert await world.accounts.refresh(here.tokens.refresh_token)
    with pytest.raises(Unauthenticated):
        await world.accounts.authenticate_token(there.tokens.access_token)
    with pytest.raises(Unauthenticated):
        await world.accounts.refresh(there.tokens.refresh_token)
    with pytest.raises(Unauthenticated):
        await world.accounts.authenticate_cookie_session(browser.session.id)
    with pytest.raises(Unauthenticated):
        await login(world, password=PASSWORD)
    assert await login(world, password=NEW_PASSWORD)


async def test_change_password_with_a_wrong_current_password_changes_nothing(
    world: World,
) -> None:
    await register(world, "alice")
    here = await login(world)

    with pytest.raises(Forbidden) as caught:
        await world.accounts.change_password(
            here.user.id,
            current_password="wrong password",
            new_password=NEW_PASSWORD,
            session_id=here.session.id,
        )

    assert caught.value.code == "wrong_password"
    assert await login(world, password=PASSWORD)


# -- avatars ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")],
)
async def test_set_avatar_accepts_pictures_by_content(
    world: World, data: bytes, media_type: str
) -> None:
    user = await register(world, "alice")

    updated = await world.accounts.set_avatar(user.id, data)

    assert updated.avatar_type == media_type
    location, served = await world.accounts.avatar(user.id, "private")
    assert served.content_type == media_type
    assert updated.avatar_sha256 is not None
    assert location.path == world.blob_store.path(updated.avatar_sha256)
    assert await world.blob_store.read(updated.avatar_sha256) == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a" + b"\x00" * 32,
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        PNG[1:],
    ],
)
async def test_set_avatar_refuses_other_content(world: World, data: bytes) -> None:
    user = await register(world, "alice")

    with pytest.raises(UnsupportedMediaType) as caught:
        await world.accounts.set_avatar(user.id, data)

    assert caught.value.code == "unsupported_image"
    assert world.blob_store.blobs == {}
    with pytest.raises(NotFound):
        await world.accounts.avatar(user.id, "private")


async def test_set_avatar_refuses_more_than_2_mb(world: World) -> None:
    user = await register(world, "alice")
    at_limit = PNG + b"\x00" * (AVATAR_MAX_BYTES - len(PNG))

    with pytest.raises(TooLarge) as caught:
        await world.accounts.set_avatar(user.id, at_limit + b"\x00")

    assert caught.value.code == "avatar_too_large"
    assert world.blob_store.blobs == {}
    assert (await world.accounts.set_avatar(user.id, at_limit)).avatar_type == "image/png"


async def test_replacing_the_avatar_releases_the_old_picture(world: World) -> None:
    user = await register(world, "alice")
    old = await world.accounts.set_avatar(user.id, PNG)

    new = await world.accounts.set_avatar(user.id, JPEG)

    assert new.avatar_sha256 is not None and old.avatar_sha256 is not None
    assert list(world.blob_store.blobs) == [new.avatar_sha256]
    assert list(world.uow.tables.blobs) == [new.avatar_sha256]
    assert (await world.accounts.avatar(user.id, "private"))[1].content_type == "image/jpeg"


async def test_setting_the_same_avatar_again_keeps_it(world: World) -> None:
    user = await register(world, "alice")
    await world.accounts.set_avatar(user.id, PNG)

    again = await world.accounts.set_avatar(user.id, PNG)

    assert again.avatar_sha256 is not None
    assert await world.blob_store.read(again.avatar_sha256) == PNG


async def test_two_users_share_one_picture_until_both_drop_it(world: World) -> None:
    alice = await register(world, "alice")
    bob = await register(world, "bob")
    await world.accounts.set_avatar(alice.id, PNG)
    shared = await world.accounts.set_avatar(bob.id, PNG)
    assert shared.avatar_sha256 is not None

    await world.accounts.remove_avatar(alice.id)
    assert shared.avatar_sha256 in world.blob_store.blobs
    await world.accounts.remove_avatar(bob.id)

    assert world.blob_store.blobs == {}
    with pytest.raises(NotFound) as caught:
        await world.accounts.avatar(bob.id, "private")
    assert caught.value.code == "no_avatar"


# -- rate limits --------------------------------------------------------------


async def test_registration_too_fast_is_rate_limited(world: World) -> None:
    world.limiter.refuse(42.5, prefix="register:ip:203.0.113.7")

    with pytest.raises(RateLimited) as caught:
        await register(world, "alice", client=ClientInfo(ip="203.0.113.7"))

    assert caught.value.retry_after == 42.5
    assert caught.value.code == "rate_limited"
    assert world.uow.tables.users == {}
    assert await register(world, "alice", client=ClientInfo(ip="198.51.100.1"))


@pytest.mark.parametrize("bucket", ["ip", "account"])
async def test_login_too_fast_is_rate_limited(world: World, bucket: str) -> None:
    user = await register(world, "alice")
    prefix = "login:ip:203.0.113.7" if bucket == "ip" else f"login:account:{user.id}"
    world.limiter.refuse(7.0, prefix=prefix)

    with pytest.raises(RateLimited) as caught:
        await login(world, "Alice", client=ClientInfo(ip="203.0.113.7"))

    assert caught.value.retry_after == 7.0
    assert world.uow.tables.sessions == {}


async def test_verification_mails_are_rate_limited(world: World) -> None:
    user = await register(world, "alice")
    world.limiter.refuse(600.0, prefix=f"mail:{user.id}")

    with pytest.raises(RateLimited) as caught:
        await world.accounts.request_email_verification(user.id)

    assert caught.value.retry_after == 600.0
    assert len(world.mailer.sent) == 1


async def test_limits_disabled_skip_the_limiter() -> None:
    world = make_world(AccountSettings(limits_enabled=False))
    world.limiter.refuse(60.0)

    user = await register(world, "alice")
    assert await login(world)
    await world.accounts.request_email_verification(user.id)
    await world.accounts.request_password_reset("alice@example.com")

    assert world.limiter.hits == []
    assert len(world.mailer.sent) == 3


async def test_failed_transaction_changes_nothing(world: World) -> None:
    """The fake's rollback, which the 'no user created' checks rely on."""
    await register(world, "alice")
    before = world.uow.tables.snapshot()

    with pytest.raises(RuntimeError):
        async with world.uow.transaction() as repos:
            user = await repos.users.get_by_login("alice")
            assert user is not None
            await repos.users.update(replace(user, is_admin=False))
            raise RuntimeError("boom")

    assert world.uow.tables == before


# -- what an earlier review found ---------------------------------------------


async def test_login_limit_counts_an_account_once_whatever_name_is_used(world: World) -> None:
    user = await register(world, "alice")
    for name in ("alice", "ALICE", "alice@example.com"):
        await login(world, name)
    account_keys = {key for key, _, _ in world.limiter.hits if key.startswith("login:account:")}
    assert account_keys == {f"login:account:{user.id}"}


async def test_password_change_retires_mailed_reset_links(world: World) -> None:
    await register(world, "alice")
    token = await _reset_mail(world)
    signed_in = await login(world)
    await world.accounts.change_password(
        signed_in.user.id,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        session_id=signed_in.session.id,
    )
    with pytest.raises(InvalidInput):
        await world.accounts.reset_password(token, "a password from the old link")
    assert await login(world, password=NEW_PASSWORD)


async def test_email_change_retires_reset_links_sent_to_the_old_address(world: World) -> None:
    user = await register(world, "alice")
    token = await _reset_mail(world)
    await world.accounts.update_profile(
        user.id, email="alice@new.example", current_password=PASSWORD
    )
    with pytest.raises(InvalidInput):
        await world.accounts.reset_password(token, "a password from the old link")


async def test_failed_avatar_transaction_leaves_no_orphan_bytes(world: World) -> None:
    user = await register(world, "alice")

    class Boom(Exception):
        pass

    original = world.uow.transaction

    def failing_transaction():  # type: ignore[no-untyped-def]
        raise Boom

    world.uow.transaction = failing_transaction  # type: ignore[method-assign]
    with pytest.raises(Boom):
        await world.accounts.set_avatar(user.id, PNG)
    world.uow.transaction = original  # type: ignore[method-assign]
    assert world.blob_store.blobs == {}
