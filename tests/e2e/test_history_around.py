"""History around a message and after it: opening a conversation at a
search result, and paging from there both ways."""

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


async def page(
    client: TestClient, group_id: str, tokens: dict[str, Any], query: str, expect: int = 200
) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/groups/{group_id}/messages?{query}", headers=bearer(tokens)
    )
    assert response.status == expect, await response.text()
    return await response.json()  # type: ignore[no-any-return]


def seqs(answer: dict[str, Any]) -> list[int]:
    return [message["seq"] for message in answer["items"]]


async def twenty_messages(client: TestClient) -> tuple[str, dict[str, Any], list[Any]]:
    u = await people(client, "alice")
    group_id = await group_of(client, u["alice"])
    sent = [await post(client, group_id, u["alice"], f"message {n}") for n in range(1, 21)]
    return group_id, u["alice"], sent


async def test_the_page_around_a_message_and_on_from_there(chat: TestClient) -> None:
    group_id, alice, _ = await twenty_messages(chat)

    around = await page(chat, group_id, alice, "around=10&limit=6")
    assert seqs(around) == [13, 12, 11, 10, 9, 8]  # newest first, half and half
    assert (around["next_cursor"], around["newer_cursor"]) == ("8", "13")

    older = await page(chat, group_id, alice, f"before={around['next_cursor']}&limit=6")
    assert seqs(older) == [7, 6, 5, 4, 3, 2]
    newer = await page(chat, group_id, alice, f"after={around['newer_cursor']}&limit=6")
    assert seqs(newer) == [19, 18, 17, 16, 15, 14]  # the next six up, newest first
    assert (newer["next_cursor"], newer["newer_cursor"]) == ("14", "19")
    newest = await page(chat, group_id, alice, f"after={newer['newer_cursor']}&limit=6")
    assert seqs(newest) == [20]
    assert newest["newer_cursor"] is None  # caught up: the rest comes live

    # Walking the whole history both ways from there meets every message once.
    seen = seqs(around)
    cursor = around["next_cursor"]
    while cursor is not None:
        step = await page(chat, group_id, alice, f"before={cursor}&limit=6")
        seen += seqs(step)
        cursor = step["next_cursor"]
    cursor = around["newer_cursor"]
    while cursor is not None:
        step = await page(chat, group_id, alice, f"after={cursor}&limit=6")
        seen = seqs(step) + seen
        cursor = step["newer_cursor"]
    assert seen == list(range(20, 0, -1))


async def test_near_either_end_the_other_side_fills_the_page(chat: TestClient) -> None:
    group_id, alice, _ = await twenty_messages(chat)

    late = await page(chat, group_id, alice, "around=19&limit=6")
    assert seqs(late) == [20, 19, 18, 17, 16, 15]
    assert (late["next_cursor"], late["newer_cursor"]) == ("15", None)

    early = await page(chat, group_id, alice, "around=2&limit=6")
    assert seqs(early) == [6, 5, 4, 3, 2, 1]
    assert (early["next_cursor"], early["newer_cursor"]) == (None, "6")

    beyond = await page(chat, group_id, alice, "around=500&limit=3")
    assert seqs(beyond) == [20, 19, 18]

    # The plain pages now say whether newer messages exist too.
    newest = await page(chat, group_id, alice, "limit=5")
    assert (seqs(newest), newest["next_cursor"], newest["newer_cursor"]) == (
        [20, 19, 18, 17, 16],
        "16",
        None,
    )
    middle = await page(chat, group_id, alice, "before=16&limit=5")
    assert (middle["next_cursor"], middle["newer_cursor"]) == ("11", "15")


async def test_deleted_messages_are_skipped_and_their_place_still_opens(
    chat: TestClient,
) -> None:
    group_id, alice, sent = await twenty_messages(chat)
    for message in sent[9:12]:  # seqs 10, 11, 12
        url = f"/api/v1/groups/{group_id}/messages/{message['id']}"
        assert (await chat.delete(url, headers=bearer(alice))).status == 204

    around = await page(chat, group_id, alice, "around=11&limit=4")
    assert seqs(around) == [14, 13, 9, 8]
    after = await page(chat, group_id, alice, "after=9&limit=2")
    assert seqs(after) == [14, 13]


async def test_a_search_result_opens_in_its_conversation(chat: TestClient) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    for n in range(1, 41):
        body = "the budget is approved" if n == 7 else f"chatter {n}"
        await post(chat, group_id, u["alice"], body)
    found = await chat.get("/api/v1/messages/search?q=budget", headers=bearer(u["alice"]))
    [hit] = (await found.json())["items"]

    message = hit["message"]
    around = await page(chat, message["group_id"], u["alice"], f"around={message['seq']}&limit=10")
    assert message["id"] in [shown["id"] for shown in around["items"]]
    assert seqs(around) == list(range(12, 2, -1))
    assert (around["next_cursor"], around["newer_cursor"]) == ("3", "12")

    # With room for everything, the whole conversation comes in one page.
    everything = await page(chat, message["group_id"], u["alice"], f"around={message['seq']}")
    assert seqs(everything) == list(range(40, 0, -1))
    assert (everything["next_cursor"], everything["newer_cursor"]) == (None, None)


@pytest.mark.parametrize(
    "query",
    [
        "around=abc",
        "around=-1",
        "after=1.5",
        "before=1&after=2",
        "around=3&before=9",
        "after=1&around=2",
    ],
)
async def test_bad_cursors_are_refused(chat: TestClient, query: str) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    refused = await page(chat, group_id, u["alice"], query, expect=400)
    assert refused["error"]["code"] == "invalid_cursor"


async def test_outsiders_get_not_found(chat: TestClient) -> None:
    u = await people(chat, "alice", "mallory")
    group_id = await group_of(chat, u["alice"])
    for query in ("around=1", "after=0"):
        refused = await page(chat, group_id, u["mallory"], query, expect=404)
        assert refused["error"]["code"] == "group_not_found"
