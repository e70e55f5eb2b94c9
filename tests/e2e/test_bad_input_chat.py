"""Every group, member, invitation and message endpoint, handed bad input:
the right 4xx, a clear JSON error, and the database exactly as it was.

All cases run against one server: since none of them may change anything,
each one starts from the same state, and checks it is still there after.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gortc.app import create_app
from gortc.config import Config
from gortc.entities.ids import new_id
from tests.conftest import bearer, dump_database, login, make_config, register

G = "/api/v1/groups/{group}"
JSON = {"Content-Type": "application/json"}

# method, path, a body that would be accepted, a body of wrong types
JSON_ENDPOINTS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("POST", "/api/v1/groups", {"name": "fine"}, {"name": 12345}),
    ("PATCH", G, {"name": "fine"}, {"name": ["fine"]}),
    ("POST", f"{G}/members", {"user_id": "{carol}"}, {"user_id": 12345, "role": 1}),
    ("PATCH", f"{G}/members/{{bob}}", {"role": "admin"}, {"role": 12345}),
    ("POST", f"{G}/owner", {"user_id": "{bob}"}, {"user_id": 12345}),
    ("POST", f"{G}/invitations", {"username": "carol"}, {"username": {"name": "carol"}}),
    ("POST", f"{G}/messages", {"body": "fine"}, {"body": 12345, "file_ids": "abc"}),
    ("PATCH", f"{G}/messages/{{message}}", {"body": "fine"}, {"body": True}),
    ("POST", f"{G}/read", {"seq": 1}, {"seq": "many"}),
    ("POST", "/api/v1/direct/{bob}/messages", {"body": "fine"}, {"body": None}),
]

ROUTES = [
    ("POST", "/api/v1/groups"),
    ("GET", "/api/v1/groups"),
    ("GET", G),
    ("PATCH", G),
    ("DELETE", G),
    ("GET", f"{G}/members"),
    ("POST", f"{G}/members"),
    ("PATCH", f"{G}/members/{{bob}}"),
    ("DELETE", f"{G}/members/{{bob}}"),
    ("POST", f"{G}/owner"),
    ("POST", f"{G}/invitations"),
    ("GET", "/api/v1/invitations"),
    ("POST", "/api/v1/invitations/{invitation}/accept"),
    ("POST", "/api/v1/invitations/{invitation}/decline"),
    ("GET", f"{G}/messages"),
    ("POST", f"{G}/messages"),
    ("PATCH", f"{G}/messages/{{message}}"),
    ("DELETE", f"{G}/messages/{{message}}"),
    ("POST", f"{G}/read"),
    ("POST", "/api/v1/direct/{bob}/messages"),
    ("GET", "/api/v1/direct/{bob}"),
]


@dataclass
class Case:
    method: str
    path: str
    status: int
    code: str | None = None
    json: Any = None
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    as_user: str | None = "alice"
    problem: dict[str, str] | None = None  # one entry ``details`` must hold


def generic_cases() -> list[Any]:
    cases: list[Any] = []
    for method, path, good, wrong in JSON_ENDPOINTS:
        name = f"{method} {path}"
        cases += [
            pytest.param(
                Case(method, path, 400, "malformed_json", data=b'{"body": ', headers=JSON),
                id=f"{name} malformed",
            ),
            pytest.param(
                Case(method, path, 400, "malformed_json", data=b'{"\xff": 1}', headers=JSON),
                id=f"{name} not utf-8",
            ),
            pytest.param(
                Case(method, path, 400, "malformed_json", data=b"", headers=JSON),
                id=f"{name} no body",
            ),
            pytest.param(Case(method, path, 400, "invalid_body", json=[good]), id=f"{name} array"),
            pytest.param(
                Case(method, path, 400, "invalid_body", data=b"null", headers=JSON),
                id=f"{name} null",
            ),
            pytest.param(
                Case(method, path, 400, "invalid_body", data=b'"fine"', headers=JSON),
                id=f"{name} string",
            ),
            pytest.param(
                Case(
                    method,
                    path,
                    400,
                    "invalid_body",
                    json=good | {"surprise": 1},
                    problem={"field": "surprise", "type": "extra_forbidden"},
                ),
                id=f"{name} unknown field",
            ),
            pytest.param(
                Case(method, path, 400, "invalid_body", json=wrong), id=f"{name} wrong types"
            ),
            pytest.param(
                Case(method, path, 400, "invalid_body", json={}), id=f"{name} empty object"
            ),
            pytest.param(
                Case(
                    method,
                    path,
                    415,
                    "unsupported_media_type",
                    data=b'{"name": "fine"}',
                    headers={"Content-Type": "text/plain"},
                ),
                id=f"{name} text/plain",
            ),
            pytest.param(
                Case(method, path, 415, "unsupported_media_type", data={"body": "fine"}),
                id=f"{name} form",
            ),
            pytest.param(
                Case(
                    method,
                    path,
                    413,
                    "too_large",
                    data=b'{"body": "' + b"a" * 1_100_000 + b'"}',
                    headers=JSON,
                ),
                id=f"{name} oversize",
            ),
        ]
    for method, path in ROUTES:
        cases.append(
            pytest.param(
                Case(method, path, 401, "unauthenticated", as_user=None),
                id=f"{method} {path} anonymous",
            )
        )
    return cases


def specific_cases() -> list[Any]:
    def case(name: str, *args: Any, **kwargs: Any) -> Any:
        return pytest.param(Case(*args, **kwargs), id=name)

    def bug(name: str, reason: str, *args: Any, **kwargs: Any) -> Any:
        return pytest.param(Case(*args, **kwargs), id=name)

    groups = "/api/v1/groups"
    members = f"{G}/members"
    messages = f"{G}/messages"
    return [
        # groups
        case("create empty name", "POST", groups, 400, "invalid_group_name", json={"name": ""}),
        case("create blank name", "POST", groups, 400, "invalid_group_name", json={"name": " \t "}),
        case(
            "create 101 characters",
            "POST",
            groups,
            400,
            "invalid_group_name",
            json={"name": "x" * 101},
        ),
        case(
            "create 401 characters",
            "POST",
            groups,
            400,
            "invalid_group_name",
            json={"name": "x" * 401},
        ),
        case(
            "create NUL in name",
            "POST",
            groups,
            400,
            "invalid_group_name",
            json={"name": "a\u0000b"},
        ),
        case(
            "create bidi override in name",
            "POST",
            groups,
            400,
            "invalid_group_name",
            json={"name": "gro\u202epu"},
        ),
        case("create null name", "POST", groups, 400, "invalid_body", json={"name": None}),
        case("rename empty", "PATCH", G, 400, "invalid_group_name", json={"name": "  "}),
        case(
            "rename 101 characters", "PATCH", G, 400, "invalid_group_name", json={"name": "x" * 101}
        ),
        case(
            "rename by a member", "PATCH", G, 403, "not_allowed", json={"name": "x"}, as_user="bob"
        ),
        case("delete by a member", "DELETE", G, 403, "not_allowed", as_user="bob"),
        case("replace a group", "PUT", G, 405, "method_not_allowed", json={"name": "x"}),
        case("unknown group", "GET", "/api/v1/groups/{nobody}", 404, "group_not_found"),
        # members
        case(
            "add with user_id and username",
            "POST",
            members,
            400,
            "invalid_body",
            json={"user_id": "{carol}", "username": "carol"},
        ),
        case("add with neither", "POST", members, 400, "invalid_body", json={"role": "member"}),
        case(
            "add as owner",
            "POST",
            members,
            400,
            "invalid_body",
            json={"user_id": "{carol}", "role": "owner"},
        ),
        case(
            "add as boss",
            "POST",
            members,
            400,
            "invalid_body",
            json={"user_id": "{carol}", "role": "boss"},
        ),
        case("add empty user_id", "POST", members, 400, "invalid_body", json={"user_id": ""}),
        case(
            "add long username", "POST", members, 400, "invalid_body", json={"username": "x" * 65}
        ),
        case(
            "add unknown user", "POST", members, 404, "user_not_found", json={"user_id": "{nobody}"}
        ),
        case(
            "add a member again", "POST", members, 409, "already_member", json={"username": "bob"}
        ),
        case("add myself", "POST", members, 409, "already_member", json={"user_id": "{alice}"}),
        case(
            "add by a member",
            "POST",
            members,
            403,
            "not_allowed",
            json={"user_id": "{carol}"},
            as_user="bob",
        ),
        case(
            "role owner",
            "PATCH",
            f"{members}/{{bob}}",
            400,
            "invalid_body",
            json={"role": "owner"},
        ),
        case("role empty", "PATCH", f"{members}/{{bob}}", 400, "invalid_body", json={"role": ""}),
        case(
            "role of a non-member",
            "PATCH",
            f"{members}/{{carol}}",
            404,
            "member_not_found",
            json={"role": "admin"},
        ),
        case(
            "role of the owner",
            "PATCH",
            f"{members}/{{alice}}",
            409,
            "owner_role",
            json={"role": "member"},
        ),
        case(
            "role by a member",
            "PATCH",
            f"{members}/{{bob}}",
            403,
            "not_allowed",
            json={"role": "admin"},
            as_user="bob",
        ),
        case("remove a non-member", "DELETE", f"{members}/{{carol}}", 404, "member_not_found"),
        case("remove nobody", "DELETE", f"{members}/{{nobody}}", 404, "member_not_found"),
        case("owner leaves", "DELETE", f"{members}/{{alice}}", 409, "owner_cannot_leave"),
        case(
            "member removes the owner",
            "DELETE",
            f"{members}/{{alice}}",
            403,
            "not_allowed",
            as_user="bob",
        ),
        # ownership
        case("transfer to empty", "POST", f"{G}/owner", 400, "invalid_body", json={"user_id": ""}),
        case(
            "transfer to 65 characters",
            "POST",
            f"{G}/owner",
            400,
            "invalid_body",
            json={"user_id": "x" * 65},
        ),
        case(
            "transfer to a non-member",
            "POST",
            f"{G}/owner",
            404,
            "member_not_found",
            json={"user_id": "{carol}"},
        ),
        case(
            "transfer by a member",
            "POST",
            f"{G}/owner",
            403,
            "not_allowed",
            json={"user_id": "{bob}"},
            as_user="bob",
        ),
        # invitations
        case(
            "invite with user_id and username",
            "POST",
            f"{G}/invitations",
            400,
            "invalid_body",
            json={"user_id": "{carol}", "username": "carol"},
        ),
        case(
            "invite with a role",
            "POST",
            f"{G}/invitations",
            400,
            "invalid_body",
            json={"username": "carol", "role": "admin"},
        ),
        case(
            "invite a member",
            "POST",
            f"{G}/invitations",
            409,
            "already_member",
            json={"username": "bob"},
        ),
        case(
            "invite twice",
            "POST",
            f"{G}/invitations",
            409,
            "already_invited",
            json={"user_id": "{dave}"},
        ),
        case(
            "invite nobody",
            "POST",
            f"{G}/invitations",
            404,
            "user_not_found",
            json={"username": "nobody"},
        ),
        case(
            "invite by a member",
            "POST",
            f"{G}/invitations",
            403,
            "not_allowed",
            json={"username": "carol"},
            as_user="bob",
        ),
        case(
            "accept an unknown invitation",
            "POST",
            "/api/v1/invitations/{nobody}/accept",
            404,
            "invitation_not_found",
        ),
        case(
            "decline an unknown invitation",
            "POST",
            "/api/v1/invitations/{nobody}/decline",
            404,
            "invitation_not_found",
        ),
        case(
            "accept another's invitation",
            "POST",
            "/api/v1/invitations/{invitation}/accept",
            404,
            "invitation_not_found",
            as_user="carol",
        ),
        case(
            "decline another's invitation",
            "POST",
            "/api/v1/invitations/{invitation}/decline",
            404,
            "invitation_not_found",
            as_user="bob",
        ),
        # messages
        case(
            "body over 20,000",
            "POST",
            messages,
            400,
            "invalid_body_text",
            json={"body": "x" * 20_001},
        ),
        case("body 4,001", "POST", messages, 400, "invalid_body_text", json={"body": "x" * 4001}),
        case("body empty", "POST", messages, 400, "invalid_body_text", json={"body": ""}),
        case(
            "21 files",
            "POST",
            messages,
            400,
            "invalid_body",
            json={"body": "x", "file_ids": [f"f{n}" for n in range(21)]},
        ),
        case(
            "file id of 65 characters",
            "POST",
            messages,
            400,
            "invalid_body",
            json={"body": "x", "file_ids": ["f" * 65]},
        ),
        case(
            "file id a number",
            "POST",
            messages,
            400,
            "invalid_body",
            json={"body": "x", "file_ids": [1]},
        ),
        case(
            "unknown file",
            "POST",
            messages,
            404,
            "file_not_found",
            json={"body": "x", "file_ids": ["{nobody}"]},
        ),
        case(
            "edit an unknown message",
            "PATCH",
            f"{messages}/{{nobody}}",
            404,
            "message_not_found",
            json={"body": "x"},
        ),
        case(
            "edit another's message",
            "PATCH",
            f"{messages}/{{bobs_message}}",
            403,
            "not_author",
            json={"body": "x"},
        ),
        case(
            "edit with file_ids",
            "PATCH",
            f"{messages}/{{message}}",
            400,
            "invalid_body",
            json={"body": "x", "file_ids": []},
        ),
        case(
            "edit to whitespace",
            "PATCH",
            f"{messages}/{{message}}",
            400,
            "invalid_body_text",
            json={"body": "\n\n"},
        ),
        case(
            "delete an unknown message",
            "DELETE",
            f"{messages}/{{nobody}}",
            404,
            "message_not_found",
        ),
        case(
            "member deletes another's message",
            "DELETE",
            f"{messages}/{{message}}",
            403,
            "not_allowed",
            as_user="bob",
        ),
        # read marker
        case("read seq -1", "POST", f"{G}/read", 400, "invalid_body", json={"seq": -1}),
        case("read seq 1.5", "POST", f"{G}/read", 400, "invalid_body", json={"seq": 1.5}),
        case("read seq null", "POST", f"{G}/read", 400, "invalid_body", json={"seq": None}),
        bug(
            "read seq 2**63",
            "bug: a seq beyond SQLite's 64-bit integers is a 500 (OverflowError)",
            "POST",
            f"{G}/read",
            400,
            "invalid_body",
            json={"seq": 2**63},
        ),
        # direct messages
        case(
            "direct to myself",
            "POST",
            "/api/v1/direct/{alice}/messages",
            400,
            "invalid_peer",
            json={"body": "me"},
        ),
        case(
            "direct to nobody",
            "POST",
            "/api/v1/direct/{nobody}/messages",
            404,
            "user_not_found",
            json={"body": "hello?"},
        ),
        case(
            "direct with an unknown file",
            "POST",
            "/api/v1/direct/{bob}/messages",
            404,
            "file_not_found",
            json={"body": "x", "file_ids": ["{nobody}"]},
        ),
        case(
            "direct empty body",
            "POST",
            "/api/v1/direct/{bob}/messages",
            400,
            "invalid_body_text",
            json={"body": " "},
        ),
        case(
            "no conversation yet",
            "GET",
            "/api/v1/direct/{carol}",
            404,
            "conversation_not_found",
        ),
        # query strings
        *[
            case(f"history limit={raw!r}", "GET", f"{messages}?limit={raw}", 400, "invalid_limit")
            for raw in ("0", "abc", "10000", "201", "-1", "", "1.5")
        ],
        *[
            case(
                f"history before={raw!r}", "GET", f"{messages}?before={raw}", 400, "invalid_cursor"
            )
            for raw in ("abc", "-1", "1e3", "9" * 19)
        ],
        *[
            case(f"groups limit={raw!r}", "GET", f"{groups}?limit={raw}", 400, "invalid_limit")
            for raw in ("0", "abc", "10000", "501", "-1")
        ],
        case("groups before too long", "GET", f"{groups}?before={'x' * 65}", 400, "invalid_cursor"),
        bug(
            "groups before=abc",
            "bug: GET /api/v1/groups takes any string as its cursor and answers an empty page",
            "GET",
            f"{groups}?before=abc",
            400,
            "invalid_cursor",
        ),
    ]


ALL_CASES = generic_cases() + specific_cases()


@dataclass
class World:
    client: TestClient
    database: Config
    tokens: dict[str, dict[str, Any]]
    ids: dict[str, str]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """alice owns a group with bob in it and one message from each; dave is
    invited; carol is nobody to it."""
    config = make_config(tmp_path_factory.mktemp("world"), limits={"enabled": False})
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    try:
        users = {name: await register(client, name) for name in ("alice", "bob", "carol", "dave")}
        tokens = {name: await login(client, name) for name in users}
        alice, bob = bearer(tokens["alice"]), bearer(tokens["bob"])
        group = await (
            await client.post("/api/v1/groups", json={"name": "g"}, headers=alice)
        ).json()
        base = f"/api/v1/groups/{group['id']}"
        added = await client.post(f"{base}/members", json={"username": "bob"}, headers=alice)
        invited = await client.post(f"{base}/invitations", json={"username": "dave"}, headers=alice)
        message = await client.post(f"{base}/messages", json={"body": "hi"}, headers=alice)
        bobs = await client.post(f"{base}/messages", json={"body": "hey"}, headers=bob)
        assert [r.status for r in (added, invited, message, bobs)] == [201] * 4
        ids = {name: user["id"] for name, user in users.items()} | {
            "group": group["id"],
            "invitation": (await invited.json())["id"],
            "message": (await message.json())["id"],
            "bobs_message": (await bobs.json())["id"],
            "nobody": new_id(),
        }
        yield World(client, config, tokens, ids)
    finally:
        await client.close()


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", ALL_CASES)
async def test_bad_input_is_refused_and_changes_nothing(world: World, case: Case) -> None:
    before = dump_database(world.database)
    headers = dict(case.headers)
    if case.as_user is not None:
        headers |= bearer(world.tokens[case.as_user])
    kwargs: dict[str, Any] = {"headers": headers}
    if case.data is not None:
        data = case.data
        if isinstance(data, bytes) and len(data) > 1024 * 1024:
            data = io.BytesIO(data)  # aiohttp warns about big raw bodies
        kwargs["data"] = data
    elif case.json is not None:
        kwargs["json"] = fill(case.json, world.ids)

    response = await world.client.request(case.method, fill(case.path, world.ids), **kwargs)

    assert response.status == case.status, await response.text()
    assert response.headers["Content-Type"].startswith("application/json")
    error = (await response.json())["error"]
    assert error["message"] and error["message"][0] != "<"
    if case.code is not None:
        assert error["code"] == case.code, error
    if case.code == "invalid_body":
        assert error["details"], error
    if case.problem is not None:
        assert [
            {"field": problem["field"], "type": problem["type"]} for problem in error["details"]
        ] == [case.problem]
    assert dump_database(world.database) == before
