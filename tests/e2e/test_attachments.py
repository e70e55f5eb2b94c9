"""Files attached to messages: the group's members may read them (metadata
and bytes) for as long as the message exists and they are members; anyone
else gets the 404 of a file that does not exist. A message may carry only
its sender's own files, and a refused one stores nothing."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gortc.config import Config
from gortc.entities.ids import new_id
from tests.conftest import dump_database
from tests.e2e.file_client import upload
from tests.e2e.test_groups_api import (
    GROUPS,
    Person,
    add_member,
    call,
    create_group,
    history,
    sign_up,
)
from tests.e2e.ws_client import WsClient

MISSING = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def tokens(person: Person) -> dict[str, Any]:
    return {"access_token": person.headers["Authorization"].removeprefix("Bearer ")}


async def upload_as(client: TestClient, person: Person, name: str, data: bytes) -> dict[str, Any]:
    [stored] = await upload(client, tokens(person), (name, data))
    return stored


async def send(
    client: TestClient, group_id: str, who: Person, file_ids: list[str], *, expect: int = 201
) -> Any:
    return await call(
        client,
        "POST",
        f"{GROUPS}/{group_id}/messages",
        who,
        expect=expect,
        body={"body": "see attached", "file_ids": file_ids},
    )


async def reads(client: TestClient, who: Person, file: dict[str, Any]) -> bool:
    """Whether ``who`` can read the file: metadata and bytes agree, always."""
    metadata = await client.get(f"/api/v1/files/{file['id']}", headers=who.headers)
    content = await client.get(file["content_url"], headers=who.headers)
    assert metadata.status == content.status, (metadata.status, content.status)
    if metadata.status == 404:
        # Byte for byte the answer for a file that does not exist.
        missing = await client.get(f"/api/v1/files/{MISSING}", headers=who.headers)
        assert await metadata.json() == await missing.json()
        assert (await content.json())["error"]["code"] == "file_not_found"
        return False
    assert metadata.status == 200, await metadata.text()
    assert await metadata.json() == file
    assert content.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in content.headers["Content-Security-Policy"]
    assert len(await content.read()) == file["size"]
    return True


async def crew(client: TestClient) -> tuple[Person, Person, Person, str]:
    """alice owns a group bob is in; carol is not."""
    alice, bob, carol = [await sign_up(client, name) for name in ("alice", "bob", "carol")]
    gid = (await create_group(client, alice))["id"]
    await add_member(client, gid, alice, bob)
    return alice, bob, carol, gid


async def test_members_may_read_an_attached_file_and_nobody_else(client: TestClient) -> None:
    alice, bob, carol, gid = await crew(client)
    file = await upload_as(client, alice, "plan.txt", b"the quarterly budget\n")
    assert not await reads(client, bob, file)

    message = await send(client, gid, alice, [file["id"]])

    assert message["file_ids"] == [file["id"]]
    assert message["files"] == [
        {"id": file["id"], "name": "plan.txt", "size": 21, "content_type": file["content_type"]}
    ]
    assert await reads(client, alice, file)
    assert await reads(client, bob, file)
    assert not await reads(client, carol, file)
    [seen] = await history(client, gid, bob)
    assert (seen["file_ids"], seen["files"]) == (message["file_ids"], message["files"])
    # Reading is all it gives: not renaming, deleting, listing or searching.
    for method, body in (("PATCH", {"name": "mine.txt"}), ("DELETE", None)):
        error = await call(
            client, method, f"/api/v1/files/{file['id']}", bob, expect=404, body=body
        )
        assert error["error"]["code"] == "file_not_found"
    assert (await call(client, "GET", "/api/v1/files", bob, expect=200))["items"] == []
    found = await call(client, "GET", "/api/v1/files/search?q=budget", bob, expect=200)
    assert found["items"] == []


async def test_deleting_the_message_ends_the_access(client: TestClient) -> None:
    alice, bob, _, gid = await crew(client)
    file = await upload_as(client, alice, "plan.txt", b"draft")
    message = await send(client, gid, alice, [file["id"]])
    # The same file in a second message: each message grants on its own.
    other = await send(client, gid, alice, [file["id"]])

    await call(client, "DELETE", f"{GROUPS}/{gid}/messages/{message['id']}", alice, expect=204)
    assert await reads(client, bob, file)
    await call(client, "DELETE", f"{GROUPS}/{gid}/messages/{other['id']}", bob, expect=403)
    await call(client, "DELETE", f"{GROUPS}/{gid}/messages/{other['id']}", alice, expect=204)

    assert not await reads(client, bob, file)
    assert await reads(client, alice, file)


async def test_leaving_the_group_ends_the_access(client: TestClient) -> None:
    alice, bob, _, gid = await crew(client)
    file = await upload_as(client, alice, "plan.txt", b"draft")
    await send(client, gid, alice, [file["id"]])

    await call(client, "DELETE", f"{GROUPS}/{gid}/members/{bob.id}", bob, expect=204)
    assert not await reads(client, bob, file)

    # Access follows membership: back in the group, the message is there again.
    await add_member(client, gid, alice, bob)
    assert await reads(client, bob, file)


async def test_a_file_its_owner_deletes_shows_as_gone(client: TestClient) -> None:
    alice, bob, _, gid = await crew(client)
    kept = await upload_as(client, alice, "kept.txt", b"kept")
    gone = await upload_as(client, alice, "gone.txt", b"gone")
    await send(client, gid, alice, [gone["id"], kept["id"]])

    await call(client, "DELETE", f"/api/v1/files/{gone['id']}", alice, expect=204)

    [message] = await history(client, gid, bob)
    assert message["file_ids"] == [gone["id"], kept["id"]]
    assert [file["id"] for file in message["files"]] == [kept["id"]]
    assert not await reads(client, bob, gone)
    assert await reads(client, bob, kept)


async def test_only_the_senders_own_files_and_a_refusal_stores_nothing(
    client: TestClient, config: Config
) -> None:
    alice, bob, _, gid = await crew(client)
    hers = await upload_as(client, alice, "hers.txt", b"hers")
    his = await upload_as(client, bob, "his.txt", b"his")
    before = dump_database(config)

    for file_ids in ([hers["id"]], [his["id"], hers["id"]], [MISSING], [new_id()]):
        error = await send(client, gid, bob, file_ids, expect=404)
        assert error["error"]["code"] == "file_not_found"
    error = await call(
        client,
        "POST",
        f"/api/v1/direct/{alice.id}/messages",
        bob,
        expect=404,
        body={"body": "yours?", "file_ids": [hers["id"]]},
    )
    assert error["error"]["code"] == "file_not_found"

    assert dump_database(config) == before  # no message, no conversation
    assert not await reads(client, bob, hers)


async def test_how_many_files_a_message_may_carry(client: TestClient) -> None:
    alice, _, _, gid = await crew(client)
    files = [await upload_as(client, alice, f"{n}.txt", b"x") for n in range(11)]
    ids = [file["id"] for file in files]

    error = await send(client, gid, alice, ids, expect=400)
    assert error["error"]["code"] == "too_many_attachments"
    # Repeats count once and are dropped, the order kept.
    message = await send(client, gid, alice, [ids[3], ids[1], ids[3], *ids[:10]])
    assert message["file_ids"] == [ids[3], ids[1], ids[0], *ids[2:3], *ids[4:10]]
    assert len(message["files"]) == 10


async def test_direct_messages_share_files_with_the_peer(client: TestClient) -> None:
    alice, bob, carol, _ = await crew(client)
    file = await upload_as(client, carol, "for alice.txt", b"hello")
    message = await call(
        client,
        "POST",
        f"/api/v1/direct/{alice.id}/messages",
        carol,
        expect=201,
        body={"body": "for you", "file_ids": [file["id"]]},
    )
    assert message["files"][0]["name"] == "for alice.txt"
    assert await reads(client, alice, file)
    assert not await reads(client, bob, file)


async def test_over_the_websocket(client: TestClient) -> None:
    alice, bob, _, gid = await crew(client)
    file = await upload_as(client, alice, "plan.txt", b"draft")
    alice_ws = await WsClient.open(client, tokens(alice))
    bob_ws = await WsClient.open(client, tokens(bob))
    try:
        await alice_ws.send(
            type="message.send", group_id=gid, body="here", client_id="c1", file_ids=[file["id"]]
        )
        ack = await alice_ws.next("message.ack")
        created = (await bob_ws.next("message.created"))["message"]
        assert ack["message"] == created
        assert created["file_ids"] == [file["id"]]
        assert created["files"][0]["id"] == file["id"]

        # An edit keeps the files.
        await alice_ws.send(
            type="message.edit", group_id=gid, message_id=created["id"], body="here it is"
        )
        updated = (await bob_ws.next("message.updated"))["message"]
        assert (updated["file_ids"], updated["files"]) == (created["file_ids"], created["files"])

        # Catching up by change brings them too.
        await bob_ws.send(type="sync", group_id=gid, after_change=0)
        replayed = (await bob_ws.next("message.created"))["message"]
        assert replayed["files"] == created["files"]

        # Someone else's file: an error frame answering the send, nothing stored.
        his = await upload_as(client, bob, "his.txt", b"his")
        await alice_ws.send(
            type="message.send", group_id=gid, body="x", client_id="c2", file_ids=[his["id"]]
        )
        error = await alice_ws.next("error")
        assert (error["code"], error["status"], error["client_id"]) == ("file_not_found", 404, "c2")
        assert len(await history(client, gid, alice)) == 1
    finally:
        await alice_ws.close()
        await bob_ws.close()


async def test_deleting_the_group_ends_the_access(client: TestClient) -> None:
    alice, bob, _, gid = await crew(client)
    file = await upload_as(client, alice, "plan.txt", b"draft")
    await send(client, gid, alice, [file["id"]])

    await call(client, "DELETE", f"{GROUPS}/{gid}", alice, expect=204)

    assert not await reads(client, bob, file)
    assert await reads(client, alice, file)


async def test_a_file_may_go_without_words_but_a_message_may_not_be_empty(
    client: TestClient,
) -> None:
    alice, bob, _carol, gid = await crew(client)
    picture = await upload_as(client, alice, "view.png", b"\x89PNG\r\n\x1a\n" + bytes(64))

    message = await call(
        client, "POST", f"{GROUPS}/{gid}/messages", alice, expect=201,
        body={"body": "", "file_ids": [picture["id"]]},
    )  # fmt: skip

    assert (message["body"], message["file_ids"]) == ("", [picture["id"]])
    [seen] = await history(client, gid, bob)
    assert seen["files"][0]["name"] == "view.png"
    # No words and no files is still nothing to send.
    error = await call(
        client, "POST", f"{GROUPS}/{gid}/messages", alice, expect=400,
        body={"body": " ", "file_ids": []},
    )  # fmt: skip
    assert error["error"]["code"] == "invalid_body_text"
    assert len(await history(client, gid, bob)) == 1
