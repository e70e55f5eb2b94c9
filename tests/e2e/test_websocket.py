"""Real-time messaging over real WebSocket clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import bearer, login, make_config, register
from tests.e2e.ws_client import WsClient


@pytest.fixture
async def chat(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    config = make_config(tmp_path / "data", limits={"enabled": False}, hub={"sync_limit": 20})
    return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]


async def people(client: TestClient, *names: str) -> dict[str, dict[str, Any]]:
    """Registered and signed-in users: name -> tokens (with "user")."""
    found = {}
    for name in names:
        await register(client, name)
        found[name] = await login(client, name)
    return found


async def group_of(client: TestClient, owner: dict[str, Any], *others: dict[str, Any]) -> str:
    response = await client.post("/api/v1/groups", json={"name": "team"}, headers=bearer(owner))
    group_id: str = (await response.json())["id"]
    for other in others:
        added = await client.post(
            f"/api/v1/groups/{group_id}/members",
            json={"user_id": other["user"]["id"]},
            headers=bearer(owner),
        )
        assert added.status == 201
    return group_id


async def test_everyone_sees_each_message_in_the_same_order(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob", "carol")
    group_id = await group_of(chat, u["alice"], u["bob"], u["carol"])
    alice, alice_tab2 = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["alice"])
    bob, carol = await WsClient.open(chat, u["bob"]), await WsClient.open(chat, u["carol"])

    for index in range(30):  # pipelined: the acks come back as they commit
        await alice.send(
            type="message.send", group_id=group_id, body=f"m{index}", client_id=f"c{index}"
        )
    acks = await alice.collect("message.ack", 30)
    assert [ack["client_id"] for ack in acks] == [f"c{i}" for i in range(30)]
    assert [ack["message"]["seq"] for ack in acks] == list(range(1, 31))

    for receiver in (alice_tab2, bob, carol):
        created = await receiver.collect("message.created", 30)
        assert [frame["message"]["body"] for frame in created] == [f"m{i}" for i in range(30)]
        assert [frame["message"]["seq"] for frame in created] == list(range(1, 31))


async def test_an_ack_means_the_message_is_stored(chat: TestClient) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    alice = await WsClient.open(chat, u["alice"])
    await alice.send(type="message.send", group_id=group_id, body="kept", client_id="k")
    ack = await alice.next("message.ack")
    # Another connection to the database sees it the moment the ack arrives.
    history = await chat.get(f"/api/v1/groups/{group_id}/messages", headers=bearer(u["alice"]))
    assert [m["id"] for m in (await history.json())["items"]] == [ack["message"]["id"]]


async def test_sync_replays_exactly_what_was_missed(chat: TestClient) -> None:
    u = await people(chat, "alice", "carol")
    group_id = await group_of(chat, u["alice"], u["carol"])
    carol = await WsClient.open(chat, u["carol"])
    alice = await WsClient.open(chat, u["alice"])
    await alice.send(type="message.send", group_id=group_id, body="before", client_id="b")
    await alice.next("message.ack")
    seen = await carol.next("message.created")
    await carol.close()  # the laptop sleeps

    for index in range(5):
        await alice.send(
            type="message.send", group_id=group_id, body=f"missed {index}", client_id=str(index)
        )
    missed = [ack["message"] for ack in await alice.collect("message.ack", 5)]
    await alice.send(type="message.delete", group_id=group_id, message_id=missed[2]["id"])
    await alice.next("message.deleted")

    carol = await WsClient.open(chat, u["carol"])  # the laptop wakes
    await carol.send(type="sync", group_id=group_id, after_seq=seen["message"]["seq"])
    replayed = []
    while (frame := await carol.next("message.created", "message.deleted", "sync.done"))[
        "type"
    ] != "sync.done":
        replayed.append(frame)
    assert [(f["type"], f.get("message", f)["seq"]) for f in replayed] == [
        ("message.created", 2),
        ("message.created", 3),
        ("message.deleted", 4),
        ("message.created", 5),
        ("message.created", 6),
    ]
    assert [f["message"]["body"] for f in replayed if "message" in f] == [
        "missed 0",
        "missed 1",
        "missed 3",
        "missed 4",
    ]
    assert frame == {"type": "sync.done", "group_id": group_id, "last_seq": 6}


async def test_sync_after_a_long_absence_says_reload(chat: TestClient) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    alice = await WsClient.open(chat, u["alice"])
    for index in range(25):  # the test config replays at most 20
        await alice.send(
            type="message.send", group_id=group_id, body=f"m{index}", client_id=str(index)
        )
    await alice.collect("message.ack", 25)
    await alice.send(type="sync", group_id=group_id, after_seq=0)
    reset = await alice.next("sync.reset", "sync.done")
    assert reset == {"type": "sync.reset", "group_id": group_id, "last_seq": 25}


async def test_edits_and_deletions_reach_everyone(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    alice, bob = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["bob"])
    await bob.send(type="message.send", group_id=group_id, body="spam", client_id="s")
    message = (await bob.next("message.ack"))["message"]

    await bob.send(type="message.edit", group_id=group_id, message_id=message["id"], body="fixed")
    updated = await alice.next("message.updated")
    assert updated["message"]["body"] == "fixed"
    assert updated["message"]["edited_at"] is not None

    # Alice owns the group: she may delete Bob's message for everyone.
    await alice.send(type="message.delete", group_id=group_id, message_id=message["id"])
    for client in (alice, bob):
        gone = await client.next("message.deleted")
        assert gone == {
            "type": "message.deleted",
            "group_id": group_id,
            "message_id": message["id"],
            "seq": message["seq"],
            # Each change of the group takes the next number: sent, edited, deleted.
            "change": 3,
        }
    assert (message["change"], updated["message"]["change"]) == (1, 2)


async def test_outsiders_get_no_events_and_no_answers(chat: TestClient) -> None:
    u = await people(chat, "alice", "dave")
    group_id = await group_of(chat, u["alice"])
    alice, dave = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["dave"])
    await alice.send(type="message.send", group_id=group_id, body="secret", client_id="1")
    await alice.next("message.ack")
    await dave.silent(0.3, ignore=("presence",))

    for frame in (
        {"type": "message.send", "group_id": group_id, "body": "hi", "client_id": "d1"},
        {"type": "sync", "group_id": group_id, "after_seq": 0, "client_id": "d2"},
        {"type": "typing", "group_id": group_id, "client_id": "d3"},
        {"type": "read", "group_id": group_id, "seq": 1, "client_id": "d4"},
    ):
        await dave.send(**frame)
        error = await dave.next("error")
        assert (error["code"], error["status"], error["client_id"]) == (
            "group_not_found",
            404,
            frame["client_id"],
        )
    unknown = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
    await dave.send(type="sync", group_id=unknown, after_seq=0, client_id="x")
    assert (await dave.next("error"))["message"] == error["message"]  # same answer


async def test_joining_and_leaving_change_what_open_sockets_hear(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"])
    alice, bob = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["bob"])
    await chat.post(
        f"/api/v1/groups/{group_id}/members", json={"username": "bob"}, headers=bearer(u["alice"])
    )
    joined = await bob.next("group.joined")
    assert joined["group"]["id"] == group_id
    assert joined["group"]["role"] == "member"
    await alice.send(type="message.send", group_id=group_id, body="welcome", client_id="w")
    assert (await bob.next("message.created"))["message"]["body"] == "welcome"

    removed = await chat.delete(
        f"/api/v1/groups/{group_id}/members/{u['bob']['user']['id']}", headers=bearer(u["alice"])
    )
    assert removed.status == 204
    assert (await bob.next("group.left"))["group_id"] == group_id
    await alice.send(type="message.send", group_id=group_id, body="after", client_id="a")
    await alice.next("message.ack")
    await bob.silent(0.3, ignore=("presence", "member.left"))


async def test_members_hear_of_invitations_sent_and_declined(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob", "carol", "dan")
    group_id = await group_of(chat, u["alice"], u["bob"])
    bob, carol = await WsClient.open(chat, u["bob"]), await WsClient.open(chat, u["carol"])
    invited = await chat.post(
        f"/api/v1/groups/{group_id}/invitations",
        json={"username": "carol"},
        headers=bearer(u["alice"]),
    )
    invitation = await invited.json()
    # The member hears it is pending; the invitee hears of her invitation.
    pending = await bob.next("invitation.pending")
    assert pending["invitation"] == invitation
    assert pending["invitation"]["user_id"] == u["carol"]["user"]["id"]
    assert (await carol.next("invitation.created"))["invitation"] == invitation
    await carol.silent(0.3, ignore=("presence",))

    declined = await chat.post(
        f"/api/v1/invitations/{invitation['id']}/decline", headers=bearer(u["carol"])
    )
    assert declined.status == 204
    assert await bob.next("invitation.declined") == {
        "type": "invitation.declined",
        "group_id": group_id,
        "invitation_id": invitation["id"],
        "user_id": u["carol"]["user"]["id"],
    }
    # An outsider's socket hears nothing of the group's invitations.
    dan = await WsClient.open(chat, u["dan"])
    await chat.post(
        f"/api/v1/groups/{group_id}/invitations",
        json={"username": "carol"},
        headers=bearer(u["alice"]),
    )
    assert (await bob.next("invitation.pending"))["invitation"]["user_id"] == u["carol"]["user"][
        "id"
    ]
    await dan.silent(0.3, ignore=("presence",))


async def test_bad_frames_get_clear_errors_and_the_socket_stays(chat: TestClient) -> None:
    u = await people(chat, "alice")
    group_id = await group_of(chat, u["alice"])
    alice = await WsClient.open(chat, u["alice"])
    await alice.ws.send_str("{not json")
    assert (await alice.next("error"))["code"] == "malformed_json"
    await alice.send(type="no.such.type")
    assert (await alice.next("error"))["code"] == "invalid_frame"
    await alice.send(type="message.send", group_id=group_id, client_id="e", body="bad\u0000")
    error = await alice.next("error")
    assert (error["code"], error["client_id"]) == ("invalid_body_text", "e")
    await alice.ws.send_bytes(b"\x00\x01")
    assert (await alice.next("error"))["code"] == "invalid_frame"
    await alice.send(type="message.send", group_id=group_id, body="still here", client_id="ok")
    assert (await alice.next("message.ack"))["client_id"] == "ok"


async def test_a_frame_over_the_limit_closes_the_socket(chat: TestClient) -> None:
    u = await people(chat, "alice")
    alice = await WsClient.open(chat, u["alice"])
    await alice.ws.send_str("x" * 70_000)
    code, _ = await alice.closed()
    assert code == 1009


async def test_sign_out_closes_open_sockets_of_that_sign_in(chat: TestClient) -> None:
    u = await people(chat, "alice")
    other_device = await login(chat, "alice")
    doomed = await WsClient.open(chat, u["alice"])
    survivor = await WsClient.open(chat, other_device)
    assert (await chat.post("/api/v1/auth/logout", headers=bearer(u["alice"]))).status == 204
    code, reason = await doomed.closed()
    assert (code, reason) == (4001, "session ended")
    await survivor.send(type="typing", group_id="nothing", client_id="t")
    assert (await survivor.next("error"))["code"] == "group_not_found"


async def test_the_socket_needs_credentials(chat: TestClient) -> None:
    assert (await chat.get("/api/v1/ws")).status == 401  # plain HTTP: a plain 401
    for headers in ({}, {"Authorization": "Bearer forged"}):
        # A browser cannot see a refused handshake's status: it gets a 4001.
        ws = await chat.ws_connect("/api/v1/ws", headers=headers)
        assert await WsClient(ws).closed() == (
            4001,
            "sign in first" if not headers else "the access token is not valid",
        )


async def test_changing_the_password_closes_the_other_devices_at_once(chat: TestClient) -> None:
    u = await people(chat, "alice")
    laptop = await login(chat, "alice")
    phone_socket = await WsClient.open(chat, u["alice"])
    laptop_socket = await WsClient.open(chat, laptop)
    changed = await chat.post(
        "/api/v1/users/me/password",
        json={"current_password": "correct horse battery", "new_password": "a brand new phrase"},
        headers=bearer(laptop),
    )
    assert changed.status == 204
    assert await phone_socket.closed() == (4001, "session ended")
    await laptop_socket.send(type="typing", group_id="none", client_id="still")
    assert (await laptop_socket.next("error"))["client_id"] == "still"


async def test_query_token_works_for_browsers(chat: TestClient) -> None:
    u = await people(chat, "alice")
    ws = await chat.ws_connect(f"/api/v1/ws?access_token={u['alice']['access_token']}")
    opened = WsClient(ws)
    ready = await opened.next("ready")
    assert ready["user_id"] == u["alice"]["user"]["id"]


async def test_presence_follows_the_first_and_last_connection(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    alice = await WsClient.open(chat, u["alice"])
    alice_id, bob_id = u["alice"]["user"]["id"], u["bob"]["user"]["id"]
    assert (await alice.next("presence"))["online"] == [alice_id]  # her own arrival
    bob1 = await WsClient.open(chat, u["bob"])
    assert await alice.next("presence") == {
        "type": "presence",
        "group_id": group_id,
        "online": [bob_id],
        "offline": [],
    }
    bob2 = await WsClient.open(chat, u["bob"])
    await bob1.close()
    await alice.silent(0.8)  # still online through the second tab (0.5 s coalescing)
    await bob2.close()
    assert await alice.next("presence") == {
        "type": "presence",
        "group_id": group_id,
        "online": [],
        "offline": [bob_id],
    }


async def test_typing_is_shared_but_not_repeated(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    alice, bob = await WsClient.open(chat, u["alice"]), await WsClient.open(chat, u["bob"])
    for _ in range(5):
        await bob.send(type="typing", group_id=group_id)
    typing = await alice.next("typing")
    assert typing == {"type": "typing", "group_id": group_id, "user_id": u["bob"]["user"]["id"]}
    await alice.silent(0.3, ignore=("presence",))


async def test_read_marker_reaches_my_other_tabs_and_the_unread_count(chat: TestClient) -> None:
    u = await people(chat, "alice", "bob")
    group_id = await group_of(chat, u["alice"], u["bob"])
    alice = await WsClient.open(chat, u["alice"])
    bob_phone, bob_laptop = await WsClient.open(chat, u["bob"]), await WsClient.open(chat, u["bob"])
    for index in range(3):
        await alice.send(
            type="message.send", group_id=group_id, body=f"m{index}", client_id=str(index)
        )
    await alice.collect("message.ack", 3)
    mine = await (await chat.get("/api/v1/groups", headers=bearer(u["bob"]))).json()
    assert mine["items"][0]["unread"] == 3
    await bob_phone.send(type="read", group_id=group_id, seq=2)
    assert await bob_laptop.next("read.updated") == {
        "type": "read.updated",
        "group_id": group_id,
        "seq": 2,
    }
    mine = await (await chat.get("/api/v1/groups", headers=bearer(u["bob"]))).json()
    assert mine["items"][0]["unread"] == 1


async def test_rate_limited_sender_gets_an_error_frame(aiohttp_client: Any, tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", limits={"message_burst": 2, "messages_per_second": 1})
    client = await aiohttp_client(create_app(config))
    u = await people(client, "alice")
    group_id = await group_of(client, u["alice"])
    alice = await WsClient.open(client, u["alice"])
    for index in range(3):
        await alice.send(type="message.send", group_id=group_id, body="x", client_id=str(index))
    frames = {
        frame["client_id"]: frame
        for frame in [await alice.next("message.ack", "error") for _ in range(3)]
    }
    assert [frames[key]["type"] for key in ("0", "1", "2")] == [
        "message.ack",
        "message.ack",
        "error",
    ]
    assert frames["2"]["code"] == "rate_limited"
    assert frames["2"]["retry_after"] > 0
