"""The unit of work on PostgreSQL: every repository of one transaction on
one pooled connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gortc.repositories.postgres.attachments import PostgresAttachmentRepository
from gortc.repositories.postgres.blobs import PostgresBlobReferences
from gortc.repositories.postgres.database import Connection, PostgresDatabase
from gortc.repositories.postgres.files import PostgresFileRepository
from gortc.repositories.postgres.groups import (
    PostgresGroupRepository,
    PostgresInvitationRepository,
    PostgresMemberRepository,
)
from gortc.repositories.postgres.messages import PostgresMessageRepository
from gortc.repositories.postgres.one_time_tokens import (
    PostgresInviteRepository,
    PostgresOneTimeTokenRepository,
)
from gortc.repositories.postgres.reactions import PostgresReactionRepository
from gortc.repositories.postgres.sessions import (
    PostgresRefreshTokenRepository,
    PostgresSessionRepository,
)
from gortc.repositories.postgres.stream_keys import (
    PostgresStreamKeyRepository,
    PostgresUsedUploadUrls,
)
from gortc.repositories.postgres.users import PostgresUserRepository


class PostgresRepositories:
    def __init__(self, conn: Connection) -> None:
        self.users = PostgresUserRepository(conn)
        self.sessions = PostgresSessionRepository(conn)
        self.refresh_tokens = PostgresRefreshTokenRepository(conn)
        self.one_time_tokens = PostgresOneTimeTokenRepository(conn)
        self.invites = PostgresInviteRepository(conn)
        self.blobs = PostgresBlobReferences(conn)
        self.groups = PostgresGroupRepository(conn)
        self.members = PostgresMemberRepository(conn)
        self.invitations = PostgresInvitationRepository(conn)
        self.messages = PostgresMessageRepository(conn)
        self.reactions = PostgresReactionRepository(conn)
        self.attachments = PostgresAttachmentRepository(conn)
        self.files = PostgresFileRepository(conn)
        self.used_upload_urls = PostgresUsedUploadUrls(conn)
        self.stream_keys = PostgresStreamKeyRepository(conn)


class PostgresUnitOfWork:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresRepositories]:
        async with self._db.write() as conn:
            yield PostgresRepositories(conn)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[PostgresRepositories]:
        async with self._db.read() as conn:
            yield PostgresRepositories(conn)
