"""Sending again with the same client_id, and catching up by change number,
over real WebSocket clients and a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import bearer, make_config
from tests.e2e.test_websocket import group_of, people
from tests.e2e.ws_client import WsClient


@pytest.fixture
async def chat(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    config = make_config(tmp_path / "data", limits={"enabled": False}, hub={"sync_limit": 20})
    return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]


async def history(client: TestClient, group_id: str, tokens: dict[str, Any]) -> list[Any]:
    response = await client.get(f"/api/v1/groups/{group_id}/messages", headers=bearer(tokens))
    assert response.status == 200
    return (await response.json())["items"]  # type: ignore[no-any-return]


async def replayed_until_done(client: WsClient) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The frames a sync replays, and the sync.done that ends them."""
    frames = []
    while True:
        frame = await client.next(
            "message.created", "message.updated", "message.deleted", "sync.done", "sync.reset"
        )
        if frame["type"] in ("sync.done", "sync.reset"):
            return frames, frame
        frames.append(frame)


# -- sending again with the same client_id ------------------------------------


async def test_a_resent_message_is_stored_once_and_acknowledged_alike(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    alice, bob = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["bob"])

    await alice.send(type="message.send", group_id=group_id, body="hello", client_id="c-1")
    first = await alice.next("message.ack")
    created = await bob.next("message.created")
    assert created["message"] == first["message"]
    assert (created["message"]["client_id"], created["message"]["change"]) == ("c-1", 1)

    # The answer was lost, say: the client sends the very same frame again.
    await alice.send(type="message.send", group_id=group_id, body="hello", client_id="c-1")
    again = await alice.next("message.ack")
    assert again == first

    await bob.silent(0.3, ignore=("presence",))  # no second message.created
    assert [m["id"] for m in await history(chat, group_id, u["alice"])] == [first["message"]["id"]]


async def test_repeats_sent_at_once_are_stored_once(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    tab1, tab2 = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["alice"])
    bob = await WsClient.open(chat, u["bob"])

    # Pipelined on one socket and raced from a second one: most land in one batch.
    frame = {"type": "message.send", "group_id": group_id, "body": "once", "client_id": "dup"}
    for _ in range(5):
        await tab1.send(**frame)
        await tab2.send(**frame)
    acks = await tab1.collect("message.ack", 5) + await tab2.collect("message.ack", 5)

    assert len({ack["message"]["id"] for ack in acks}) == 1
    assert all(ack == acks[0] for ack in acks)
    assert (await bob.next("message.created"))["message"] == acks[0]["message"]
    await bob.silent(0.3, ignore=("presence",))
    assert len(await history(chat, group_id, u["alice"])) == 1


async def test_the_same_client_id_from_others_or_elsewhere_is_a_new_message(
    chat: TestClient,
) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    other_group = await group_of(chat, u["alice"], u["bob"])
    alice, bob = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["bob"])

    await alice.send(type="message.send", group_id=group_id, body="a", client_id="1")
    await bob.send(type="message.send", group_id=group_id, body="b", client_id="1")
    await alice.send(type="message.send", group_id=other_group, body="c", client_id="1")
    # And no client_id at all is never a repeat.
    for body in ("d", "e"):
        await alice.send(type="message.send", group_id=group_id, body=body)
    acks = [
        *(await alice.collect("message.ack", 4)),
        await bob.next("message.ack"),
    ]

    assert len({ack["message"]["id"] for ack in acks}) == 5
    stored = await history(chat, group_id, u["alice"])
    assert sorted((m["body"], m["client_id"]) for m in stored) == [
        ("a", "1"),
        ("b", "1"),
        ("d", None),
        ("e", None),
    ]


