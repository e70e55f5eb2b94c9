"""Deleting blobs nobody references any more, shared by every use case that
drops a reference (files, avatars)."""

from __future__ import annotations

from collections.abc import Iterable

from gortc.usecases.ports import BlobStore, UnitOfWork


async def delete_unreferenced(uow: UnitOfWork, blobs: BlobStore, hashes: Iterable[str]) -> None:
    """In a write transaction, where every ``promote`` happens too: an upload
    of the same bytes either took its reference first (they stay) or will
    put them back afterwards."""
    async with uow.transaction() as repos:
        for sha256 in set(hashes):
            if not await repos.blobs.is_referenced(sha256):
                await blobs.delete(sha256)
