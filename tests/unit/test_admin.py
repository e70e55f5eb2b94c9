"""AdminService driven through the in-memory fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gortc.entities.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from gortc.entities.opaque_tokens import hash_opaque_token
from gortc.entities.sessions import SessionKind
from gortc.entities.users import User
from gortc.usecases.accounts import SignedIn
from tests.unit.fakes import INVITE_TTL, START, World

PASSWORD = "correct horse battery"
NEW_PASSWORD = "tr0ub4dor & 3"


async def add(world: World, username: str, *, admin: bool = False) -> User:
    return await world.admin.add_user(
        username=username, email=f"{username}@example.com", password=PASSWORD, admin=admin
    )


async def login(world: World, name: str, password: str = PASSWORD) -> SignedIn:
    return await world.accounts.login(login=name, password=password)


# -- accounts -----------------------------------------------------------------


async def test_add_user_creates_a_verified_account_that_can_sign_in(world: World) -> None:
    user = await world.admin.add_user(username=" Bob ", email="Bob@Example.com", password=PASSWORD)

    assert user.username == "bob"
    assert user.email == "Bob@example.com"
    assert user.email_verified
    assert not user.is_admin
    assert (await login(world, "bob")).user.id == user.id
    # The operator vouches for the address: no verification mail.
    assert world.mailer.sent == []


async def test_add_user_can_make_an_administrator(world: World) -> None:
    await add(world, "bob")

    root = await add(world, "root", admin=True)

    assert root.is_admin


@pytest.mark.parametrize(
    ("username", "email", "code"),
    [("BOB", "other@example.com", "username_taken"), ("other", "BOB@example.com", "email_taken")],
)
async def test_add_user_refuses_taken_names(
    world: World, username: str, email: str, code: str
) -> None:
    await add(world, "bob")

    with pytest.raises(Conflict) as caught:
        await world.admin.add_user(username=username, email=email, password=PASSWORD)

    assert caught.value.code == code
    assert len(await world.admin.list_users()) == 1


@pytest.mark.parametrize(
    ("username", "email", "password", "code"),
    [
        ("b", "b@example.com", PASSWORD, "invalid_username"),
        ("bob", "bob", PASSWORD, "invalid_email"),
        ("bob", "bob@example.com", "short", "weak_password"),
    ],
)
async def test_add_user_refuses_bad_input(
    world: World, username: str, email: str, password: str, code: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await world.admin.add_user(username=username, email=email, password=password)

    assert caught.value.code == code
    assert await world.admin.list_users() == []


async def test_list_users_pages_in_id_order(world: World) -> None:
    users = [await add(world, name) for name in ("carol", "alice", "bob", "dave", "erin")]
    ids = sorted(user.id for user in users)

    first_page = await world.admin.list_users(limit=2)
    second_page = await world.admin.list_users(limit=2, after=first_page[-1].id)
    rest = await world.admin.list_users(limit=10, after=second_page[-1].id)

    assert [user.id for user in first_page + second_page + rest] == ids
    assert await world.admin.list_users(after=ids[-1]) == []


async def test_disable_ends_every_sign_in_and_refuses_new_ones(world: World) -> None:
    await add(world, "bob")
    signed_in = await login(world, "bob")
    cookie = await world.accounts.login(login="bob", password=PASSWORD, kind=SessionKind.COOKIE)
    assert signed_in.tokens is not None

    disabled = await world.admin.set_disabled("BOB", True)

    assert disabled.is_disabled
    with pytest.raises(Unauthenticated):
        await world.accounts.authenticate_token(signed_in.tokens.access_token)
    with pytest.raises(Unauthenticated):
        await world.accounts.refresh(signed_in.tokens.refresh_token)
    with pytest.raises(Unauthenticated):
        await world.accounts.authenticate_cookie_session(cookie.session.id)
    with pytest.raises(Forbidden) as caught:
        await login(world, "bob")
    assert caught.value.code == "account_disabled"


async def test_disable_leaves_other_accounts_signed_in(world: World) -> None:
    await add(world, "bob")
    await add(world, "carol")
    carol = await login(world, "carol")
    assert carol.tokens is not None

    await world.admin.set_disabled("bob", True)

    assert await world.accounts.authenticate_token(carol.tokens.access_token)


async def test_enable_lets_the_account_sign_in_again(world: World) -> None:
    await add(world, "bob")
    await world.admin.set_disabled("bob", True)

    enabled = await world.admin.set_disabled("bob@example.com", False)

    assert not enabled.is_disabled
    assert await login(world, "bob")


async def test_set_password_replaces_the_password_and_ends_sign_ins(world: World) -> None:
    await add(world, "bob")
    signed_in = await login(world, "bob")
    assert signed_in.tokens is not None

    await world.admin.set_password("bob", NEW_PASSWORD)

    with pytest.raises(Unauthenticated):
        await world.accounts.authenticate_token(signed_in.tokens.access_token)
    with pytest.raises(Unauthenticated):
        await world.accounts.refresh(signed_in.tokens.refresh_token)
    with pytest.raises(Unauthenticated):
        await login(world, "bob", PASSWORD)
    assert await login(world, "bob", NEW_PASSWORD)


async def test_set_password_refuses_a_weak_password(world: World) -> None:
    await add(world, "bob")

    with pytest.raises(InvalidInput) as caught:
        await world.admin.set_password("bob", "short")

    assert caught.value.code == "weak_password"
    assert await login(world, "bob", PASSWORD)


async def test_set_admin_grants_and_revokes_administration(world: World) -> None:
    bob = await add(world, "bob")

    assert (await world.admin.set_admin("bob", True)).is_admin
    assert await world.admin.create_invite(bob.id)

    assert not (await world.admin.set_admin("bob", False)).is_admin
    with pytest.raises(Forbidden):
        await world.admin.create_invite(bob.id)


@pytest.mark.parametrize("action", ["disable", "enable", "set_password", "set_admin"])
async def test_actions_on_an_unknown_login_are_not_found(world: World, action: str) -> None:
    with pytest.raises(NotFound) as caught:
        if action == "disable":
            await world.admin.set_disabled("nobody", True)
        elif action == "enable":
            await world.admin.set_disabled("nobody", False)
        elif action == "set_password":
            await world.admin.set_password("nobody", NEW_PASSWORD)
        else:
            await world.admin.set_admin("nobody", True)

    assert caught.value.code == "user_not_found"


# -- invites ------------------------------------------------------------------


async def test_operator_creates_invites(world: World) -> None:
    new = await world.admin.create_invite(None, note="  for the new intern  ")

    assert new.invite.created_by is None
    assert new.invite.note == "for the new intern"
    assert new.invite.expires_at == START + timedelta(seconds=INVITE_TTL)
    assert new.invite.code_hash == hash_opaque_token(new.code)  # only the hash is kept
    assert await world.admin.list_invites(None) == [new.invite]


async def test_administrator_creates_invites(world: World) -> None:
    root = await add(world, "root", admin=True)

    new = await world.admin.create_invite(root.id, note="x" * 300)

    assert new.invite.created_by == root.id
    assert len(new.invite.note) == 200
    assert await world.admin.list_invites(root.id) == [new.invite]


@pytest.mark.parametrize("actor", ["plain user", "disabled admin", "unknown id"])
async def test_only_administrators_create_or_list_invites(world: World, actor: str) -> None:
    if actor == "plain user":
        actor_id = (await add(world, "bob")).id
    elif actor == "disabled admin":
        actor_id = (await add(world, "root", admin=True)).id
        await world.admin.set_disabled("root", True)
    else:
        actor_id = "01HZZZZZZZZZZZZZZZZZZZZZZZ"

    with pytest.raises(Forbidden) as caught:
        await world.admin.create_invite(actor_id)
    assert caught.value.code == "admin_only"
    with pytest.raises(Forbidden):
        await world.admin.list_invites(actor_id)
    assert world.uow.tables.invites == {}
