"""Blobs a crash left without a reference are removed at start-up, and only those."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gortc.adapters.blob_store import DiskBlobStore
from gortc.repositories.database import Database
from gortc.repositories.unit_of_work import SqliteUnitOfWork
from gortc.usecases.blob_garbage import remove_orphans


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(tmp_path / "gortc.db")
    await db.open()
    yield db
    await db.close()


async def test_only_unreferenced_blobs_go(tmp_path: Path, database: Database) -> None:
    store = DiskBlobStore(tmp_path / "blobs")
    uow = SqliteUnitOfWork(database)
    kept, _ = await store.put(_chunks(b"a file's bytes"), 1000)
    async with uow.transaction() as repos:
        await repos.blobs.acquire(kept, 14)
    # As a kill between the rename into place and the commit leaves it.
    orphan, _ = await store.put(_chunks(b"an upload that was never committed"), 1000)
    staged = tmp_path / "blobs" / "incoming" / ("c" * 32)  # an upload in progress
    staged.write_bytes(b"half")
    foreign = Path(store.path(kept)).parent / "notes.txt"
    foreign.write_text("an operator's file")

    assert await remove_orphans(uow, store) == 1

    assert Path(store.path(kept)).read_bytes() == b"a file's bytes"
    assert not Path(store.path(orphan)).exists()
    assert staged.exists() and foreign.exists()
    assert await remove_orphans(uow, store) == 0


async def test_an_empty_store_has_no_orphans(tmp_path: Path, database: Database) -> None:
    assert await remove_orphans(SqliteUnitOfWork(database), DiskBlobStore(tmp_path / "b")) == 0
