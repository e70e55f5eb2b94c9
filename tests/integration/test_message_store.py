"""The group-commit message store and the message repository, on both
backends: repeated client ids, change numbers, gap-free seqs with several
writers; and, on SQLite, the query plans sync relies on."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gortc.entities.errors import NotFound
from gortc.entities.groups import Group, GroupKind, Member, NewMessage, Role, StoredMessage
from gortc.entities.ids import new_id
from gortc.repositories import group_commit
from gortc.repositories.database import Database
from gortc.repositories.group_commit import GroupCommitMessageStore, MessageBatch
from gortc.repositories.messages import _stored_by_client_id
from gortc.usecases.ports import UnitOfWork
from tests.integration.backends import Backend
from tests.integration.test_repositories import add_users, make_user

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "gortc.db")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[GroupCommitMessageStore]:
    message_store = backend.new_message_store()
    yield message_store
    await message_store.close()


@pytest.fixture
def uow(backend: Backend) -> UnitOfWork:
    return backend.uow


class Batches:
    """Records the size of every batch the store writes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        real = group_commit.write_batch

        async def recorded(
            statements: MessageBatch, drafts: list[NewMessage]
        ) -> list[StoredMessage | Exception]:
            self.sizes.append(len(drafts))
            return await real(statements, drafts)

        monkeypatch.setattr(group_commit, "write_batch", recorded)


async def group_with(uow: UnitOfWork, *usernames: str) -> tuple[str, list[str]]:
    users = [make_user(name) for name in usernames]
    await add_users(uow, *users)
    group = Group(id=new_id(), name="team", kind=GroupKind.GROUP, owner_id=None, created_at=NOW)
    async with uow.transaction() as repos:
        await repos.groups.add(group)
        for user in users:
            await repos.members.add(Member(group.id, user.id, Role.MEMBER, NOW))
    return group.id, [user.id for user in users]


def draft(group_id: str, sender_id: str, body: str, client_id: str | None) -> NewMessage:
    return NewMessage(
        id=new_id(),
        group_id=group_id,
        sender_id=sender_id,
        body=body,
        created_at=NOW,
        client_id=client_id,
    )


async def message_rows(backend: Backend) -> list[tuple[Any, ...]]:
    return await backend.rows(
        "SELECT group_id, sender_id, client_id, seq, change_seq, created_change_seq, body "
        "FROM messages ORDER BY group_id, seq"
    )


