"""Migration 0004 (client ids, change numbers) on a database that already
holds groups and messages: nothing is lost, and the new code carries on."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from gortc.entities.groups import NewMessage
from gortc.entities.ids import new_id
from gortc.repositories.database import Database
from gortc.repositories.messages import sqlite_message_store
from gortc.repositories.migrations import migrate
from gortc.repositories.unit_of_work import SqliteUnitOfWork
from tests.conftest import dump_database

T = "2024-01-02T03:04:05.000000Z"

_V3_ROWS = [
    "INSERT INTO users (id, username, email, display_name, password_hash, is_admin, "
    f"email_verified, disabled_at, created_at, updated_at) VALUES ('01HALICE', 'alice', "
    f"'alice@example.com', 'Alice', '$2b$04$hash', 0, 1, NULL, '{T}', '{T}')",
    "INSERT INTO groups (id, name, kind, owner_id, direct_key, last_seq, created_at) "
    f"VALUES ('01HGROUP', 'team', 'group', '01HALICE', NULL, 3, '{T}')",
    "INSERT INTO groups (id, name, kind, owner_id, direct_key, last_seq, created_at) "
    f"VALUES ('01HEMPTY', 'quiet', 'group', '01HALICE', NULL, 0, '{T}')",
    f"INSERT INTO members (group_id, user_id, role, joined_at, read_seq) VALUES "
    f"('01HGROUP', '01HALICE', 'owner', '{T}', 2), ('01HEMPTY', '01HALICE', 'owner', '{T}', 0)",
    "INSERT INTO messages (id, group_id, seq, sender_id, body, created_at, edited_at, "
    f"deleted_at) VALUES ('01HM1', '01HGROUP', 1, '01HALICE', 'first', '{T}', NULL, NULL), "
    f"('01HM2', '01HGROUP', 2, '01HALICE', 'second, edited', '{T}', '{T}', NULL), "
    f"('01HM3', '01HGROUP', 3, '01HALICE', '', '{T}', NULL, '{T}')",
]


def _database_at_version_3(path: Path) -> None:
    migrate(path, target=3)
    conn = sqlite3.connect(path)
    try:
        with conn:
            for statement in _V3_ROWS:
                conn.execute(statement)
    finally:
        conn.close()


async def test_messages_written_at_version_3_survive_and_get_change_numbers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gortc.db"
    _database_at_version_3(path)
    before = dump_database(path)

    result = migrate(path, target=4)

    assert (result.from_version, result.to_version) == (3, 4)
    after = dump_database(path)
    # Every old row is still there, the new columns at their ends: groups
    # count their changes from last_seq, messages take their seq as both
    # change numbers and have no client id.
    assert [row for row in after if row[0] == "groups"] == [
        (*row, row[6]) for row in before if row[0] == "groups"
    ]
    assert [row for row in after if row[0] == "messages"] == [
        (*row, None, row[3], row[3]) for row in before if row[0] == "messages"
    ]
    assert [row for row in after if row[0] not in ("groups", "messages")] == [
        row for row in before if row[0] not in ("groups", "messages")
    ]

    # And the running code goes on from there.
    db = Database(path)
    await db.open()
    store = sqlite_message_store(db)
    try:
        uow = SqliteUnitOfWork(db)
        async with uow.reading() as repos:
            edited = await repos.messages.get("01HM2")
            by_change = await repos.messages.changed_after("01HGROUP", after_change=1, limit=10)
        assert edited is not None
        assert (edited.body, edited.change, edited.created_change, edited.client_id) == (
            "second, edited",
            2,
            2,
            None,
        )
        assert [(m.id, m.is_deleted) for m in by_change] == [("01HM2", False), ("01HM3", True)]

        def draft(client_id: str) -> NewMessage:
            return NewMessage(
                id=new_id(),
                group_id="01HGROUP",
                sender_id="01HALICE",
                body="after the upgrade",
                created_at=datetime.now(UTC),
                client_id=client_id,
            )

        stored = await store.add(draft("c-1"))
        assert (stored.is_new, stored.message.seq, stored.message.change) == (True, 4, 4)
        assert (await store.add(draft("c-1"))).message == stored.message
        async with uow.transaction() as repos:
            first = await repos.messages.get("01HM1")
            assert first is not None
            assert (await repos.messages.update(first)).change == 5
            groups = {g: await repos.groups.get(g) for g in ("01HGROUP", "01HEMPTY")}
        assert [(g.last_seq, g.last_change) for g in groups.values() if g] == [(4, 5), (0, 0)]
    finally:
        await store.close()
        await db.close()
