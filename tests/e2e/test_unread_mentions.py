"""unread_mentions: how many unread messages of others call the member by
@username, in the group list and the group, and how reading resets it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import bearer, make_config
from tests.e2e.test_reactions import post
from tests.e2e.test_websocket import group_of, people


@pytest.fixture
async def chat(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    config = make_config(tmp_path / "data", limits={"enabled": False})
    return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]


async def mentions_of(client: TestClient, group_id: str, tokens: dict[str, Any]) -> int:
    """From the group itself, checked against the group list."""
    one = await client.get(f"/api/v1/groups/{group_id}", headers=bearer(tokens))
    listed = await client.get("/api/v1/groups", headers=bearer(tokens))
    count: int = (await one.json())["unread_mentions"]
    [in_list] = [g for g in (await listed.json())["items"] if g["id"] == group_id]
    assert in_list["unread_mentions"] == count
    return count


async def read_up_to(client: TestClient, group_id: str, tokens: dict[str, Any], seq: int) -> None:
    response = await client.post(
        f"/api/v1/groups/{group_id}/read", json={"seq": seq}, headers=bearer(tokens)
    )
    assert response.status == 204


async def test_mentions_are_counted_until_read(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob", "alice.smith")
    group_id = await group_of(chat, u["alice"], u["bob"], u["alice.smith"])
    assert await mentions_of(chat, group_id, u["alice"]) == 0

    await post(chat, group_id, u["bob"], "@alice can you look?")
    await post(chat, group_id, u["bob"], "Thanks @ALICE.")
    await post(chat, group_id, u["bob"], "and @alice.smith too")  # someone else
    await post(chat, group_id, u["bob"], "mail alice@example.com")  # an address
    await post(chat, group_id, u["bob"], "no mention at all")
    await post(chat, group_id, u["alice"], "I am @alice")  # her own
    gone = await post(chat, group_id, u["bob"], "@alice never mind")
    deleted = await chat.delete(
        f"/api/v1/groups/{group_id}/messages/{gone['id']}", headers=bearer(u["bob"])
    )
    assert deleted.status == 204

    assert await mentions_of(chat, group_id, u["alice"]) == 2
    assert await mentions_of(chat, group_id, u["alice.smith"]) == 1
    assert await mentions_of(chat, group_id, u["bob"]) == 0  # alice named herself only

    await read_up_to(chat, group_id, u["alice"], 1)  # read the first mention only
    assert await mentions_of(chat, group_id, u["alice"]) == 1
    await read_up_to(chat, group_id, u["alice"], gone["seq"])
    assert await mentions_of(chat, group_id, u["alice"]) == 0

    await post(chat, group_id, u["bob"], "one more, @alice")
    assert await mentions_of(chat, group_id, u["alice"]) == 1


async def test_a_member_joining_sees_the_mentions_waiting_for_them(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"])
    await post(chat, group_id, u["alice"], "when @bob joins, tell him")
    added = await chat.post(
        f"/api/v1/groups/{group_id}/members",
        json={"user_id": u["bob"]["user"]["id"]},
        headers=bearer(u["alice"]),
    )
    assert added.status == 201
    assert await mentions_of(chat, group_id, u["bob"]) == 1
