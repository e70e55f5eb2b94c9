"""What each member may do in a group, as the server tells their client:
in the group list, the group, the direct conversation, and the events that
carry their group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import bearer, make_config
from tests.e2e.test_websocket import group_of, people
from tests.e2e.ws_client import WsClient

# Written out by hand: what a client would show or hide for each role.
EVERYONE = ["delete_own_message", "edit_own_message", "post", "react", "read", "start_call"]
MEMBER = EVERYONE
ADMIN = sorted([*EVERYONE, "add_member", "delete_others_message", "remove_member", "rename"])
OWNER = sorted(
    [
        *ADMIN,
        "change_role",
        "delete_group",
        "remove_admin",
        "transfer_ownership",
    ]
)
DIRECT = EVERYONE


@pytest.fixture
async def chat(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    config = make_config(tmp_path / "data", limits={"enabled": False})
    return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]


async def get_json(client: TestClient, url: str, tokens: dict[str, Any]) -> Any:
    response = await client.get(url, headers=bearer(tokens))
    assert response.status == 200, await response.text()
    return await response.json()


async def permissions_in_list(client: TestClient, tokens: dict[str, Any]) -> dict[str, Any]:
    listed = await get_json(client, "/api/v1/groups", tokens)
    return {group["id"]: group["permissions"] for group in listed["items"]}


async def test_owner_admin_member_and_direct_each_see_their_permissions(
    chat: TestClient,
) -> None:
    u = await people(chat, "olivia", "adam", "mia")
    created = await chat.post("/api/v1/groups", json={"name": "crew"}, headers=bearer(u["olivia"]))
    assert (await created.json())["permissions"] == OWNER
    group_id = await group_of(chat, u["olivia"], u["mia"])
    added = await chat.post(
        f"/api/v1/groups/{group_id}/members",
        json={"user_id": u["adam"]["user"]["id"], "role": "admin"},
        headers=bearer(u["olivia"]),
    )
    assert added.status == 201
    sent = await chat.post(
        f"/api/v1/direct/{u['mia']['user']['id']}/messages",
        json={"body": "hi"},
        headers=bearer(u["olivia"]),
    )
    direct_id = (await sent.json())["group_id"]

    for name, expected in (("olivia", OWNER), ("adam", ADMIN), ("mia", MEMBER)):
        group = await get_json(chat, f"/api/v1/groups/{group_id}", u[name])
        assert (group["role"], group["permissions"]) == (name_role(name), expected)
        assert (await permissions_in_list(chat, u[name]))[group_id] == expected

    for name, peer in (("olivia", "mia"), ("mia", "olivia")):
        assert (await permissions_in_list(chat, u[name]))[direct_id] == DIRECT
        direct = await get_json(chat, f"/api/v1/direct/{u[peer]['user']['id']}", u[name])
        assert direct["permissions"] == DIRECT


def name_role(name: str) -> str:
    return {"olivia": "owner", "adam": "admin", "mia": "member"}[name]


async def test_joining_and_role_changes_bring_the_new_permissions(chat: TestClient) -> None:
    u = await people(chat, "olivia", "mia")
    group_id = await group_of(chat, u["olivia"])
    mia = await WsClient.open(chat, u["mia"])

    await chat.post(
        f"/api/v1/groups/{group_id}/members",
        json={"user_id": u["mia"]["user"]["id"]},
        headers=bearer(u["olivia"]),
    )
    joined = await mia.next("group.joined")
    assert joined["group"]["permissions"] == MEMBER

    promoted = await chat.patch(
        f"/api/v1/groups/{group_id}/members/{u['mia']['user']['id']}",
        json={"role": "admin"},
        headers=bearer(u["olivia"]),
    )
    assert promoted.status == 200
    updated = await mia.next("group.updated")
    assert updated["group"]["id"] == group_id
    assert (updated["group"]["role"], updated["group"]["permissions"]) == ("admin", ADMIN)

    olivia = await WsClient.open(chat, u["olivia"])
    transferred = await chat.post(
        f"/api/v1/groups/{group_id}/owner",
        json={"user_id": u["mia"]["user"]["id"]},
        headers=bearer(u["olivia"]),
    )
    assert transferred.status == 200
    # Everyone hears the group changed hands; each of the two hears their own part.
    mine = [
        frame["group"]
        for frame in [await mia.next("group.updated"), await mia.next("group.updated")]
        if "permissions" in frame["group"]
    ]
    assert [(group["role"], group["permissions"]) for group in mine] == [("owner", OWNER)]
    theirs = [
        frame["group"]
        for frame in [await olivia.next("group.updated"), await olivia.next("group.updated")]
        if "permissions" in frame["group"]
    ]
    assert [(group["role"], group["permissions"]) for group in theirs] == [("admin", ADMIN)]
