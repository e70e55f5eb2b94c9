"""Content-addressed blobs on the local disk: <root>/<ab>/<cd>/<sha256>."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from gortc.entities.errors import Conflict, TooLarge
from gortc.usecases.ports import BlobLocation, DirectUpload, ServedAs, StagedBlob

_HANDLE = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DiskBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._incoming = root / "incoming"
        # Staged blobs whose fsync is still running, by handle.
        self._syncing: dict[str, asyncio.Future[None]] = {}
        # Staged files, open and locked until discarded: the lock tells
        # start-up (of this or another instance) that they are in use.
        self._staged: dict[str, BinaryIO] = {}

    # Bytes reach the disk only through the server.
    direct_uploads = False

    def path(self, sha256: str) -> str:
        return str(self._root / sha256[:2] / sha256[2:4] / sha256)

    async def locate(self, sha256: str, served: ServedAs, expires_seconds: int) -> BlobLocation:
        return BlobLocation(path=self.path(sha256))

    async def presign_upload(
        self, handle: str, size: int, content_type: str, expires_seconds: int
    ) -> DirectUpload:
        raise direct_upload_unavailable()

    async def stage_uploaded(
        self, handle: str, max_size: int, feed: Callable[[bytes], None]
    ) -> StagedBlob | None:
        raise direct_upload_unavailable()

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
        self._staged[handle] = out
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
            del self._staged[handle]
            await asyncio.to_thread(_remove_and_close, out, temporary)
            raise
        self._syncing[handle] = asyncio.ensure_future(asyncio.to_thread(_sync, out))
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
        path = self._staged_path(staged)
        out = self._staged.pop(staged.handle, None)
        if out is None:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        else:
            await asyncio.to_thread(_remove_and_close, out, path)

    async def remove_stale_staged(self, older_than_seconds: float = 86_400.0) -> int:
        """Deletes staged bytes left behind by a crash; returns how many.

        Staged files stay locked (flock) by the process writing them until
        they are discarded, and a lock ends with its process: a file nobody
        holds was left by a process that died. Others sharing this directory
        may be in the middle of uploads: their files are held, and stay.
        Where the filesystem has no locks, only files older than
        ``older_than_seconds`` go."""
        return await asyncio.to_thread(_remove_abandoned, self._incoming, older_than_seconds)

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


def direct_upload_unavailable() -> Conflict:
    return Conflict(
        "this server keeps files on its own disk: upload through POST /api/v1/files",
        code="direct_upload_unavailable",
    )


def _create(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Locked under a name start-up sweeps ignore, then renamed: a sweep
    # never finds a staged file between its creation and its lock.
    unlocked = path.with_name(path.name + _UNLOCKED)
    out = unlocked.open("xb")
    try:
        with contextlib.suppress(OSError):  # a filesystem without locks
            fcntl.flock(out.fileno(), fcntl.LOCK_EX)
        os.rename(unlocked, path)
    except BaseException:
        _remove_and_close(out, unlocked)
        raise
    return out


def _remove_and_close(out: BinaryIO, path: Path) -> None:
    # Removed while still locked: a sweep never finds it unheld.
    try:
        path.unlink(missing_ok=True)
    finally:
        out.close()


def _sync(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _move_all(moves: list[tuple[Path, Path]]) -> None:
    for source, target in moves:
        try:
            os.replace(source, target)
        except FileNotFoundError:  # the first blob of its directory
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)


# The suffix of a staged file for the instant between its creation and its
# lock (a process killed then leaves an empty one, removed a day later).
_UNLOCKED = ".new"


def _remove_abandoned(directory: Path, unlocked_after: float) -> int:
    if not directory.is_dir():
        return 0
    now = time.time()
    removed = 0
    for entry in directory.iterdir():
        if entry.name.endswith(_UNLOCKED) and _HANDLE.fullmatch(entry.name[: -len(_UNLOCKED)]):
            with contextlib.suppress(FileNotFoundError):  # renamed meanwhile: locked
                if now - entry.stat().st_mtime >= unlocked_after:
                    entry.unlink()
                    removed += 1
            continue
        if not _HANDLE.fullmatch(entry.name):
            continue
        try:
            fd = os.open(entry, os.O_RDONLY)
        except FileNotFoundError:  # its upload just ended
            continue
        try:
            info = os.fstat(fd)
            age = now - info.st_mtime
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # held: an upload in progress
            except OSError:  # no locks here: only the age can tell
                if age < unlocked_after:
                    continue
            entry.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(fd)
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
