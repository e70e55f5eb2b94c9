"""The unit of work: every repository of one transaction on one connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite

from gortc.repositories.attachments import SqliteAttachmentRepository
from gortc.repositories.blobs import SqliteBlobReferences
from gortc.repositories.database import Database
from gortc.repositories.files import SqliteFileRepository
from gortc.repositories.groups import (
    SqliteGroupRepository,
    SqliteInvitationRepository,
    SqliteMemberRepository,
)
from gortc.repositories.messages import SqliteMessageRepository
from gortc.repositories.one_time_tokens import (
    SqliteInviteRepository,
    SqliteOneTimeTokenRepository,
)
from gortc.repositories.reactions import SqliteReactionRepository
from gortc.repositories.sessions import SqliteRefreshTokenRepository, SqliteSessionRepository
from gortc.repositories.stream_keys import SqliteStreamKeyRepository
from gortc.repositories.used_upload_urls import SqliteUsedUploadUrls
from gortc.repositories.users import SqliteUserRepository


class SqliteRepositories:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.users = SqliteUserRepository(conn)
        self.sessions = SqliteSessionRepository(conn)
        self.refresh_tokens = SqliteRefreshTokenRepository(conn)
        self.one_time_tokens = SqliteOneTimeTokenRepository(conn)
        self.invites = SqliteInviteRepository(conn)
        self.blobs = SqliteBlobReferences(conn)
        self.groups = SqliteGroupRepository(conn)
        self.members = SqliteMemberRepository(conn)
        self.invitations = SqliteInvitationRepository(conn)
        self.messages = SqliteMessageRepository(conn)
        self.reactions = SqliteReactionRepository(conn)
        self.files = SqliteFileRepository(conn)
        self.attachments = SqliteAttachmentRepository(conn)
        self.used_upload_urls = SqliteUsedUploadUrls(conn)
        self.stream_keys = SqliteStreamKeyRepository(conn)


class SqliteUnitOfWork:
    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteRepositories]:
        async with self._db.write() as conn:
            yield SqliteRepositories(conn)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[SqliteRepositories]:
        async with self._db.read() as conn:
            yield SqliteRepositories(conn)
