"""Groups, members, invitations and messages, through the HTTP API.

The tables (rights, outsiders, bad bodies) run against one server per module:
each case stages a fresh group, and the people in it play the roles. The
stories below them get a fresh server each.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gortc.app import create_app
from gortc.config import Config
from gortc.delivery.keys import ADMIN
from gortc.entities.groups import Role
from gortc.entities.ids import new_id
from gortc.entities.rights import Action, may
from tests.conftest import bearer, dump_database, login, make_config, register

GROUPS = "/api/v1/groups"


# -- helpers ------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: str
    username: str
    headers: dict[str, str]


async def sign_up(client: TestClient, username: str) -> Person:
    user = await register(client, username)
    return Person(user["id"], username, bearer(await login(client, username)))


async def call(
    client: TestClient,
    method: str,
    path: str,
    who: Person | None,
    *,
    expect: int,
    body: Any = None,
) -> Any:
    response = await client.request(
        method, path, json=body, headers=who.headers if who is not None else {}
    )
    text = await response.text()
    assert response.status == expect, f"{method} {path} -> {response.status}: {text}"
    return json.loads(text) if text else None


async def refused(
    client: TestClient,
    method: str,
    path: str,
    who: Person,
    *,
    status: int,
    code: str,
    body: Any = None,
) -> dict[str, Any]:
    error: dict[str, Any] = (await call(client, method, path, who, expect=status, body=body))[
        "error"
    ]
    assert error["code"] == code, error
    assert error["message"]
    return error


async def create_group(client: TestClient, owner: Person, name: str = "crew") -> dict[str, Any]:
    group: dict[str, Any] = await call(
        client, "POST", GROUPS, owner, expect=201, body={"name": name}
    )
    return group


async def add_member(
    client: TestClient, group_id: str, by: Person, who: Person, role: str = "member"
) -> dict[str, Any]:
    member: dict[str, Any] = await call(
        client,
        "POST",
        f"{GROUPS}/{group_id}/members",
        by,
        expect=201,
        body={"user_id": who.id, "role": role},
    )
    return member


async def post_message(client: TestClient, group_id: str, who: Person, text: str) -> dict[str, Any]:
    message: dict[str, Any] = await call(
        client, "POST", f"{GROUPS}/{group_id}/messages", who, expect=201, body={"body": text}
    )
    return message


async def my_groups(client: TestClient, who: Person) -> dict[str, dict[str, Any]]:
    page = await call(client, "GET", GROUPS, who, expect=200)
    return {group["id"]: group for group in page["items"]}


async def history(client: TestClient, group_id: str, who: Person) -> list[dict[str, Any]]:
    page = await call(client, "GET", f"{GROUPS}/{group_id}/messages", who, expect=200)
    items: list[dict[str, Any]] = page["items"]
    return items


async def roles(client: TestClient, group_id: str, who: Person) -> dict[str, str]:
    page = await call(client, "GET", f"{GROUPS}/{group_id}/members", who, expect=200)
    return {member["username"]: member["role"] for member in page["items"]}


# -- one server for the tables ------------------------------------------------

WORLD_PEOPLE = (
    "owner",
    "admin",
    "admin2",
    "member",
    "member2",
    "spare",
    "stranger",
    "former",
    "invitee",
    "alice",
    "bob",
)


@dataclass
class World:
    client: TestClient
    database: Config
    people: dict[str, Person]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    config = make_config(tmp_path_factory.mktemp("world"), limits={"enabled": False})
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    try:
        people = {name: await sign_up(client, name) for name in WORLD_PEOPLE}
        yield World(client, config, people)
    finally:
        await client.close()


in_world = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # The stories: a fresh server each, no rate limits (one test turns them on).
    return make_config(tmp_path / "data", limits={"enabled": False})


# -- the rights matrix over HTTP ----------------------------------------------


@dataclass(frozen=True)
class Scene:
    group: str  # the group's path
    people: dict[str, Person]
    own_message: str  # the actor's
    others_message: str  # member2's (the peer's, in a direct conversation)


@dataclass(frozen=True)
class RestAction:
    action: Action
    success: int
    request: Callable[[Scene], tuple[str, str, dict[str, Any] | None]]


REST_ACTIONS: dict[str, RestAction] = {
    "post a message": RestAction(
        Action.POST, 201, lambda s: ("POST", f"{s.group}/messages", {"body": "hello"})
    ),
    "edit own message": RestAction(
        Action.EDIT_OWN_MESSAGE,
        200,
        lambda s: ("PATCH", f"{s.group}/messages/{s.own_message}", {"body": "edited"}),
    ),
    "delete own message": RestAction(
        Action.DELETE_OWN_MESSAGE,
        204,
        lambda s: ("DELETE", f"{s.group}/messages/{s.own_message}", None),
    ),
    "delete another's message": RestAction(
        Action.DELETE_OTHERS_MESSAGE,
        204,
        lambda s: ("DELETE", f"{s.group}/messages/{s.others_message}", None),
    ),
    "add a member": RestAction(
        Action.ADD_MEMBER,
        201,
        lambda s: ("POST", f"{s.group}/members", {"user_id": s.people["spare"].id}),
    ),
    "invite": RestAction(
        Action.ADD_MEMBER,
        201,
        lambda s: ("POST", f"{s.group}/invitations", {"user_id": s.people["spare"].id}),
    ),
    "remove a member": RestAction(
        Action.REMOVE_MEMBER,
        204,
        lambda s: ("DELETE", f"{s.group}/members/{s.people['member2'].id}", None),
    ),
    "remove an admin": RestAction(
        Action.REMOVE_ADMIN,
        204,
        lambda s: ("DELETE", f"{s.group}/members/{s.people['admin2'].id}", None),
    ),
    "change a role": RestAction(
        Action.CHANGE_ROLE,
        200,
        lambda s: ("PATCH", f"{s.group}/members/{s.people['member2'].id}", {"role": "admin"}),
    ),
    "rename": RestAction(Action.RENAME, 200, lambda s: ("PATCH", s.group, {"name": "renamed"})),
    "delete the group": RestAction(Action.DELETE_GROUP, 204, lambda s: ("DELETE", s.group, None)),
    "transfer ownership": RestAction(
        Action.TRANSFER_OWNERSHIP,
        200,
        lambda s: ("POST", f"{s.group}/owner", {"user_id": s.people["member2"].id}),
    ),
}
ACTOR_OF_ROLE = {Role.OWNER: "owner", Role.ADMIN: "admin", Role.MEMBER: "member"}


async def stage_group(world: World, actor: str) -> Scene:
    """A group of owner, admin, admin2, member, member2; spare stays out."""
    client, people = world.client, world.people
    owner = people["owner"]
    group = await create_group(client, owner)
    for name, role in (
        ("admin", "admin"),
        ("admin2", "admin"),
        ("member", "member"),
        ("member2", "member"),
    ):
        await add_member(client, group["id"], owner, people[name], role)
    own = await post_message(client, group["id"], people[actor], "mine")
    others = await post_message(client, group["id"], people["member2"], "theirs")
    return Scene(f"{GROUPS}/{group['id']}", people, own["id"], others["id"])


async def attempt(
    world: World, actor: Person, rest: RestAction, scene: Scene, allowed: bool
) -> None:
    method, path, body = rest.request(scene)
    before = dump_database(world.database)
    response = await world.client.request(method, path, json=body, headers=actor.headers)
    text = await response.text()
    if allowed:
        assert response.status == rest.success, text
        assert dump_database(world.database) != before
    else:
        assert response.status == 403, text
        error = json.loads(text)["error"]
        assert error["code"] == "not_allowed"
        assert error["message"]
        assert dump_database(world.database) == before


@in_world
@pytest.mark.parametrize("role", list(ACTOR_OF_ROLE), ids=str)
@pytest.mark.parametrize("name", list(REST_ACTIONS))
async def test_the_rights_matrix_holds_over_http(world: World, name: str, role: Role) -> None:
    rest = REST_ACTIONS[name]
    scene = await stage_group(world, ACTOR_OF_ROLE[role])
    actor = world.people[ACTOR_OF_ROLE[role]]
    await attempt(world, actor, rest, scene, may(role, rest.action))


@in_world
@pytest.mark.parametrize("actor_name", ["alice", "bob"])
@pytest.mark.parametrize("name", [name for name in REST_ACTIONS if name != "remove an admin"])
async def test_in_a_direct_conversation_both_only_talk(
    world: World, name: str, actor_name: str
) -> None:
    client, people = world.client, world.people
    actor = people[actor_name]
    peer = people["bob" if actor_name == "alice" else "alice"]
    own = await call(
        client, "POST", f"/api/v1/direct/{peer.id}/messages", actor, expect=201, body={"body": "hi"}
    )
    others = await call(
        client, "POST", f"/api/v1/direct/{actor.id}/messages", peer, expect=201, body={"body": "yo"}
    )
    assert own["group_id"] == others["group_id"]
    scene = Scene(
        f"{GROUPS}/{own['group_id']}",
        {"spare": people["spare"], "member2": peer},
        own["id"],
        others["id"],
    )
    rest = REST_ACTIONS[name]
    allowed = may(Role.MEMBER, rest.action, direct=True)
    assert allowed == (name in {"post a message", "edit own message", "delete own message"})
    await attempt(world, actor, rest, scene, allowed)


# -- outsiders learn nothing --------------------------------------------------

OUTSIDER_ROUTES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "get the group": ("GET", "", None),
    "rename": ("PATCH", "", {"name": "mine now"}),
    "delete the group": ("DELETE", "", None),
    "list members": ("GET", "/members", None),
    "add a member": ("POST", "/members", {"user_id": "{me}"}),
    "change a role": ("PATCH", "/members/{member}", {"role": "admin"}),
    "remove a member": ("DELETE", "/members/{member}", None),
    "leave": ("DELETE", "/members/{me}", None),
    "transfer ownership": ("POST", "/owner", {"user_id": "{me}"}),
    "invite": ("POST", "/invitations", {"username": "spare"}),
    "history": ("GET", "/messages", None),
    "post": ("POST", "/messages", {"body": "hello?"}),
    "edit a message": ("PATCH", "/messages/{message}", {"body": "mine now"}),
    "delete a message": ("DELETE", "/messages/{message}", None),
    "mark read": ("POST", "/read", {"seq": 1}),
}


async def stage_outsider(world: World, kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A group with a member and a message, and ``kind`` outside it: a
    stranger, a member since removed, or someone only invited."""
    client, people = world.client, world.people
    owner, member, outsider = people["owner"], people["member"], people[kind]
    group = await create_group(client, owner, "secret plans")
    await add_member(client, group["id"], owner, member)
    message = await post_message(client, group["id"], member, "the secret")
    if kind == "former":
        await add_member(client, group["id"], owner, outsider)
        await call(
            client, "DELETE", f"{GROUPS}/{group['id']}/members/{outsider.id}", owner, expect=204
        )
    elif kind == "invitee":
        await call(
            client,
            "POST",
            f"{GROUPS}/{group['id']}/invitations",
            owner,
            expect=201,
            body={"user_id": outsider.id},
        )
    return group, {"me": outsider.id, "member": member.id, "message": message["id"]}


