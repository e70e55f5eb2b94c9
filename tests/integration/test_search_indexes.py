"""The search indexes on real SQLite files: ``gortc reindex`` rebuilds them
from the stored data, and migrating an older database fills them from the
rows it already holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp
import pytest

from gortc.app import create_app
from gortc.entities.message_search import SearchOrder
from gortc.repositories.database import Database
from gortc.repositories.migrations import latest_version, migrate
from gortc.repositories.unit_of_work import SqliteUnitOfWork
from gortc.usecases.search import SearchService
from tests.conftest import ClientFactory, bearer, login, make_config, register
from tests.integration.test_cli import assert_ok, gortc

T = "2024-01-02T03:04:05.000000Z"


def integrity_check(path: Path) -> None:
    """FTS5's own checks; the message index is also compared with its table."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
        conn.execute("INSERT INTO users_fts (users_fts) VALUES ('integrity-check')")
    finally:
        conn.close()


@pytest.mark.slow
async def test_reindex_rebuilds_emptied_indexes(
    tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    data_dir = tmp_path / "data"
    config = make_config(data_dir)
    client = await aiohttp_client(create_app(config))
    await register(client, "alice")
    await register(client, "bob")
    alice = bearer(await login(client, "alice"))
    response = await client.post("/api/v1/groups", json={"name": "crew"}, headers=alice)
    group_id = (await response.json())["id"]
    for index in range(30):
        response = await client.post(
            f"/api/v1/groups/{group_id}/messages",
            json={"body": f"rebuild me {index}"},
            headers=alice,
        )
        assert response.status == 201
    form = aiohttp.FormData()
    form.add_field("file", b"notes to rebuild later", filename="todo.txt")
    response = await client.post("/api/v1/files", data=form, headers=alice)
    assert response.status == 201

    async def files_found() -> list[str]:
        response = await client.get("/api/v1/files/search", params={"q": "rebuild"}, headers=alice)
        body = await response.json()
        assert response.status == 200, body
        return [hit["file"]["name"] for hit in body["items"]]

    async def found() -> tuple[int, list[str]]:
        messages = await client.get(
            "/api/v1/messages/search", params={"q": "rebuild", "limit": "100"}, headers=alice
        )
        # Inside a name: the trigram index only (a username's start would
        # be found through the users table's own index).
        people = await client.get("/api/v1/users/search", params={"q": "lic"}, headers=alice)
        return (
            len((await messages.json())["items"]),
            [user["username"] for user in (await people.json())["items"]],
        )

    assert await found() == (30, ["alice"])
    assert await files_found() == ["todo.txt"]
    conn = sqlite3.connect(config.database_path)
    with conn:
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('delete-all')")
        conn.execute("DELETE FROM users_fts")
        for (shard,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'file_shard_%' "
            "AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        ).fetchall():
            conn.execute(f"INSERT INTO {shard} ({shard}) VALUES ('delete-all')")
    conn.close()
    assert await found() == (0, [])
    assert await files_found() == []

    outcome = await gortc("reindex", "--data-dir", str(data_dir))

    assert_ok(outcome)
    assert await found() == (30, ["alice"])
    assert await files_found() == ["todo.txt"]
    assert "reindexed 1 files, 30 messages, 2 people" in outcome.stdout
    # A progress bar per index on stderr (a line per tenth, not being a terminal).
    for name in ("files", "messages", "people"):
        lines = [line for line in outcome.stderr_lines if line.startswith(name)]
        assert lines and "100.0%" in lines[-1], outcome.stderr
    integrity_check(config.database_path)


_V4_ROWS = [
    "INSERT INTO users (id, username, email, display_name, password_hash, is_admin, "
    f"email_verified, disabled_at, created_at, updated_at) VALUES "
    f"('01HALICE', 'alice', 'alice@example.com', 'Zoë Liddell', 'h', 0, 1, NULL, '{T}', '{T}'), "
    f"('01HBOB', 'bob', 'bob@example.com', '', 'h', 0, 1, NULL, '{T}', '{T}'), "
    f"('01HGONE', 'gone', 'gone@example.com', 'Gone Girl', 'h', 0, 1, '{T}', '{T}', '{T}')",
    "INSERT INTO groups (id, name, kind, owner_id, direct_key, last_seq, created_at, "
    f"last_change) VALUES ('01HGROUP', 'team', 'group', '01HALICE', NULL, 3, '{T}', 4), "
    f"('01HOTHER', 'other', 'group', '01HBOB', NULL, 1, '{T}', 1)",
    "INSERT INTO members (group_id, user_id, role, joined_at, read_seq) VALUES "
    f"('01HGROUP', '01HALICE', 'owner', '{T}', 0), ('01HOTHER', '01HBOB', 'owner', '{T}', 0)",
    "INSERT INTO messages (id, group_id, seq, sender_id, body, created_at, edited_at, "
    "deleted_at, client_id, change_seq, created_change_seq) VALUES "
    f"('01HM1', '01HGROUP', 1, '01HALICE', 'the café opens early', '{T}', NULL, NULL, NULL, 1, 1), "
    f"('01HM2', '01HGROUP', 2, '01HALICE', 'edited: the café is closed', '{T}', '{T}', NULL, "
    "NULL, 4, 2), "
    f"('01HM3', '01HGROUP', 3, '01HALICE', '', '{T}', NULL, '{T}', NULL, 3, 3), "
    f"('01HM4', '01HOTHER', 1, '01HBOB', 'café of bob', '{T}', NULL, NULL, NULL, 1, 1)",
]


async def test_migrating_from_version_4_fills_the_search_indexes(tmp_path: Path) -> None:
    path = tmp_path / "gortc.db"
    migrate(path, target=4)
    conn = sqlite3.connect(path)
    with conn:
        for statement in _V4_ROWS:
            conn.execute(statement)
    conn.close()

    result = migrate(path)

    assert (result.from_version, result.to_version) == (4, latest_version())
    integrity_check(path)
    db = Database(path)
    await db.open()
    try:
        search = SearchService(uow=SqliteUnitOfWork(db))
        page = await search.messages("01HALICE", "cafe")
        assert [hit.message.id for hit in page.hits] == ["01HM2", "01HM1"]
        relevance = await search.messages("01HALICE", "closed", order=SearchOrder.RELEVANCE)
        assert [hit.message.body for hit in relevance.hits] == ["edited: the café is closed"]
        assert [hit.message.id for hit in (await search.messages("01HBOB", "cafe")).hits] == [
            "01HM4"
        ]
        # The people index holds folded names, disabled accounts left out.
        assert [user.username for user in await search.people("zoe")] == ["alice"]
        assert [user.username for user in await search.people("lidell")] == ["alice"]
        assert [user.username for user in await search.people("bob")] == ["bob"]
        assert await search.people("gone") == []
        assert await search.people("girl") == []
    finally:
        await db.close()
