"""Used upload URLs are remembered once, until they expire, then purged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gortc.repositories.database import Database
from gortc.repositories.maintenance import purge_expired
from gortc.repositories.unit_of_work import SqliteUnitOfWork

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "gortc.db")
    await database.open()
    yield database
    await database.close()


async def test_a_nonce_is_used_once_and_purged_after_it_expires(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    async with uow.transaction() as repos:
        assert await repos.used_upload_urls.use("expired", NOW - timedelta(seconds=1))
        assert await repos.used_upload_urls.use("live", NOW + timedelta(minutes=5))
        assert not await repos.used_upload_urls.use("live", NOW + timedelta(minutes=9))

    removed = await purge_expired(db, NOW)

    assert removed == 1
    async with uow.reading() as repos:
        assert not await repos.used_upload_urls.is_used("expired")
        assert await repos.used_upload_urls.is_used("live")