@in_world
@pytest.mark.parametrize("kind", ["stranger", "former", "invitee"])
@pytest.mark.parametrize("route", list(OUTSIDER_ROUTES))
async def test_outsiders_get_the_answer_of_a_group_that_does_not_exist(
    world: World, route: str, kind: str
) -> None:
    group, ids = await stage_outsider(world, kind)
    outsider = world.people[kind]
    method, suffix, template = OUTSIDER_ROUTES[route]
    body = (
        {
            key: value.format(**ids) if isinstance(value, str) else value
            for key, value in template.items()
        }
        if template is not None
        else None
    )
    before = dump_database(world.database)

    answers = []
    for group_id in (group["id"], new_id()):
        response = await world.client.request(
            method,
            f"{GROUPS}/{group_id}{suffix.format(**ids)}",
            json=body,
            headers=outsider.headers,
        )
        answers.append((response.status, await response.json()))

    real, made_up = answers
    assert real == made_up
    assert real[0] == 404
    assert real[1]["error"]["code"] == "group_not_found"
    assert dump_database(world.database) == before


@in_world
@pytest.mark.parametrize("kind", ["stranger", "former", "invitee"])
async def test_outsiders_do_not_see_the_group_in_their_list(world: World, kind: str) -> None:
    group, _ = await stage_outsider(world, kind)
    assert group["id"] not in await my_groups(world.client, world.people[kind])
    assert group["id"] in await my_groups(world.client, world.people["member"])


