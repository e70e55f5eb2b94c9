"""Deleting blobs nobody references any more, shared by every use case that
drops a reference (files, avatars), and by start-up after a crash."""

from __future__ import annotations

from collections.abc import Iterable

from gortc.usecases.ports import BlobStore, UnitOfWork


async def delete_unreferenced(uow: UnitOfWork, blobs: BlobStore, hashes: Iterable[str]) -> int:
    """In a write transaction, where every ``promote`` happens too: an upload
    of the same bytes either took its reference first (they stay) or will
    put them back afterwards. Returns how many were deleted."""
    deleted = 0
    async with uow.transaction() as repos:
        for sha256 in sorted(set(hashes)):
            if not await repos.blobs.is_referenced(sha256):
                await blobs.delete(sha256)
                deleted += 1
    return deleted


async def remove_orphans(uow: UnitOfWork, blobs: BlobStore) -> int:
    """Deletes blobs on disk that nothing references; returns how many.

    A process killed between putting an upload's bytes under their hash and
    the commit that references them (both happen in one write transaction),
    or between a deletion's commit and the removal of the bytes, leaves such
    blobs. Candidates are found without the writer lock (a walk of a large
    store takes a while), then each is checked again under it by
    ``delete_unreferenced``: an upload committed meanwhile, here or by
    another instance sharing the database, keeps its bytes.
    """
    stored = await blobs.list_stored()
    if not stored:
        return 0
    async with uow.reading() as repos:
        referenced = await repos.blobs.list_referenced()
    candidates = [sha256 for sha256 in stored if sha256 not in referenced]
    if not candidates:
        return 0
    return await delete_unreferenced(uow, blobs, candidates)
