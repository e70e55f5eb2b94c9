"""Attachments in the group-commit store: in one batch, a draft carrying a
file that is not its sender's is refused alone, the others are stored with
their files, and seqs stay gap-free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from gortc.entities.errors import NotFound
from gortc.entities.files import FileSummary, StoredFile
from gortc.entities.ids import new_id
from gortc.repositories.database import Database
from gortc.repositories.group_commit import GroupCommitMessageStore
from gortc.repositories.messages import sqlite_message_store
from gortc.repositories.unit_of_work import SqliteUnitOfWork
from tests.integration.test_message_store import NOW, Batches, draft, group_with


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "gortc.db")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def store(db: Database) -> AsyncIterator[GroupCommitMessageStore]:
    message_store = sqlite_message_store(db)
    yield message_store
    await message_store.close()


async def add_file(uow: SqliteUnitOfWork, owner_id: str, name: str) -> StoredFile:
    file = StoredFile(
        id=new_id(),
        owner_id=owner_id,
        name=name,
        size=3,
        content_type="text/plain; charset=utf-8",
        sha256="ab" * 32,
        searchable=False,
        not_searchable_reason="test",
        index_truncated=False,
        created_at=NOW,
        updated_at=NOW,
    )
    async with uow.transaction() as repos:
        await repos.blobs.acquire(file.sha256, file.size)
        await repos.files.add(file, None)
    return file


def summary(file: StoredFile) -> FileSummary:
    return FileSummary(file.id, file.name, file.size, file.content_type)


async def test_one_refused_draft_does_not_spoil_its_batch(
    db: Database, store: GroupCommitMessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    uow = SqliteUnitOfWork(db)
    group_id, (alice, bob, carol) = await group_with(uow, "alice", "bob", "carol")
    hers = await add_file(uow, alice, "hers.txt")
    his = await add_file(uow, bob, "his.txt")
    batches = Batches(monkeypatch)

    results = await asyncio.gather(
        store.add(replace(draft(group_id, alice, "mine", None), file_ids=(hers.id,))),
        store.add(replace(draft(group_id, bob, "hers", None), file_ids=(his.id, hers.id))),
        store.add(replace(draft(group_id, bob, "mine", None), file_ids=(his.id,))),
        store.add(draft(group_id, carol, "no files", None)),
        return_exceptions=True,
    )

    assert batches.sizes == [4]
    first, refused, third, fourth = results
    assert isinstance(refused, NotFound) and refused.code == "file_not_found"
    assert not isinstance(first, BaseException) and not isinstance(third, BaseException)
    assert not isinstance(fourth, BaseException)
    assert [r.message.seq for r in (first, third, fourth)] == [1, 2, 3]
    assert first.message.files == (summary(hers),)
    assert third.message.files == (summary(his),)
    async with uow.reading() as repos:
        stored = await repos.messages.before(group_id, before_seq=None, limit=10)
        # Readable by the group's members (and the owner), nobody else.
        assert await repos.files.get_readable(carol, hers.id) == hers
        assert await repos.files.get_readable(new_id(), hers.id) is None
    assert [(m.body, m.file_ids, m.files) for m in stored] == [
        ("no files", (), ()),
        ("mine", (his.id,), (summary(his),)),
        ("mine", (hers.id,), (summary(hers),)),
    ]