# -- message bodies -----------------------------------------------------------

BAD_BODIES = {
    "empty": "",
    "whitespace only": " \n\t  ",
    "4,001 characters": "x" * 4001,
    "NUL": "a\u0000b",
    "escape sequence": "\u001b[31mred",
    "bell": "ding\u0007",
}


def message_route(way: str, group_id: str, message_id: str, peer: Person) -> tuple[str, str]:
    return {
        "post": ("POST", f"{GROUPS}/{group_id}/messages"),
        "edit": ("PATCH", f"{GROUPS}/{group_id}/messages/{message_id}"),
        "direct": ("POST", f"/api/v1/direct/{peer.id}/messages"),
    }[way]


@in_world
@pytest.mark.parametrize("way", ["post", "edit", "direct"])
@pytest.mark.parametrize("text", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_bad_message_bodies_are_refused_and_nothing_is_stored(
    world: World, text: str, way: str
) -> None:
    client, alice, bob = world.client, world.people["alice"], world.people["bob"]
    group = await create_group(client, alice)
    await add_member(client, group["id"], alice, bob)
    message = await post_message(client, group["id"], alice, "fine")
    method, path = message_route(way, group["id"], message["id"], bob)
    before = dump_database(world.database)

    await refused(
        client, method, path, alice, status=400, code="invalid_body_text", body={"body": text}
    )

    assert dump_database(world.database) == before


@in_world
async def test_a_lone_surrogate_is_refused_by_the_body_parser(world: World) -> None:
    client, alice = world.client, world.people["alice"]
    group = await create_group(client, alice)
    before = dump_database(world.database)
    response = await client.post(
        f"{GROUPS}/{group['id']}/messages",
        data=b'{"body": "half a \\ud83d smile"}',
        headers=alice.headers | {"Content-Type": "application/json"},
    )
    assert response.status == 400
    assert dump_database(world.database) == before
    assert (await response.json())["error"]["code"] == "invalid_body"


GOOD_BODIES = {
    "4,000 characters": "x" * 4000,
    "4,000 emoji": "😀" * 4000,
    "one character": "k",
    "newlines and tabs": "line one\n\tindented\nline three",
    "mixed scripts": "héllo wörld — 你好 👋🏽 مرحبا",
    "surrogate pair escaped": "\U0001f600",
    "looks like html": "<script>alert(1)</script> & done",
}


@in_world
@pytest.mark.parametrize("text", list(GOOD_BODIES.values()), ids=list(GOOD_BODIES))
async def test_good_message_bodies_come_back_exactly(world: World, text: str) -> None:
    client, alice, bob = world.client, world.people["alice"], world.people["bob"]
    group = await create_group(client, alice)
    await add_member(client, group["id"], alice, bob)
    posted = await post_message(client, group["id"], alice, text)
    assert posted["body"] == text
    [seen] = await history(client, group["id"], bob)
    assert seen["body"] == text
    edited = await call(
        client,
        "PATCH",
        f"{GROUPS}/{group['id']}/messages/{posted['id']}",
        alice,
        expect=200,
        body={"body": text[::-1]},
    )
    assert edited["body"] == text[::-1]


# -- groups: the stories --------------------------------------------------------


async def test_creating_a_group_makes_me_its_owner_and_only_member(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    group = await create_group(client, alice, "  Weekend   plans ")

    assert group["name"] == "Weekend plans"
    assert group["kind"] == "group"
    assert group["owner_id"] == alice.id
    assert group["role"] == "owner"
    assert (group["last_seq"], group["read_seq"], group["unread"]) == (0, 0, 0)
    assert group["peer"] is None
    assert await roles(client, group["id"], alice) == {"alice": "owner"}
    assert await call(client, "GET", f"{GROUPS}/{group['id']}", alice, expect=200) == group
    assert list(await my_groups(client, alice)) == [group["id"]]


async def test_unread_counts_messages_from_others_after_my_read_marker(
    client: TestClient,
) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    group = await create_group(client, alice)
    gid = group["id"]
    await add_member(client, gid, alice, bob)

    for text in ("one", "two", "three"):
        await post_message(client, gid, bob, text)
    await post_message(client, gid, alice, "mine")  # own messages never count
    assert (await my_groups(client, alice))[gid]["unread"] == 3
    assert (await my_groups(client, bob))[gid]["unread"] == 1

    await call(client, "POST", f"{GROUPS}/{gid}/read", alice, expect=204, body={"seq": 2})
    mine = (await my_groups(client, alice))[gid]
    assert (mine["read_seq"], mine["unread"]) == (2, 1)

    await call(client, "POST", f"{GROUPS}/{gid}/read", alice, expect=204, body={"seq": 4})
    mine = (await my_groups(client, alice))[gid]
    assert (mine["read_seq"], mine["unread"], mine["last_seq"]) == (4, 0, 4)

    # The marker never moves back...
    await call(client, "POST", f"{GROUPS}/{gid}/read", alice, expect=204, body={"seq": 1})
    assert (await my_groups(client, alice))[gid]["read_seq"] == 4
    # ...nor past the last message.
    await call(client, "POST", f"{GROUPS}/{gid}/read", bob, expect=204, body={"seq": 99})
    assert (await my_groups(client, bob))[gid]["read_seq"] == 4
    later = await post_message(client, gid, alice, "later")
    assert later["seq"] == 5
    assert (await my_groups(client, bob))[gid]["unread"] == 1

    # A deleted message is no longer unread.
    await call(client, "DELETE", f"{GROUPS}/{gid}/messages/{later['id']}", alice, expect=204)
    assert (await my_groups(client, bob))[gid]["unread"] == 0


async def test_an_admin_renames_and_every_member_sees_the_new_name(client: TestClient) -> None:
    alice, bob, carol = [await sign_up(client, name) for name in ("alice", "bob", "carol")]
    group = await create_group(client, alice, "old name")
    await add_member(client, group["id"], alice, bob, "admin")
    await add_member(client, group["id"], alice, carol)

    renamed = await call(
        client, "PATCH", f"{GROUPS}/{group['id']}", bob, expect=200, body={"name": " new  name "}
    )

    assert renamed["name"] == "new name"
    assert (await my_groups(client, carol))[group["id"]]["name"] == "new name"
    fetched = await call(client, "GET", f"{GROUPS}/{group['id']}", alice, expect=200)
    assert fetched["name"] == "new name"


async def test_deleting_a_group_takes_it_from_every_member(client: TestClient) -> None:
    alice, bob, carol = [await sign_up(client, name) for name in ("alice", "bob", "carol")]
    group = await create_group(client, alice)
    gid = group["id"]
    await add_member(client, gid, alice, bob)
    await post_message(client, gid, bob, "soon gone")
    await call(
        client, "POST", f"{GROUPS}/{gid}/invitations", alice, expect=201, body={"user_id": carol.id}
    )

    await call(client, "DELETE", f"{GROUPS}/{gid}", alice, expect=204)

    for person in (alice, bob):
        assert gid not in await my_groups(client, person)
        await refused(client, "GET", f"{GROUPS}/{gid}", person, status=404, code="group_not_found")
        await refused(
            client, "GET", f"{GROUPS}/{gid}/messages", person, status=404, code="group_not_found"
        )
    # A pending invitation to it goes too.
    assert (await call(client, "GET", "/api/v1/invitations", carol, expect=200))["items"] == []


async def test_members_and_admins_may_leave_but_the_owner_may_not(client: TestClient) -> None:
    alice, bob, carol = [await sign_up(client, name) for name in ("alice", "bob", "carol")]
    group = await create_group(client, alice)
    gid = group["id"]
    await add_member(client, gid, alice, bob)
    await add_member(client, gid, alice, carol, "admin")

    await call(client, "DELETE", f"{GROUPS}/{gid}/members/{bob.id}", bob, expect=204)
    await call(client, "DELETE", f"{GROUPS}/{gid}/members/{carol.id}", carol, expect=204)

    assert gid not in await my_groups(client, bob)
    assert gid not in await my_groups(client, carol)
    assert await roles(client, gid, alice) == {"alice": "owner"}
    await refused(
        client,
        "DELETE",
        f"{GROUPS}/{gid}/members/{alice.id}",
        alice,
        status=409,
        code="owner_cannot_leave",
    )
    assert gid in await my_groups(client, alice)


async def test_transferring_ownership_swaps_owner_and_former_owner_becomes_admin(
    client: TestClient,
) -> None:
    alice, bob, carol = [await sign_up(client, name) for name in ("alice", "bob", "carol")]
    gid = (await create_group(client, alice))["id"]
    await add_member(client, gid, alice, bob)

    await refused(
        client,
        "POST",
        f"{GROUPS}/{gid}/owner",
        alice,
        status=404,
        code="member_not_found",
        body={"user_id": carol.id},
    )
    group = await call(
        client, "POST", f"{GROUPS}/{gid}/owner", alice, expect=200, body={"user_id": bob.id}
    )

    assert group["owner_id"] == bob.id
    assert await roles(client, gid, bob) == {"bob": "owner", "alice": "admin"}
    assert (await my_groups(client, alice))[gid]["role"] == "admin"
    assert (await my_groups(client, bob))[gid]["owner_id"] == bob.id
    # The new owner's rights come with it: only bob may delete now.
    await refused(client, "DELETE", f"{GROUPS}/{gid}", alice, status=403, code="not_allowed")
    await call(client, "DELETE", f"{GROUPS}/{gid}/members/{alice.id}", alice, expect=204)
    await call(client, "DELETE", f"{GROUPS}/{gid}", bob, expect=204)


# -- members --------------------------------------------------------------------


async def test_adding_members_by_id_and_by_username(client: TestClient) -> None:
    alice, bob, carol = [await sign_up(client, name) for name in ("alice", "bob", "carol")]
    gid = (await create_group(client, alice))["id"]

    by_id = await call(
        client, "POST", f"{GROUPS}/{gid}/members", alice, expect=201, body={"user_id": bob.id}
    )
    by_name = await call(
        client,
        "POST",
        f"{GROUPS}/{gid}/members",
        alice,
        expect=201,
        body={"username": " Carol ", "role": "admin"},
    )

    assert (by_id["user_id"], by_id["username"], by_id["role"]) == (bob.id, "bob", "member")
    assert (by_name["user_id"], by_name["role"]) == (carol.id, "admin")
    assert await roles(client, gid, bob) == {"alice": "owner", "carol": "admin", "bob": "member"}
    assert (await my_groups(client, bob))[gid]["role"] == "member"
    assert (await my_groups(client, carol))[gid]["role"] == "admin"

    for body in ({"user_id": bob.id}, {"username": "carol"}, {"username": "alice"}):
        await refused(
            client,
            "POST",
            f"{GROUPS}/{gid}/members",
            alice,
            status=409,
            code="already_member",
            body=body,
        )


async def test_unknown_and_disabled_users_cannot_be_added_or_invited(client: TestClient) -> None:
    alice, dave = await sign_up(client, "alice"), await sign_up(client, "dave")
    gid = (await create_group(client, alice))["id"]
    await client.app[ADMIN].set_disabled("dave", True)

    for body in (
        {"user_id": new_id()},
        {"username": "nobody"},
        {"user_id": dave.id},
        {"username": "dave"},
    ):
        for route in ("members", "invitations"):
            await refused(
                client,
                "POST",
                f"{GROUPS}/{gid}/{route}",
                alice,
                status=404,
                code="user_not_found",
                body=body,
            )
    assert await roles(client, gid, alice) == {"alice": "owner"}


async def test_members_cannot_be_found_by_email(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    await sign_up(client, "carol")
    gid = (await create_group(client, alice))["id"]
    for route in ("members", "invitations"):
        await refused(
            client,
            "POST",
            f"{GROUPS}/{gid}/{route}",
            alice,
            status=404,
            code="user_not_found",
            body={"username": "carol@example.com"},
        )


async def test_roles_change_between_member_and_admin_but_not_the_owner(
    client: TestClient,
) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    gid = (await create_group(client, alice))["id"]
    await add_member(client, gid, alice, bob)
    path = f"{GROUPS}/{gid}/members/{bob.id}"

    promoted = await call(client, "PATCH", path, alice, expect=200, body={"role": "admin"})
    assert promoted["role"] == "admin"
    assert (await roles(client, gid, bob))["bob"] == "admin"
    # Now an admin, bob may rename...
    await call(client, "PATCH", f"{GROUPS}/{gid}", bob, expect=200, body={"name": "bob's"})

    demoted = await call(client, "PATCH", path, alice, expect=200, body={"role": "member"})
    assert demoted["role"] == "member"
    assert (await my_groups(client, bob))[gid]["role"] == "member"
    # ...and as a member again, may not.
    await refused(
        client, "PATCH", f"{GROUPS}/{gid}", bob, status=403, code="not_allowed", body={"name": "x"}
    )

    for role in ("admin", "member"):
        await refused(
            client,
            "PATCH",
            f"{GROUPS}/{gid}/members/{alice.id}",
            alice,
            status=409,
            code="owner_role",
            body={"role": role},
        )
    assert (await roles(client, gid, alice))["alice"] == "owner"


async def test_nobody_removes_the_owner(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    gid = (await create_group(client, alice))["id"]
    await add_member(client, gid, alice, bob, "admin")

    await refused(
        client, "DELETE", f"{GROUPS}/{gid}/members/{alice.id}", bob, status=403, code="not_allowed"
    )
    assert await roles(client, gid, bob) == {"alice": "owner", "bob": "admin"}


# -- invitations ------------------------------------------------------------------


async def invite(client: TestClient, gid: str, by: Person, who: Person) -> dict[str, Any]:
    invitation: dict[str, Any] = await call(
        client, "POST", f"{GROUPS}/{gid}/invitations", by, expect=201, body={"user_id": who.id}
    )
    return invitation


async def pending(client: TestClient, who: Person) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await call(client, "GET", "/api/v1/invitations", who, expect=200)
    )["items"]
    return items


async def test_an_accepted_invitation_makes_a_member(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    gid = (await create_group(client, alice, "book club"))["id"]

    invitation = await invite(client, gid, alice, bob)

    assert gid not in await my_groups(client, bob)  # not yet
    [seen] = await pending(client, bob)
    assert seen == invitation
    assert (seen["group_id"], seen["group_name"], seen["inviter_id"]) == (
        gid,
        "book club",
        alice.id,
    )
    assert await pending(client, alice) == []

    member = await call(
        client, "POST", f"/api/v1/invitations/{invitation['id']}/accept", bob, expect=200
    )

    assert (member["user_id"], member["role"]) == (bob.id, "member")
    assert await pending(client, bob) == []
    assert (await my_groups(client, bob))[gid]["role"] == "member"
    assert await roles(client, gid, alice) == {"alice": "owner", "bob": "member"}
    await refused(
        client,
        "POST",
        f"/api/v1/invitations/{invitation['id']}/accept",
        bob,
        status=404,
        code="invitation_not_found",
    )


async def test_a_declined_invitation_is_gone_and_makes_no_member(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    gid = (await create_group(client, alice))["id"]
    invitation = await invite(client, gid, alice, bob)

    await call(client, "POST", f"/api/v1/invitations/{invitation['id']}/decline", bob, expect=204)

    assert await pending(client, bob) == []
    assert gid not in await my_groups(client, bob)
    assert await roles(client, gid, alice) == {"alice": "owner"}
    # Declining is not final: she may invite him again.
    await invite(client, gid, alice, bob)


async def test_every_member_sees_the_groups_pending_invitations_and_outsiders_do_not(
    client: TestClient,
) -> None:
    alice, bob, carol, dan, eve = [
        await sign_up(client, name) for name in ("alice", "bob", "carol", "dan", "eve")
    ]
    gid = (await create_group(client, alice, "book club"))["id"]
    await add_member(client, gid, alice, bob)
    to_carol = await invite(client, gid, alice, carol)
    to_dan = await invite(client, gid, alice, dan)
    other = (await create_group(client, eve, "elsewhere"))["id"]
    await invite(client, other, eve, carol)

    async def group_pending(who: Person) -> list[dict[str, Any]]:
        page = await call(client, "GET", f"{GROUPS}/{gid}/invitations", who, expect=200)
        items: list[dict[str, Any]] = page["items"]
        return items

    # A plain member sees them too, oldest first, each naming its invitee.
    for who in (alice, bob):
        assert await group_pending(who) == [to_carol, to_dan]
    assert [(i["user_id"], i["inviter_id"]) for i in await group_pending(bob)] == [
        (carol.id, alice.id),
        (dan.id, alice.id),
    ]
    # The invitee (not a member yet) and outsiders: as if there were no group.
    for who in (carol, eve):
        await refused(
            client, "GET", f"{GROUPS}/{gid}/invitations", who, status=404, code="group_not_found"
        )

    await call(client, "POST", f"/api/v1/invitations/{to_carol['id']}/accept", carol, expect=200)
    await call(client, "POST", f"/api/v1/invitations/{to_dan['id']}/decline", dan, expect=204)
    assert await group_pending(carol) == []


async def test_inviting_a_member_or_inviting_twice_is_a_conflict(client: TestClient) -> None:
    alice, bob, carol = [await sign_up(client, name) for name in ("alice", "bob", "carol")]
    gid = (await create_group(client, alice))["id"]
    await add_member(client, gid, alice, bob)
    await invite(client, gid, alice, carol)

    path = f"{GROUPS}/{gid}/invitations"
    await refused(
        client, "POST", path, alice, status=409, code="already_member", body={"user_id": bob.id}
    )
    await refused(
        client, "POST", path, alice, status=409, code="already_member", body={"username": "alice"}
    )
    await refused(
        client, "POST", path, alice, status=409, code="already_invited", body={"username": "carol"}
    )
    assert len(await pending(client, carol)) == 1
    assert await pending(client, bob) == []


async def test_nobody_else_can_answer_my_invitation(client: TestClient) -> None:
    alice, bob, mallory = [await sign_up(client, name) for name in ("alice", "bob", "mallory")]
    gid = (await create_group(client, alice))["id"]
    invitation = await invite(client, gid, alice, bob)

    for who in (mallory, alice):
        for answer in ("accept", "decline"):
            await refused(
                client,
                "POST",
                f"/api/v1/invitations/{invitation['id']}/{answer}",
                who,
                status=404,
                code="invitation_not_found",
            )

    assert gid not in await my_groups(client, mallory)
    assert await pending(client, bob) == [invitation]


async def test_adding_someone_directly_settles_their_invitation(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    gid = (await create_group(client, alice))["id"]
    await invite(client, gid, alice, bob)

    await add_member(client, gid, alice, bob)

    assert await pending(client, bob) == []


# -- messages -------------------------------------------------------------------


async def test_seqs_count_up_without_gaps_in_each_group(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    first = (await create_group(client, alice, "first"))["id"]
    second = (await create_group(client, alice, "second"))["id"]
    await add_member(client, first, alice, bob)

    seqs: dict[str, list[int]] = {first: [], second: []}
    for n in range(5):
        seqs[first].append((await post_message(client, first, (alice, bob)[n % 2], f"{n}"))["seq"])
        seqs[second].append((await post_message(client, second, alice, f"{n}"))["seq"])

    assert seqs == {first: [1, 2, 3, 4, 5], second: [1, 2, 3, 4, 5]}
    assert (await my_groups(client, bob))[first]["last_seq"] == 5


async def test_history_pages_newest_first_through_everything_once(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    gid = (await create_group(client, alice))["id"]
    for n in range(1, 8):
        await post_message(client, gid, alice, f"message {n}")

    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        query = "?limit=3" + (f"&before={cursor}" if cursor is not None else "")
        page = await call(client, "GET", f"{GROUPS}/{gid}/messages{query}", alice, expect=200)
        pages.append([message["seq"] for message in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == [[7, 6, 5], [4, 3, 2], [1]]
    assert [m["body"] for m in await history(client, gid, alice)] == [
        f"message {n}" for n in range(7, 0, -1)
    ]


async def test_editing_is_for_the_author_alone(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    gid = (await create_group(client, alice))["id"]
    await add_member(client, gid, alice, bob)
    message = await post_message(client, gid, bob, "teh typo")
    assert message["edited_at"] is None
    path = f"{GROUPS}/{gid}/messages/{message['id']}"

    # Not even the owner may put words in bob's mouth.
    await refused(
        client, "PATCH", path, alice, status=403, code="not_author", body={"body": "hacked"}
    )
    edited = await call(client, "PATCH", path, bob, expect=200, body={"body": "the typo"})

    assert edited["edited_at"] is not None
    assert edited["edited_at"] >= edited["created_at"]
    assert (edited["id"], edited["seq"]) == (message["id"], message["seq"])
    [seen] = await history(client, gid, alice)
    assert (seen["body"], seen["edited_at"]) == ("the typo", edited["edited_at"])


async def test_a_deleted_message_leaves_history_and_keeps_its_seq(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    gid = (await create_group(client, alice))["id"]
    first = await post_message(client, gid, alice, "keep")
    gone = await post_message(client, gid, alice, "regret")

    await call(client, "DELETE", f"{GROUPS}/{gid}/messages/{gone['id']}", alice, expect=204)

    assert [m["id"] for m in await history(client, gid, alice)] == [first["id"]]
    assert (await post_message(client, gid, alice, "next"))["seq"] == 3
    for method, body in (("PATCH", {"body": "undo"}), ("DELETE", None)):
        await refused(
            client,
            method,
            f"{GROUPS}/{gid}/messages/{gone['id']}",
            alice,
            status=404,
            code="message_not_found",
            body=body,
        )


async def test_an_unknown_file_cannot_be_attached(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    gid = (await create_group(client, alice))["id"]

    await refused(
        client,
        "POST",
        f"{GROUPS}/{gid}/messages",
        alice,
        status=404,
        code="file_not_found",
        body={"body": "see attached", "file_ids": [new_id()]},
    )

    assert await history(client, gid, alice) == []
    assert (await post_message(client, gid, alice, "no file"))["file_ids"] == []


async def test_sending_too_fast_is_429_with_retry_after(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    config = make_config(tmp_path, limits={"message_burst": 3, "messages_per_second": 1})
    client: TestClient = await aiohttp_client(create_app(config))
    alice = await sign_up(client, "alice")
    gid = (await create_group(client, alice))["id"]
    for n in range(3):
        await post_message(client, gid, alice, f"quick {n}")

    response = await client.post(
        f"{GROUPS}/{gid}/messages", json={"body": "one too many"}, headers=alice.headers
    )

    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert (await response.json())["error"]["code"] == "rate_limited"
    assert [m["body"] for m in await history(client, gid, alice)] == [
        "quick 2",
        "quick 1",
        "quick 0",
    ]


async def test_a_refused_direct_message_starts_no_conversation(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    config = make_config(tmp_path, limits={"message_burst": 1, "messages_per_second": 1})
    client: TestClient = await aiohttp_client(create_app(config))
    alice, bob, carol = [await sign_up(client, name) for name in ("alice", "bob", "carol")]
    await call(
        client, "POST", f"/api/v1/direct/{bob.id}/messages", alice, expect=201, body={"body": "a"}
    )

    await refused(
        client,
        "POST",
        f"/api/v1/direct/{carol.id}/messages",
        alice,
        status=429,
        code="rate_limited",
        body={"body": "b"},
    )

    assert await my_groups(client, carol) == {}


# -- direct messages ------------------------------------------------------------


async def test_the_first_direct_message_makes_one_conversation_for_both(
    client: TestClient,
) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    await refused(
        client,
        "GET",
        f"/api/v1/direct/{bob.id}",
        alice,
        status=404,
        code="conversation_not_found",
    )

    first = await call(
        client, "POST", f"/api/v1/direct/{bob.id}/messages", alice, expect=201, body={"body": "hi"}
    )
    second = await call(
        client, "POST", f"/api/v1/direct/{bob.id}/messages", alice, expect=201, body={"body": "?"}
    )
    reply = await call(
        client, "POST", f"/api/v1/direct/{alice.id}/messages", bob, expect=201, body={"body": "yo"}
    )

    gid = first["group_id"]
    assert second["group_id"] == reply["group_id"] == gid
    assert [first["seq"], second["seq"], reply["seq"]] == [1, 2, 3]
    alices, bobs = await my_groups(client, alice), await my_groups(client, bob)
    assert list(alices) == list(bobs) == [gid]
    assert (alices[gid]["kind"], alices[gid]["peer"], alices[gid]["owner_id"]) == (
        "direct",
        bob.id,
        None,
    )
    assert (bobs[gid]["kind"], bobs[gid]["peer"]) == ("direct", alice.id)
    assert (bobs[gid]["unread"], alices[gid]["unread"]) == (2, 1)
    # Only the list says whether the peer is online (nobody has a socket here).
    assert alices[gid].pop("peer_online") is bobs[gid].pop("peer_online") is False
    assert await call(client, "GET", f"/api/v1/direct/{bob.id}", alice, expect=200) == alices[gid]
    assert await call(client, "GET", f"/api/v1/direct/{alice.id}", bob, expect=200) == bobs[gid]
    assert await roles(client, gid, bob) == {"alice": "member", "bob": "member"}
    assert [m["body"] for m in await history(client, gid, bob)] == ["yo", "?", "hi"]


async def test_a_direct_message_needs_another_real_person(client: TestClient) -> None:
    alice, dave = await sign_up(client, "alice"), await sign_up(client, "dave")
    await client.app[ADMIN].set_disabled("dave", True)

    await refused(
        client,
        "POST",
        f"/api/v1/direct/{alice.id}/messages",
        alice,
        status=400,
        code="invalid_peer",
        body={"body": "note to self"},
    )
    for peer in (new_id(), dave.id):
        await refused(
            client,
            "POST",
            f"/api/v1/direct/{peer}/messages",
            alice,
            status=404,
            code="user_not_found",
            body={"body": "hello?"},
        )
    assert await my_groups(client, alice) == {}


async def test_leaving_a_direct_conversation_does_not_cut_the_line(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    first = await call(
        client, "POST", f"/api/v1/direct/{bob.id}/messages", alice, expect=201, body={"body": "hi"}
    )
    gid = first["group_id"]

    refused = await client.delete(f"{GROUPS}/{gid}/members/{bob.id}", headers=bob.headers)
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "direct_conversation"

    # Bob can still write to alice, and sees what she writes.
    await call(
        client, "POST", f"/api/v1/direct/{alice.id}/messages", bob, expect=201, body={"body": "?"}
    )
    await call(
        client, "POST", f"/api/v1/direct/{bob.id}/messages", alice, expect=201, body={"body": "!"}
    )
    assert [m["body"] for m in await history(client, gid, bob)] == ["!", "?", "hi"]


# -- listing groups -------------------------------------------------------------


async def test_my_groups_page_through_everything_once(client: TestClient) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    made = [(await create_group(client, alice, f"group {n}"))["id"] for n in range(5)]
    await create_group(client, bob, "not alice's")

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = "?limit=2" + (f"&before={cursor}" if cursor is not None else "")
        page = await call(client, "GET", f"{GROUPS}{query}", alice, expect=200)
        pages.append([group["id"] for group in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert [len(page) for page in pages] == [2, 2, 1]
    paged = [group_id for page in pages for group_id in page]
    assert sorted(paged) == sorted(made)
    everything = await call(client, "GET", GROUPS, alice, expect=200)
    assert [group["id"] for group in everything["items"]] == paged
    assert everything["next_cursor"] is None
