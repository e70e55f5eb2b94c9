"""Staged uploads a crash left behind are removed at start-up, and only those."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gortc.adapters.blob_store import DiskBlobStore


async def test_old_staged_bytes_go_and_recent_ones_stay(tmp_path: Path) -> None:
    incoming = tmp_path / "blobs" / "incoming"
    incoming.mkdir(parents=True)
    old, recent = incoming / ("a" * 32), incoming / ("b" * 32)
    foreign = incoming / "notes.txt"  # not a name the store gives: left alone
    for path in (old, recent, foreign):
        path.write_bytes(b"partial upload")
    two_days_ago = time.time() - 2 * 86_400
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(foreign, (two_days_ago, two_days_ago))

    removed = await DiskBlobStore(tmp_path / "blobs").remove_stale_staged()

    assert removed == 1
    assert sorted(p.name for p in incoming.iterdir()) == sorted([recent.name, foreign.name])


async def test_a_store_that_never_staged_anything_has_nothing_to_remove(tmp_path: Path) -> None:
    assert await DiskBlobStore(tmp_path / "blobs").remove_stale_staged() == 0