async def test_a_repeat_in_the_same_batch_gets_the_first_message_and_stores_nothing(
    backend: Backend,
    uow: UnitOfWork,
    store: GroupCommitMessageStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    group_id, (alice,) = await group_with(uow, "alice")
    batches = Batches(monkeypatch)

    first, other, repeat = await asyncio.gather(
        store.add(draft(group_id, alice, "hello", "c1")),
        store.add(draft(group_id, alice, "unrelated", None)),
        store.add(draft(group_id, alice, "hello, resent", "c1")),
    )

    assert batches.sizes == [3]  # all three really were in one transaction
    assert first.is_new and other.is_new and not repeat.is_new
    assert repeat.message == first.message
    assert (first.message.seq, first.message.change, first.message.client_id) == (1, 1, "c1")
    assert (other.message.seq, other.message.client_id) == (2, None)
    assert await message_rows(backend) == [
        (group_id, alice, "c1", 1, 1, 1, "hello"),
        (group_id, alice, None, 2, 2, 2, "unrelated"),
    ]
    async with uow.reading() as repos:
        group = await repos.groups.get(group_id)
    assert group is not None and (group.last_seq, group.last_change) == (2, 2)


async def test_a_repeat_in_a_later_batch_gets_the_message_as_it_is_now(
    backend: Backend, uow: UnitOfWork, store: GroupCommitMessageStore
) -> None:
    group_id, (alice,) = await group_with(uow, "alice")
    first = await store.add(draft(group_id, alice, "hello", "c1"))
    async with uow.transaction() as repos:
        edited = await repos.messages.update(replace(first.message, body="hello!", edited_at=NOW))
    assert edited.change == 2

    repeat = await store.add(draft(group_id, alice, "hello", "c1"))

    assert not repeat.is_new
    assert repeat.message == edited
    assert [row[-1] for row in await message_rows(backend)] == ["hello!"]


async def test_client_ids_are_per_sender_and_per_group(
    backend: Backend, uow: UnitOfWork, store: GroupCommitMessageStore
) -> None:
    group_id, (alice, bob) = await group_with(uow, "alice", "bob")
    other_group, _ = await group_with(uow, "carol")
    async with uow.transaction() as repos:
        await repos.members.add(Member(other_group, alice, Role.MEMBER, NOW))

    stored = await asyncio.gather(
        store.add(draft(group_id, alice, "a", "same")),
        store.add(draft(group_id, bob, "b", "same")),
        store.add(draft(other_group, alice, "c", "same")),
    )

    assert all(result.is_new for result in stored)
    assert len({result.message.id for result in stored}) == 3
    assert len(await message_rows(backend)) == 3


async def test_a_repeat_from_someone_no_longer_a_member_is_refused(
    backend: Backend, uow: UnitOfWork, store: GroupCommitMessageStore
) -> None:
    group_id, (alice, _) = await group_with(uow, "alice", "bob")
    await store.add(draft(group_id, alice, "hello", "c1"))
    async with uow.transaction() as repos:
        await repos.members.remove(group_id, alice)

    with pytest.raises(NotFound):
        await store.add(draft(group_id, alice, "hello", "c1"))


async def test_edits_and_deletions_take_the_next_change_and_leave_seq_alone(
    backend: Backend, uow: UnitOfWork, store: GroupCommitMessageStore
) -> None:
    group_id, (alice,) = await group_with(uow, "alice")
    first, second, third = [
        (await store.add(draft(group_id, alice, body, None))).message for body in ("a", "b", "c")
    ]
    async with uow.transaction() as repos:
        await repos.messages.update(replace(first, body="a2", edited_at=NOW))
        await repos.messages.update(replace(second, body="", deleted_at=NOW))
        await repos.messages.update(replace(first, body="a3", edited_at=NOW))
    fourth = (await store.add(draft(group_id, alice, "d", None))).message

    assert (fourth.seq, fourth.change, fourth.created_change) == (4, 7, 7)
    async with uow.reading() as repos:
        changed = await repos.messages.changed_after(group_id, after_change=2, limit=10)
        group = await repos.groups.get(group_id)
    # Each message once, at its latest change; the first edit's number (4) is gone.
    assert [(m.id, m.change, m.created_change) for m in changed] == [
        (third.id, 3, 3),
        (second.id, 5, 2),
        (first.id, 6, 1),
        (fourth.id, 7, 7),
    ]
    assert [m.body for m in changed] == ["c", "", "a3", "d"]
    assert [m.is_deleted for m in changed] == [False, True, False, False]
    assert group is not None and (group.last_seq, group.last_change) == (4, 7)


def query_plan(path: Path, sql: str, params: tuple[Any, ...]) -> str:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return " | ".join(str(row[-1]) for row in rows)
    finally:
        conn.close()


async def test_sync_by_change_and_the_repeat_look_up_are_index_searches(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "gortc.db"
    by_change = query_plan(
        path,
        "SELECT id FROM messages WHERE group_id = ? AND change_seq > ? ORDER BY change_seq LIMIT ?",
        ("g", 5, 10),
    )
    assert "USING INDEX messages_by_change (group_id=? AND change_seq>?)" in by_change
    assert "TEMP B-TREE" not in by_change  # no sort: the index gives the order

    # The store's own statement, captured as it runs.
    statements: list[str] = []
    async with db.write() as conn:
        await conn.set_trace_callback(statements.append)
        try:
            await _stored_by_client_id(conn, [("g", "u", "c1"), ("g", "u", "c2")])
        finally:
            await conn.set_trace_callback(None)
    [look_up] = [s for s in statements if "wanted" in s]
    repeats = query_plan(path, look_up, ())
    assert "SEARCH m USING INDEX messages_by_client_id " in repeats, repeats
    assert "SCAN m" not in repeats, repeats


async def test_a_sender_that_goes_away_does_not_take_its_message_with_it(
    backend: Backend, uow: UnitOfWork, store: GroupCommitMessageStore
) -> None:
    group_id, (alice,) = await group_with(uow, "alice")
    # The first send starts a batch; the second waits for the next one and
    # its sender is cancelled (the socket closed) before that is written.
    first = asyncio.create_task(store.add(draft(group_id, alice, "one", "c1")))
    second = asyncio.create_task(store.add(draft(group_id, alice, "two", "c2")))
    await asyncio.sleep(0)
    second.cancel()
    assert (await first).message.seq == 1
    with pytest.raises(asyncio.CancelledError):
        await second
    await store.close()

    assert [row[-1] for row in await message_rows(backend)] == ["one", "two"]
    async with uow.transaction() as repos:
        group = await repos.groups.get(group_id)
    assert group is not None and group.last_seq == 2


async def test_two_writers_keep_seqs_gap_free_and_store_a_resend_once(
    backend: Backend, uow: UnitOfWork
) -> None:
    # Two stores on one database: two gortc instances. Each sends its own
    # messages and every client id twice, once through each instance.
    group_id, (alice, bob) = await group_with(uow, "alice", "bob")
    first, second = backend.new_message_store(), backend.new_message_store()
    try:
        sends = [
            writer.add(draft(group_id, sender, f"{sender[-4:]} {n}", f"{sender}-{n}"))
            for n in range(40)
            for sender in (alice, bob)
            for writer in (first, second)
        ]
        results = await asyncio.gather(*sends)
    finally:
        await first.close()
        await second.close()

    rows = await message_rows(backend)
    assert [row[3] for row in rows] == list(range(1, 81))  # seq: 80 messages, no gap
    assert len({(row[1], row[2]) for row in rows}) == 80  # each client id stored once
    by_client_id: dict[str | None, set[int]] = {}
    for result in results:
        by_client_id.setdefault(result.message.client_id, set()).add(result.message.seq)
    # Both sends of a client id got the same message back.
    assert all(len(seqs) == 1 for seqs in by_client_id.values())
    assert sum(result.is_new for result in results) == 80
