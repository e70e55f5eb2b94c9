"""Replies over the real app: the quote each member sees, and what a reply
may not answer (nothing is stored then)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from gortc.config import Config
from gortc.delivery.keys import CONFIG
from tests.conftest import bearer, dump_database, make_config
from tests.e2e.test_reactions import history, post
from tests.e2e.test_websocket import group_of, people
from tests.e2e.ws_client import WsClient


@pytest.fixture
async def chat(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    config = make_config(tmp_path / "data", limits={"enabled": False})
    return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]


def database_of(client: TestClient) -> Config:
    return client.app[CONFIG]


async def test_a_reply_shows_its_quote_to_the_other_member(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    alice, bob = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["bob"])
    question = await post(chat, group_id, u["alice"], "Pizza or sushi tonight? " + "." * 300)
    for client in (alice, bob):
        await client.next("message.created")

    await bob.send(
        type="message.send",
        group_id=group_id,
        body="sushi!",
        client_id="r1",
        reply_to=question["id"],
    )
    ack = await bob.next("message.ack")
    expected_quote = {
        "id": question["id"],
        "sender_id": u["alice"]["user"]["id"],
        "body": question["body"][:200],
        "deleted": False,
    }
    assert ack["message"]["reply_to"] == expected_quote
    created = await alice.next("message.created")
    assert created["message"] == ack["message"]
    assert (await history(chat, group_id, u["alice"]))[0] == ack["message"]

    # Sent again with its client_id: the same message, quote and all.
    await bob.send(
        type="message.send",
        group_id=group_id,
        body="sushi!",
        client_id="r1",
        reply_to=question["id"],
    )
    assert (await bob.next("message.ack"))["message"] == ack["message"]
    await alice.silent(0.3, ignore=("presence",))


async def test_the_quote_follows_the_message_it_answers(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    question = await post(chat, group_id, u["alice"], "first draft")
    response = await chat.post(
        f"/api/v1/groups/{group_id}/messages",
        json={"body": "looks good", "reply_to": question["id"]},
        headers=bearer(u["bob"]),
    )
    assert response.status == 201
    reply = await response.json()
    assert reply["reply_to"]["body"] == "first draft"

    url = f"/api/v1/groups/{group_id}/messages/{question['id']}"
    await chat.patch(url, json={"body": "second draft"}, headers=bearer(u["alice"]))
    assert (await history(chat, group_id, u["bob"]))[0]["reply_to"]["body"] == "second draft"

    assert (await chat.delete(url, headers=bearer(u["alice"]))).status == 204
    [shown] = await history(chat, group_id, u["bob"])
    assert shown["id"] == reply["id"]
    assert shown["reply_to"] == {
        "id": question["id"],
        "sender_id": u["alice"]["user"]["id"],
        "body": "",
        "deleted": True,
    }


async def test_a_reply_to_another_group_or_a_deleted_message_stores_nothing(
    chat: TestClient,
) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    other_group = await group_of(chat, u["alice"], u["bob"])
    elsewhere = await post(chat, other_group, u["alice"], "in the other group")
    gone = await post(chat, group_id, u["alice"], "soon deleted")
    url = f"/api/v1/groups/{group_id}/messages"
    await chat.delete(f"{url}/{gone['id']}", headers=bearer(u["alice"]))
    bob = await WsClient.open(chat, u["bob"])
    before = dump_database(database_of(chat))

    for reply_to in (elsewhere["id"], gone["id"], "01J0000000000000000000000"):
        response = await chat.post(
            url, json={"body": "re", "reply_to": reply_to}, headers=bearer(u["alice"])
        )
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["code"] == "invalid_reply"
        assert "reply_to" in error["message"]

        await bob.send(
            type="message.send", group_id=group_id, body="re", client_id="x", reply_to=reply_to
        )
        frame = await bob.next("error", "message.ack")
        assert (frame["type"], frame["code"], frame["status"]) == ("error", "invalid_reply", 400)
        assert frame["client_id"] == "x"

    assert dump_database(database_of(chat)) == before
    await bob.silent(0.3, ignore=("presence",))


async def test_direct_replies(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    bob_id = u["bob"]["user"]["id"]
    group_id = await group_of(chat, u["alice"], u["bob"])
    in_group = await post(chat, group_id, u["alice"], "group talk")
    direct = f"/api/v1/direct/{bob_id}/messages"

    # No conversation yet: a reply there answers nothing, and makes nothing.
    refused = await chat.post(
        direct, json={"body": "re", "reply_to": in_group["id"]}, headers=bearer(u["alice"])
    )
    assert refused.status == 400
    assert (await refused.json())["error"]["code"] == "invalid_reply"
    missing = await chat.get(f"/api/v1/direct/{bob_id}", headers=bearer(u["alice"]))
    assert missing.status == 404

    first = await (
        await chat.post(direct, json={"body": "hi bob"}, headers=bearer(u["alice"]))
    ).json()
    back = await chat.post(
        f"/api/v1/direct/{u['alice']['user']['id']}/messages",
        json={"body": "hi alice", "reply_to": first["id"]},
        headers=bearer(u["bob"]),
    )
    assert back.status == 201
    assert (await back.json())["reply_to"]["body"] == "hi bob"
    still_refused = await chat.post(
        direct, json={"body": "re", "reply_to": in_group["id"]}, headers=bearer(u["alice"])
    )
    assert (await still_refused.json())["error"]["code"] == "invalid_reply"
