"""Reactions to messages over the real app: REST to put and take emojis,
real WebSocket clients to see them live and to catch up on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import bearer, make_config
from tests.e2e.test_websocket import group_of, people
from tests.e2e.ws_client import WsClient

THUMBS = "👍"
HEART = "❤️"


@pytest.fixture
async def chat(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    config = make_config(tmp_path / "data", limits={"enabled": False})
    return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]


def reaction_url(group_id: str, message_id: str, emoji: str) -> str:
    return f"/api/v1/groups/{group_id}/messages/{message_id}/reactions/{quote(emoji, safe='')}"


async def react(
    client: TestClient,
    method: str,
    group_id: str,
    message_id: str,
    emoji: str,
    tokens: dict[str, Any],
    expect: int = 200,
) -> dict[str, Any]:
    response = await client.request(
        method, reaction_url(group_id, message_id, emoji), headers=bearer(tokens)
    )
    assert response.status == expect, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def post(client: TestClient, group_id: str, tokens: dict[str, Any], body: str) -> Any:
    response = await client.post(
        f"/api/v1/groups/{group_id}/messages", json={"body": body}, headers=bearer(tokens)
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def history(client: TestClient, group_id: str, tokens: dict[str, Any]) -> list[Any]:
    response = await client.get(f"/api/v1/groups/{group_id}/messages", headers=bearer(tokens))
    assert response.status == 200
    return (await response.json())["items"]  # type: ignore[no-any-return]


async def test_members_see_each_others_reactions_live(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    alice_id, bob_id = u["alice"]["user"]["id"], u["bob"]["user"]["id"]
    group_id = await group_of(chat, u["alice"], u["bob"])
    alice, bob = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["bob"])
    message = await post(chat, group_id, u["alice"], "lunch at noon?")
    assert message["reactions"] == []
    await alice.next("message.created")
    await bob.next("message.created")

    answered = await react(chat, "PUT", group_id, message["id"], THUMBS, u["bob"])
    assert answered["reactions"] == [{"emoji": THUMBS, "count": 1, "user_ids": [bob_id]}]
    heard = (await alice.next("message.updated"))["message"]
    assert heard == answered
    assert heard["change"] == message["change"] + 1
    assert heard["edited_at"] is None and heard["body"] == "lunch at noon?"
    assert (await bob.next("message.updated"))["message"] == answered

    await react(chat, "PUT", group_id, message["id"], HEART, u["alice"])
    both = await react(chat, "PUT", group_id, message["id"], THUMBS, u["alice"])
    # Each emoji where it was first used; its people in the order they came.
    assert both["reactions"] == [
        {"emoji": THUMBS, "count": 2, "user_ids": [bob_id, alice_id]},
        {"emoji": HEART, "count": 1, "user_ids": [alice_id]},
    ]
    for client in (alice, bob):  # one event per change, the last one as answered
        assert [(await client.next("message.updated"))["message"] for _ in range(2)][-1] == both

    # Again: nothing changes, nobody is told, the change number stays.
    again = await react(chat, "PUT", group_id, message["id"], THUMBS, u["alice"])
    assert again == both
    await bob.silent(0.3, ignore=("presence",))

    taken = await react(chat, "DELETE", group_id, message["id"], THUMBS, u["bob"])
    # 👍's earliest reaction still there is now alice's, after her ❤️.
    assert taken["reactions"] == [
        {"emoji": HEART, "count": 1, "user_ids": [alice_id]},
        {"emoji": THUMBS, "count": 1, "user_ids": [alice_id]},
    ]
    assert (await alice.next("message.updated"))["message"] == taken
    # Taking off one you do not have is fine, and silent.
    assert await react(chat, "DELETE", group_id, message["id"], THUMBS, u["bob"]) == taken
    await alice.silent(0.3, ignore=("presence",))

    [shown] = await history(chat, group_id, u["bob"])
    assert shown == taken


async def test_a_reconnecting_client_catches_up_a_reaction_it_missed(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    message = await post(chat, group_id, u["alice"], "ship it")
    known_change = message["change"]

    # Bob is offline while alice reacts; his client knows up to known_change.
    reacted = await react(chat, "PUT", group_id, message["id"], "🚀", u["alice"])

    bob = await WsClient.open(chat, u["bob"])
    await bob.send(type="sync", group_id=group_id, after_change=known_change)
    replayed = await bob.next("message.updated")
    assert replayed["message"] == reacted
    assert replayed["message"]["reactions"][0]["emoji"] == "🚀"
    done = await bob.next("sync.done")
    assert done["last_change"] == reacted["change"]


@pytest.mark.parametrize(
    "emoji",
    ["abc", "<b>", " ", "1", "👍" * 17, "👍<"],
)
async def test_what_is_not_an_emoji_is_refused(chat: TestClient, emoji: str) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    message = await post(chat, group_id, u["alice"], "hi")
    for method in ("PUT", "DELETE"):
        refused = await react(chat, method, group_id, message["id"], emoji, u["alice"], 400)
        assert refused["error"]["code"] == "invalid_emoji"
        assert "emoji" in refused["error"]["message"]
    assert (await history(chat, group_id, u["alice"]))[0]["reactions"] == []


@pytest.mark.parametrize("emoji", ["👍🏽", "👩‍💻", "🇫🇷", "1️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"])
async def test_emoji_sequences_are_one_reaction_each(chat: TestClient, emoji: str) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    message = await post(chat, group_id, u["alice"], "hi")
    answered = await react(chat, "PUT", group_id, message["id"], emoji, u["alice"])
    assert [reaction["emoji"] for reaction in answered["reactions"]] == [emoji]


async def test_outsiders_and_deleted_messages_get_not_found(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob", "mallory")
    group_id = await group_of(chat, u["alice"], u["bob"])
    message = await post(chat, group_id, u["alice"], "members only")

    for method in ("PUT", "DELETE"):
        outsider = await react(chat, method, group_id, message["id"], THUMBS, u["mallory"], 404)
        assert outsider["error"]["code"] == "group_not_found"
    unknown = await react(chat, "PUT", group_id, "01J0000000000000000000000", THUMBS, u["bob"], 404)
    assert unknown["error"]["code"] == "message_not_found"

    await react(chat, "PUT", group_id, message["id"], THUMBS, u["bob"])
    deleted = await chat.delete(
        f"/api/v1/groups/{group_id}/messages/{message['id']}", headers=bearer(u["alice"])
    )
    assert deleted.status == 204
    for method in ("PUT", "DELETE"):
        gone = await react(chat, method, group_id, message["id"], THUMBS, u["bob"], 404)
        assert gone["error"]["code"] == "message_not_found"


async def test_a_message_holds_twenty_different_emojis(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    message = await post(chat, group_id, u["alice"], "vote")
    twenty = [chr(0x1F600 + n) for n in range(20)]
    for emoji in twenty:
        await react(chat, "PUT", group_id, message["id"], emoji, u["alice"])

    refused = await react(chat, "PUT", group_id, message["id"], "🚀", u["bob"], 409)
    assert refused["error"]["code"] == "too_many_reactions"
    assert "20" in refused["error"]["message"]
    # One already there can still be added by anyone.
    joined = await react(chat, "PUT", group_id, message["id"], twenty[3], u["bob"])
    assert [r["emoji"] for r in joined["reactions"]] == twenty
    assert joined["reactions"][3]["count"] == 2


async def test_both_people_of_a_direct_conversation_react(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    sent = await chat.post(
        f"/api/v1/direct/{u['bob']['user']['id']}/messages",
        json={"body": "hey"},
        headers=bearer(u["alice"]),
    )
    message = await sent.json()
    answered = await react(chat, "PUT", message["group_id"], message["id"], "👋", u["bob"])
    assert answered["reactions"] == [
        {"emoji": "👋", "count": 1, "user_ids": [u["bob"]["user"]["id"]]}
    ]


async def test_search_results_carry_reactions(chat: TestClient) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    message = await post(chat, group_id, u["alice"], "quarterly numbers")
    await react(chat, "PUT", group_id, message["id"], "📈", u["alice"])
    response = await chat.get("/api/v1/messages/search?q=quarterly", headers=bearer(u["alice"]))
    [hit] = (await response.json())["items"]
    assert [r["emoji"] for r in hit["message"]["reactions"]] == ["📈"]
