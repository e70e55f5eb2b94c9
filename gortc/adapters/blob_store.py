"""Content-addressed blobs on the local disk: <root>/<ab>/<cd>/<sha256>."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import BinaryIO

from gortc.entities.errors import TooLarge
from gortc.usecases.ports import StagedBlob

_HANDLE = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DiskBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._incoming = root / "incoming"
        # Staged blobs whose fsync is still running, by handle.
        self._syncing: dict[str, asyncio.Future[None]] = {}

    def path(self, sha256: str) -> str:
        return str(self._root / sha256[:2] / sha256[2:4] / sha256)

    async def put(self, chunks: AsyncIterator[bytes], max_size: int) -> tuple[str, int]:
        staged = await self.stage(chunks, max_size)
        try:
            await self.promote(staged)
        finally:
            await self.discard(staged)
        return staged.sha256, staged.size

    async def stage(self, chunks: AsyncIterator[bytes], max_size: int) -> StagedBlob:
        # Written to a temporary name first and renamed into place, so a
        # blob under its final name is always whole. The fsync (~3 ms here)
        # runs in the background: an upload of many small files would
        # otherwise wait for each in turn; ``promote`` waits for it.
        handle = secrets.token_hex(16)
        temporary = self._incoming / handle
        out = await asyncio.to_thread(_create, temporary)
        digest = hashlib.sha256()
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_size:
                    raise TooLarge(f"the upload exceeds {max_size} bytes")
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        except BaseException:
            await asyncio.to_thread(_close_and_remove, out, temporary)
            raise
        self._syncing[handle] = asyncio.ensure_future(asyncio.to_thread(_sync_and_close, out))
        return StagedBlob(digest.hexdigest(), size, handle)

    async def wait_durable(self, staged: Sequence[StagedBlob]) -> None:
        syncs = [self._syncing.pop(item.handle) for item in staged if item.handle in self._syncing]
        if syncs:
            await asyncio.gather(*syncs)

    async def promote(self, staged: StagedBlob) -> None:
        await self.promote_many([staged])

    async def promote_many(self, staged: Sequence[StagedBlob]) -> None:
        await self.wait_durable(staged)
        moves = [(self._staged_path(item), Path(self.path(item.sha256))) for item in staged]
        await asyncio.to_thread(_move_all, moves)

    async def discard(self, staged: StagedBlob) -> None:
        sync = self._syncing.pop(staged.handle, None)
        if sync is not None:
            await asyncio.gather(sync, return_exceptions=True)  # a thread cannot be stopped
        await asyncio.to_thread(self._staged_path(staged).unlink, missing_ok=True)

    async def remove_stale_staged(self, older_than_seconds: float = 86_400.0) -> int:
        """Deletes staged bytes left behind by a crash; returns how many.
        Only old ones: other instances sharing this directory may be in the
        middle of uploads."""
        return await asyncio.to_thread(_remove_older_than, self._incoming, older_than_seconds)

    def _staged_path(self, staged: StagedBlob) -> Path:
        if not _HANDLE.fullmatch(staged.handle):  # never a path from elsewhere
            raise ValueError("not a handle of this store")
        return self._incoming / staged.handle

    async def read(self, sha256: str) -> bytes:
        return await asyncio.to_thread(Path(self.path(sha256)).read_bytes)

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(Path(self.path(sha256)).unlink, missing_ok=True)

    async def list_stored(self) -> list[str]:
        return await asyncio.to_thread(_stored_hashes, self._root)


def _create(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("xb")


def _close_and_remove(out: BinaryIO, path: Path) -> None:
    out.close()
    path.unlink(missing_ok=True)


def _sync_and_close(out: BinaryIO) -> None:
    try:
        out.flush()
        os.fsync(out.fileno())
    finally:
        out.close()


def _move_all(moves: list[tuple[Path, Path]]) -> None:
    for source, target in moves:
        try:
            os.replace(source, target)
        except FileNotFoundError:  # the first blob of its directory
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)


def _remove_older_than(directory: Path, seconds: float) -> int:
    if not directory.is_dir():
        return 0
    cutoff = time.time() - seconds
    removed = 0
    for entry in directory.iterdir():
        if _HANDLE.fullmatch(entry.name) and entry.stat().st_mtime < cutoff:
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def _stored_hashes(root: Path) -> list[str]:
    # Only <ab>/<cd>/<sha256> whose name matches its folders: incoming/ and
    # anything else an operator put there are none of the store's blobs.
    return [
        path.name
        for path in root.glob("??/??/*")
        if _SHA256.fullmatch(path.name)
        and path.name[:2] == path.parent.parent.name
        and path.name[2:4] == path.parent.name
    ]