async def test_a_resent_post_over_rest_answers_with_the_first_message(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    bob = await WsClient.open(chat, u["bob"])
    url = f"/api/v1/groups/{group_id}/messages"

    first = await chat.post(
        url, json={"body": "hi", "client_id": "r-1"}, headers=bearer(u["alice"])
    )
    assert first.status == 201
    message = await first.json()
    assert (message["client_id"], message["seq"], message["change"]) == ("r-1", 1, 1)
    again = await chat.post(
        url, json={"body": "hi", "client_id": "r-1"}, headers=bearer(u["alice"])
    )
    assert again.status == 201
    assert await again.json() == message

    assert (await bob.next("message.created"))["message"] == message
    await bob.silent(0.3, ignore=("presence",))
    assert [m["id"] for m in await history(chat, group_id, u["alice"])] == [message["id"]]

    # The same id over the WebSocket is the same message too.
    alice = await WsClient.open(chat, u["alice"])
    await alice.send(type="message.send", group_id=group_id, body="hi", client_id="r-1")
    assert (await alice.next("message.ack"))["message"] == message

    # Too long an id is refused like any bad field.
    refused = await chat.post(
        url, json={"body": "hi", "client_id": "x" * 101}, headers=bearer(u["alice"])
    )
    assert (refused.status, (await refused.json())["error"]["code"]) == (400, "invalid_body")


async def test_a_resent_direct_message_starts_one_conversation_with_one_message(
    chat: TestClient,
) -> None:
    u = await people(chat, "alice", "bob")
    url = f"/api/v1/direct/{u['bob']['user']['id']}/messages"
    answers = await asyncio.gather(
        *(
            chat.post(url, json={"body": "psst", "client_id": "d-1"}, headers=bearer(u["alice"]))
            for _ in range(3)
        )
    )
    assert [answer.status for answer in answers] == [201, 201, 201]
    messages = [await answer.json() for answer in answers]
    assert len({message["id"] for message in messages}) == 1
    assert len(await history(chat, messages[0]["group_id"], u["bob"])) == 1


# -- catching up by change ----------------------------------------------------


async def test_sync_by_change_replays_edits_and_deletions_of_old_messages_in_order(
    chat: TestClient,
) -> None:
    u = await people(chat, "alice", "carol")
    group_id = await group_of(chat, u["alice"], u["carol"])
    alice, carol = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["carol"])
    for index in range(3):
        await alice.send(
            type="message.send", group_id=group_id, body=f"old {index}", client_id=f"o{index}"
        )
    old = [ack["message"] for ack in await alice.collect("message.ack", 3)]
    seen = await carol.collect("message.created", 3)
    known_change = max(frame["message"]["change"] for frame in seen)
    assert known_change == 3
    await carol.close()  # the laptop sleeps

    await alice.send(type="message.edit", group_id=group_id, message_id=old[0]["id"], body="old 0!")
    await alice.next("message.updated")
    await alice.send(type="message.delete", group_id=group_id, message_id=old[1]["id"])
    await alice.next("message.deleted")
    await alice.send(type="message.send", group_id=group_id, body="new", client_id="n")
    new = (await alice.next("message.ack"))["message"]
    await alice.send(type="message.edit", group_id=group_id, message_id=new["id"], body="new!")
    await alice.next("message.updated")
    await alice.send(type="message.edit", group_id=group_id, message_id=old[0]["id"], body="old 0?")
    await alice.next("message.updated")

    carol = await WsClient.open(chat, u["carol"])  # the laptop wakes
    await carol.send(type="sync", group_id=group_id, after_change=known_change)
    replayed, done = await replayed_until_done(carol)

    # Change order, each message once, as it is now: the deletion (5), the
    # new message with its edit (7; created at 6, so "created"), then the
    # old one's second edit (8; its first, 4, is folded in).
    assert [
        (frame["type"], frame.get("message", frame)["change"], frame.get("message", frame)["seq"])
        for frame in replayed
    ] == [
        ("message.deleted", 5, 2),
        ("message.created", 7, 4),
        ("message.updated", 8, 1),
    ]
    assert replayed[0] == {
        "type": "message.deleted",
        "group_id": group_id,
        "message_id": old[1]["id"],
        "seq": 2,
        "change": 5,
    }
    assert (replayed[1]["message"]["body"], replayed[1]["message"]["client_id"]) == ("new!", "n")
    assert replayed[1]["message"]["edited_at"] is not None
    assert replayed[2]["message"]["body"] == "old 0?"
    assert done == {"type": "sync.done", "group_id": group_id, "last_seq": 4, "last_change": 8}

    # Caught up: nothing more after the last change.
    await carol.send(type="sync", group_id=group_id, after_change=8)
    assert await replayed_until_done(carol) == ([], done)


async def test_sync_by_seq_stays_as_it_was(chat: TestClient) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    alice = await WsClient.open(chat, u["alice"])
    for index in range(2):
        await alice.send(
            type="message.send", group_id=group_id, body=f"m{index}", client_id=str(index)
        )
    first, _ = [ack["message"] for ack in await alice.collect("message.ack", 2)]
    await alice.send(type="message.edit", group_id=group_id, message_id=first["id"], body="m0!")
    await alice.next("message.updated")

    await alice.send(type="sync", group_id=group_id, after_seq=1)
    replayed, done = await replayed_until_done(alice)

    assert [(f["type"], f["message"]["seq"]) for f in replayed] == [("message.created", 2)]
    assert done == {"type": "sync.done", "group_id": group_id, "last_seq": 2}


async def test_sync_by_change_resets_only_when_too_many_messages_changed(
    chat: TestClient,
) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    alice = await WsClient.open(chat, u["alice"])
    await alice.send(type="message.send", group_id=group_id, body="draft", client_id="d")
    message = (await alice.next("message.ack"))["message"]
    for index in range(25):  # more changes than the test config's sync_limit of 20 …
        await alice.send(
            type="message.edit", group_id=group_id, message_id=message["id"], body=f"v{index}"
        )
        await alice.next("message.updated")

    # … but one message: it fits.
    await alice.send(type="sync", group_id=group_id, after_change=0)
    replayed, done = await replayed_until_done(alice)
    assert [(f["type"], f["message"]["body"]) for f in replayed] == [("message.created", "v24")]
    assert done == {"type": "sync.done", "group_id": group_id, "last_seq": 1, "last_change": 26}

    for index in range(21):
        await alice.send(
            type="message.send", group_id=group_id, body=f"m{index}", client_id=f"m{index}"
        )
    await alice.collect("message.ack", 21)
    await alice.send(type="sync", group_id=group_id, after_change=26)
    replayed, reset = await replayed_until_done(alice)
    assert replayed == []
    assert reset == {"type": "sync.reset", "group_id": group_id, "last_seq": 22, "last_change": 47}


async def test_a_sync_needs_a_starting_point(chat: TestClient) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    alice = await WsClient.open(chat, u["alice"])
    for frame in (
        {"type": "sync", "group_id": group_id, "client_id": "s1"},
        {"type": "sync", "group_id": group_id, "after_change": -1, "client_id": "s2"},
        {"type": "sync", "group_id": group_id, "after_change": "three", "client_id": "s3"},
    ):
        await alice.send(**frame)
        error = await alice.next("error")
        assert (error["code"], error["client_id"]) == ("invalid_frame", frame["client_id"])
    # Outsiders learn nothing, by change as by seq.
    dave = (await people(chat, "dave"))["dave"]
    outsider = await WsClient.open(chat, dave)
    await outsider.send(type="sync", group_id=group_id, after_change=0, client_id="x")
    assert (await outsider.next("error"))["code"] == "group_not_found"
