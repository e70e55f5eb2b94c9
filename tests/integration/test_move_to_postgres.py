"""``gortc move-to-postgres``: a populated SQLite deployment moves into an
empty PostgreSQL database, and the server on PostgreSQL serves everyone as
before: same sign-ins, same history, same files and searches, and new
writes carry on where the old ones stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import TEST_PASSWORD, ClientFactory, bearer, login, make_config
from tests.e2e.file_client import names_found, upload
from tests.e2e.test_reactions import history, post
from tests.e2e.test_websocket import group_of, people
from tests.integration.test_cli import clean_environment, gortc
from tests.postgres_server import PostgresServer


async def populate(client: TestClient) -> dict[str, Any]:
    u = await people(client, "alice", "bob")
    group_id = await group_of(client, u["alice"], u["bob"])
    first = await post(client, group_id, u["alice"], "the launch is on friday")
    reply = await client.post(
        f"/api/v1/groups/{group_id}/messages",
        json={"body": "great news", "reply_to": first["id"]},
        headers=bearer(u["bob"]),
    )
    assert reply.status == 201
    reaction = f"/api/v1/groups/{group_id}/messages/{first['id']}/reactions/%F0%9F%91%8D"
    assert (await client.put(reaction, headers=bearer(u["bob"]))).status in (200, 204)
    [report] = await upload(client, u["alice"], ("Budget report.txt", b"quarterly budget numbers"))
    attached = await client.post(
        f"/api/v1/groups/{group_id}/messages",
        json={"body": "see attached", "file_ids": [report["id"]]},
        headers=bearer(u["alice"]),
    )
    assert attached.status == 201
    direct = await client.post(
        f"/api/v1/direct/{u['bob']['user']['id']}/messages",
        json={"body": "just us"},
        headers=bearer(u["alice"]),
    )
    assert direct.status == 201
    return {
        "group_id": group_id,
        "history": await history(client, group_id, u["bob"]),
        "file": report,
        "tokens": u,
    }


async def test_a_populated_deployment_moves_and_serves_from_postgresql(
    postgres_server: PostgresServer,
    empty_postgres_url: str,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
) -> None:
    data_dir = tmp_path / "data"
    sqlite_client = await aiohttp_client(create_app(make_config(data_dir)))
    before = await populate(sqlite_client)
    await sqlite_client.close()  # the server stopped, as the command asks

    moved = await gortc(
        "move-to-postgres",
        "--to",
        empty_postgres_url,
        env=clean_environment(GORTC_SERVER_DATA_DIR=str(data_dir)),
    )
    assert moved.returncode == 0, moved.stderr
    assert "every table counted and checked" in moved.stderr

    config = make_config(data_dir, database={"url": empty_postgres_url})
    client = await aiohttp_client(create_app(config))
    alice = await login(client, "alice", TEST_PASSWORD)  # the same password works
    bob = await login(client, "bob", TEST_PASSWORD)
    group_id = before["group_id"]
    assert await history(client, group_id, bob) == before["history"]
    download = await client.get(
        f"/api/v1/files/{before['file']['id']}/content", headers=bearer(alice)
    )
    assert await download.read() == b"quarterly budget numbers"  # the blob stayed put
    assert await names_found(client, alice, "budget") == ["Budget report.txt"]
    found = await client.get("/api/v1/messages/search", params={"q": "launch"}, headers=bearer(bob))
    assert [hit["message"]["body"] for hit in (await found.json())["items"]] == [
        "the launch is on friday"
    ]
    # New writes continue the sequences: the next seq, a new file's own id.
    newest = await post(client, group_id, alice, "after the move")
    assert newest["seq"] == max(message["seq"] for message in before["history"]) + 1
    [notes] = await upload(client, alice, ("notes.txt", b"fresh budget notes"))
    assert sorted(await names_found(client, alice, "budget")) == ["Budget report.txt", "notes.txt"]
    assert notes["id"] != before["file"]["id"]


async def test_a_database_with_users_is_not_overwritten(
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
) -> None:
    data_dir = tmp_path / "data"
    target = await aiohttp_client(
        create_app(make_config(tmp_path / "pg", database={"url": postgres_url}))
    )
    await people(target, "zed")
    await target.close()
    source = await aiohttp_client(create_app(make_config(data_dir)))
    await people(source, "alice")
    await source.close()

    moved = await gortc(
        "move-to-postgres",
        "--to",
        postgres_url,
        env=clean_environment(GORTC_SERVER_DATA_DIR=str(data_dir)),
    )

    assert moved.returncode == 1
    assert "already holds users" in moved.stderr
    database = postgres_url.rsplit("/", 1)[1]
    assert postgres_server.psql("SELECT username FROM users", database).split() == ["zed"]
