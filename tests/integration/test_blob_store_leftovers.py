"""Staged uploads a crash left behind are removed at start-up, and only those."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from gortc.adapters.blob_store import DiskBlobStore


async def test_abandoned_staged_bytes_go_and_held_ones_stay(tmp_path: Path) -> None:
    incoming = tmp_path / "blobs" / "incoming"
    incoming.mkdir(parents=True)
    abandoned, held = incoming / ("a" * 32), incoming / ("b" * 32)
    foreign = incoming / "notes.txt"  # not a name the store gives: left alone
    # Killed between creating and locking: gone once a day old.
    old_new, fresh_new = incoming / ("c" * 32 + ".new"), incoming / ("d" * 32 + ".new")
    for path in (abandoned, held, foreign, old_new, fresh_new):
        path.write_bytes(b"partial upload")
    two_days_ago = time.time() - 2 * 86_400
    for path in (foreign, old_new):
        os.utime(path, (two_days_ago, two_days_ago))
    # Another instance sharing the folder is still writing this one.
    with held.open("rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)

        removed = await DiskBlobStore(tmp_path / "blobs").remove_stale_staged()

    assert removed == 2
    assert sorted(p.name for p in incoming.iterdir()) == sorted(
        [held.name, foreign.name, fresh_new.name]
    )


FIRST = b"first part " * 10_000  # past the file's write buffer: on disk at once


async def _slow_chunks(release: asyncio.Event) -> AsyncIterator[bytes]:
    yield FIRST
    await release.wait()
    yield b"second part"


async def test_an_upload_in_progress_keeps_its_staged_bytes(tmp_path: Path) -> None:
    writing = DiskBlobStore(tmp_path / "blobs")
    release = asyncio.Event()
    staging = asyncio.ensure_future(writing.stage(_slow_chunks(release), 1_000_000))
    incoming = tmp_path / "blobs" / "incoming"
    async with asyncio.timeout(5):
        while not incoming.is_dir() or not any(p.stat().st_size for p in incoming.iterdir()):
            await asyncio.sleep(0.01)

    # Another instance starting now finds the file held, and leaves it.
    assert await DiskBlobStore(tmp_path / "blobs").remove_stale_staged() == 0

    release.set()
    staged = await staging
    await writing.promote(staged)
    await writing.discard(staged)
    assert list(incoming.iterdir()) == []
    assert Path(writing.path(staged.sha256)).read_bytes() == FIRST + b"second part"


async def test_a_store_that_never_staged_anything_has_nothing_to_remove(tmp_path: Path) -> None:
    assert await DiskBlobStore(tmp_path / "blobs").remove_stale_staged() == 0
