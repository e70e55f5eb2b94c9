"""Content-addressed blobs on the local disk: <root>/<ab>/<cd>/<sha256>."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from gortc.entities.errors import TooLarge


class DiskBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._incoming = root / "incoming"

    def path(self, sha256: str) -> str:
        return str(self._root / sha256[:2] / sha256[2:4] / sha256)

    async def put(self, chunks: AsyncIterator[bytes], max_size: int) -> tuple[str, int]:
        # Written to a temporary name first and renamed into place, so a
        # blob under its final name is always whole.
        self._incoming.mkdir(parents=True, exist_ok=True)
        temporary = self._incoming / secrets.token_hex(16)
        digest = hashlib.sha256()
        size = 0
        try:
            with temporary.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_size:
                        raise TooLarge(f"the upload exceeds {max_size} bytes")
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(os.fsync, out.fileno())
            sha256 = digest.hexdigest()
            final = Path(self.path(sha256))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        return sha256, size

    async def read(self, sha256: str) -> bytes:
        return await asyncio.to_thread(Path(self.path(sha256)).read_bytes)

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(Path(self.path(sha256)).unlink, missing_ok=True)
