"""The personal file store: uploads, downloads, renames, deletions, search.

A file belongs to its owner: every operation takes the caller as the owner,
and a file of someone else's answers exactly as one that does not exist
(NotFound ``file_not_found``). Reading is the one exception: a file attached
to a message may also be read (``get``, ``content``) by the members of its
group, for as long as the message exists and they are members.

Bytes live in the blob store under their SHA-256 and are counted in
``blobs``: identical bytes are stored once, whoever uploads them, and the
last reference to go removes them from disk. Quotas count each file's own
size, shared bytes or not, so nobody can learn from their quota whether
someone else stores the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime

from gortc.entities.errors import Conflict, InvalidInput, NotFound, TooLarge
from gortc.entities.filenames import sanitize_filename
from gortc.entities.files import SearchHit, StoredFile
from gortc.entities.ids import new_id
from gortc.entities.media_types import media_type_for
from gortc.entities.query_syntax import parse_query
from gortc.entities.text_content import (
    TEXT_EXTENSIONS,
    TextSniffer,
    TextVerdict,
    extension_of,
)
from gortc.usecases.blob_garbage import delete_unreferenced
from gortc.usecases.ports import (
    BlobLocation,
    BlobStore,
    Clock,
    ServedAs,
    StagedBlob,
    UnitOfWork,
)

MAX_QUERY_CHARS = 500
# Deeper than this, a page of search results is not worth computing: bm25
# must rank every match before it can skip that many.
MAX_SEARCH_OFFSET = 10_000
# Lifetime of a presigned download URL of the object store: the client
# follows the redirect at once (a download under way is not cut off).
LOCATION_SECONDS = 300


@dataclass(frozen=True, slots=True)
class FileSettings:
    max_file_bytes: int = 25 * 1024 * 1024
    quota_bytes: int = 1024 * 1024 * 1024
    index_max_bytes: int = 1024 * 1024
    max_files_per_upload: int = 100


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """One file of an upload, as it arrives (read ``chunks`` once, in order)."""

    filename: str | None
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True, slots=True)
class SingleUse:
    """An upload allowed once (a signed upload URL): its nonce is recorded
    in the transaction that stores the file, until ``expires_at``."""

    nonce: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StorageUsage:
    used_bytes: int
    files: int
    quota_bytes: int


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class _Staged:
    name: str
    blob: StagedBlob
    verdict: TextVerdict


class FileService:
    """Raises NotFound (``file_not_found``) for files the caller does not
    own (or, reading, may not read), TooLarge (``file_too_large``,
    ``quota_exceeded``) for uploads over the limits, InvalidInput for bad
    names, queries and cursors, Conflict (``url_used``) for a single-use
    upload made already."""

    def __init__(
        self, *, uow: UnitOfWork, blobs: BlobStore, clock: Clock, settings: FileSettings
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._clock = clock
        self._settings = settings

    # -- storing ------------------------------------------------------------

    async def upload(
        self,
        owner_id: str,
        files: AsyncIterator[IncomingFile],
        *,
        single_use: SingleUse | None = None,
    ) -> list[StoredFile]:
        """Stores every file of one upload, or none of them.

        Each file streams to the blob store as it arrives; the limits are
        checked while it does, so an oversized upload stops at the first
        byte too many and nothing of it is kept. With ``single_use``, an
        upload whose nonce is recorded already is refused (Conflict
        ``url_used``) and stores nothing.
        """
        async with self._uow.reading() as repos:
            used, _ = await repos.files.usage(owner_id)
        staged: list[_Staged] = []
        try:
            async for incoming in files:
                if len(staged) >= self._settings.max_files_per_upload:
                    raise InvalidInput(
                        f"send at most {self._settings.max_files_per_upload} files at once",
                        code="too_many_files",
                    )
                room = self._settings.quota_bytes - used - sum(s.blob.size for s in staged)
                staged.append(await self._stage(incoming, room))
            if not staged:
                raise InvalidInput(
                    "send the file in a form field named 'file'", code="missing_file"
                )
            return await self._store(owner_id, staged, single_use)
        finally:
            for item in staged:
                await self._blobs.discard(item.blob)

    async def _stage(self, incoming: IncomingFile, room: int) -> _Staged:
        name = sanitize_filename(incoming.filename)
        sniffer = TextSniffer(
            keep_bytes=self._settings.index_max_bytes,
            legacy_allowed=extension_of(name) in TEXT_EXTENSIONS,
        )
        max_bytes = self._settings.max_file_bytes

        async def checked() -> AsyncGenerator[bytes, None]:
            size = 0
            async for chunk in incoming.chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(
                        f"'{name}' is larger than {max_bytes} bytes, the limit per file",
                        code="file_too_large",
                    )
                if size > room:
                    raise self._over_quota()
                sniffer.feed(chunk)
                yield chunk

        async with aclosing(checked()) as chunks:
            blob = await self._blobs.stage(chunks, max(0, min(max_bytes, room)))
        return _Staged(name, blob, sniffer.verdict())

    async def store_uploaded(
        self, owner_id: str, handle: str, name: str, size: int, single_use: SingleUse
    ) -> StoredFile:
        """Files the bytes a client put straight into the store under
        ``handle`` as the owner's file ``name``, as ``upload`` would have:
        read back once to check their size and hash them (and index their
        text), then put under their hash. Bytes of the wrong size are
        removed and refused, like the limits' breaches (``_store`` checks
        the quota; the size was checked against the limit when asked)."""
        sniffer = TextSniffer(
            keep_bytes=self._settings.index_max_bytes,
            legacy_allowed=extension_of(name) in TEXT_EXTENSIONS,
        )
        try:
            blob = await self._blobs.stage_uploaded(handle, size, sniffer.feed)
        except TooLarge:
            raise TooLarge(
                f"the uploaded file is larger than the {size} bytes declared; it was removed",
                code="larger_than_declared",
            ) from None
        if blob is None:
            async with self._uow.reading() as repos:
                if await repos.used_upload_urls.is_used(single_use.nonce):
                    raise url_used()
            raise NotFound(
                "nothing was uploaded for this upload_id: PUT the file to its url first",
                code="upload_missing",
            )
        try:
            if blob.size != size:
                raise InvalidInput(
                    f"the uploaded file is smaller than the {size} bytes declared; it was removed",
                    code="smaller_than_declared",
                )
            [file] = await self._store(
                owner_id, [_Staged(name, blob, sniffer.verdict())], single_use
            )
        finally:
            await self._blobs.discard(blob)
        return file

    def _over_quota(self) -> TooLarge:
        return TooLarge(
            f"this upload does not fit in your storage quota of "
            f"{self._settings.quota_bytes} bytes; delete some files first",
            code="quota_exceeded",
        )

    async def check_fits(self, owner_id: str, size: int) -> None:
        """Refuses (TooLarge) a file of ``size`` bytes as an upload of it
        would be refused now (the upload itself checks again)."""
        if size > self._settings.max_file_bytes:
            raise TooLarge(
                f"a file is at most {self._settings.max_file_bytes} bytes, the limit per file",
                code="file_too_large",
            )
        async with self._uow.reading() as repos:
            used, _ = await repos.files.usage(owner_id)
        if used + size > self._settings.quota_bytes:
            raise self._over_quota()

    async def _store(
        self, owner_id: str, staged: list[_Staged], single_use: SingleUse | None
    ) -> list[StoredFile]:
        now = self._clock.now()
        # Ids sort by creation; sorted, they also keep the order sent.
        ids = sorted(new_id() for _ in staged)
        files = [
            StoredFile(
                id=file_id,
                owner_id=owner_id,
                name=item.name,
                size=item.blob.size,
                content_type=media_type_for(item.name, item.verdict),
                sha256=item.blob.sha256,
                searchable=item.verdict.is_text,
                not_searchable_reason=item.verdict.reason,
                index_truncated=item.verdict.truncated,
                created_at=now,
                updated_at=now,
            )
            for file_id, item in zip(ids, staged, strict=True)
        ]
        promoted = False
        await self._blobs.wait_durable([item.blob for item in staged])
        try:
            async with self._uow.transaction() as repos:
                # Checked again here, where no other upload can interleave.
                used, _ = await repos.files.usage(owner_id)
                if used + sum(file.size for file in files) > self._settings.quota_bytes:
                    raise self._over_quota()
                # Here too: of two uploads with one URL, the second to commit
                # finds the first's nonce and stores nothing.
                if single_use is not None and not await repos.used_upload_urls.use(
                    single_use.nonce, single_use.expires_at
                ):
                    raise url_used()
                for file in files:
                    await repos.blobs.acquire(file.sha256, file.size)
                await repos.files.add_many(
                    [(file, item.verdict.text) for file, item in zip(files, staged, strict=True)]
                )
                # Under the writer lock, with the references taken: a
                # deletion cannot remove these bytes between now and commit.
                promoted = True
                await self._blobs.promote_many([item.blob for item in staged])
        except BaseException:
            if promoted:
                await self._collect_garbage(item.blob.sha256 for item in staged)
            raise
        return files

    async def rename(self, owner_id: str, file_id: str, name: str) -> StoredFile:
        if not name.strip():
            raise InvalidInput("the name must not be empty", code="invalid_file_name")
        async with self._uow.transaction() as repos:
            file = await repos.files.rename(
                owner_id, file_id, sanitize_filename(name), self._clock.now()
            )
        if file is None:
            raise _not_found()
        return file

    async def delete(self, owner_id: str, file_id: str) -> None:
        async with self._uow.transaction() as repos:
            file = await repos.files.delete(owner_id, file_id)
            if file is None:
                raise _not_found()
            last = await repos.blobs.release(file.sha256)
        if last:
            await self._collect_garbage([file.sha256])

    async def _collect_garbage(self, hashes: Iterable[str]) -> None:
        await delete_unreferenced(self._uow, self._blobs, hashes)

    # -- reading --------------------------------------------------------------

    async def get(self, user_id: str, file_id: str) -> StoredFile:
        """The file, for its owner or a member of a group in which a message
        (not deleted) carries it; for anyone else, NotFound as for a file
        that does not exist. Checked anew on every call, so leaving the
        group or deleting the message ends the access at once."""
        async with self._uow.reading() as repos:
            file = await repos.files.get_readable(user_id, file_id)
        if file is None:
            raise _not_found()
        return file

    async def content(
        self, user_id: str, file_id: str, served: Callable[[StoredFile], ServedAs]
    ) -> tuple[StoredFile, BlobLocation]:
        """The file and where a client gets its bytes, answered with the
        headers ``served`` gives (access as for ``get``)."""
        file = await self.get(user_id, file_id)
        return file, await self._blobs.locate(file.sha256, served(file), LOCATION_SECONDS)

    async def list_mine(
        self, owner_id: str, *, limit: int, before: str | None = None
    ) -> list[StoredFile]:
        async with self._uow.reading() as repos:
            return await repos.files.list(owner_id, limit=limit, before=before)

    async def usage(self, owner_id: str) -> StorageUsage:
        async with self._uow.reading() as repos:
            used, count = await repos.files.usage(owner_id)
        return StorageUsage(used, count, self._settings.quota_bytes)

    async def search(
        self, owner_id: str, text: str, *, limit: int, cursor: str | None = None
    ) -> SearchPage:
        """The caller's files matching ``text`` (see entities/query_syntax.py),
        best first. Any text is a query; only an empty or overlong one, or a
        cursor of another query, is refused."""
        if not text.strip():
            raise InvalidInput("q, the words to search for, is required", code="missing_query")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidInput(
                f"q must be at most {MAX_QUERY_CHARS} characters", code="query_too_long"
            )
        offset = 0 if cursor is None else _offset_of(cursor, text)
        query = parse_query(text)
        if query is None or offset > MAX_SEARCH_OFFSET:
            return SearchPage([], None)
        async with self._uow.reading() as repos:
            hits = await repos.files.search(owner_id, query, limit=limit + 1, offset=offset)
        more = len(hits) > limit and offset + limit <= MAX_SEARCH_OFFSET
        return SearchPage(hits[:limit], _cursor(offset + limit, text) if more else None)


def _not_found() -> NotFound:
    return NotFound("no such file", code="file_not_found")


def url_used() -> Conflict:
    return Conflict(
        "this upload URL has stored its file already; ask for a new one", code="url_used"
    )


# A search cursor is "<offset>.<fingerprint of the query>" in base64url: pages
# are counted by rank position, and a cursor is only good for its own query.


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _cursor(offset: int, text: str) -> str:
    raw = f"{offset}.{_fingerprint(text)}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _offset_of(cursor: str, text: str) -> int:
    refused = InvalidInput(
        "cursor must be the next_cursor of a search with the same q", code="invalid_cursor"
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise refused from None
    offset, _, fingerprint = raw.partition(".")
    if not offset.isdigit() or len(offset) > 6 or fingerprint != _fingerprint(text):
        raise refused
    return int(offset)
