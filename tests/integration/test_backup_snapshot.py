"""The backup's snapshot against a garbage collector and a damaged store,
on a real SQLite file and a real blob directory."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from gortc.adapters.blob_store import DiskBlobStore
from gortc.repositories.backup import BackupError, backup, restore
from gortc.repositories.migrations import migrate


def stored(data_dir: Path, content: bytes) -> str:
    sha256 = hashlib.sha256(content).hexdigest()
    path = Path(DiskBlobStore(data_dir / "blobs").path(sha256))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    conn = sqlite3.connect(data_dir / "gortc.db")
    with conn:
        conn.execute(
            "INSERT INTO blobs (sha256, size, refcount) VALUES (?, ?, 1)", (sha256, len(content))
        )
    conn.close()
    return sha256


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    migrate(data / "gortc.db")
    conn = sqlite3.connect(data / "gortc.db")
    conn.execute("PRAGMA journal_mode = WAL")  # as the server runs it
    conn.close()
    return data


def test_a_blob_collected_after_the_snapshot_is_still_in_the_backup(
    data_dir: Path, tmp_path: Path
) -> None:
    kept = stored(data_dir, b"deleted by its owner while the backup runs")
    blob = Path(DiskBlobStore(data_dir / "blobs").path(kept))

    def collect_garbage(line: str) -> None:
        # What the collector does once the writers may run again: the row
        # goes, then the file.
        if line.startswith("snapshot taken"):
            conn = sqlite3.connect(data_dir / "gortc.db")
            with conn:
                conn.execute("DELETE FROM blobs WHERE sha256 = ?", (kept,))
            conn.close()
            blob.unlink()

    backup(
        data_dir / "gortc.db", data_dir, tmp_path / "b", secret_configured=True, say=collect_garbage
    )

    copied = Path(DiskBlobStore(tmp_path / "b" / "blobs").path(kept))
    assert copied.read_bytes() == b"deleted by its owner while the backup runs"
    assert not list(data_dir.glob(".backup-staging-*"))  # its hold is let go
    summary = restore(tmp_path / "b", tmp_path / "r" / "gortc.db", tmp_path / "r", say=print)
    assert summary.blob_count == 1
    assert summary.key_source.startswith("not in the backup")


def test_writers_wait_only_while_the_snapshot_is_taken(data_dir: Path, tmp_path: Path) -> None:
    for index in range(50):
        stored(data_dir, f"blob {index}".encode())
    committed_during_lock: list[bool] = []

    def try_to_write(line: str) -> None:
        if line.startswith("snapshot taken"):  # the lock is let go by now
            conn = sqlite3.connect(data_dir / "gortc.db", timeout=0)
            with conn:
                conn.execute("UPDATE blobs SET refcount = refcount + 1")
            conn.close()
            committed_during_lock.append(True)

    thread = threading.Thread(
        target=backup,
        args=(data_dir / "gortc.db", data_dir, tmp_path / "b"),
        kwargs={"secret_configured": False, "say": try_to_write},
    )
    thread.start()
    thread.join(timeout=30)
    assert committed_during_lock == [True]
    assert len(list((tmp_path / "b" / "blobs").rglob("*/*/*"))) == 50


def test_a_blob_already_missing_is_reported_and_the_rest_restores(
    data_dir: Path, tmp_path: Path
) -> None:
    present = stored(data_dir, b"here")
    gone = stored(data_dir, b"lost before the backup")
    Path(DiskBlobStore(data_dir / "blobs").path(gone)).unlink()
    summary = backup(
        data_dir / "gortc.db", data_dir, tmp_path / "b", secret_configured=False, say=print
    )
    assert summary.missing == [gone]
    restored = restore(tmp_path / "b", tmp_path / "r" / "gortc.db", tmp_path / "r", say=print)
    assert restored.blob_count == 1
    assert Path(DiskBlobStore(tmp_path / "r" / "blobs").path(present)).read_bytes() == b"here"


def test_a_backup_missing_a_referenced_blob_is_refused(data_dir: Path, tmp_path: Path) -> None:
    kept = stored(data_dir, b"will be taken out of the backup")
    backup(data_dir / "gortc.db", data_dir, tmp_path / "b", secret_configured=False, say=print)
    Path(DiskBlobStore(tmp_path / "b" / "blobs").path(kept)).unlink()
    with pytest.raises(BackupError, match="incomplete"):
        restore(tmp_path / "b", tmp_path / "r" / "gortc.db", tmp_path / "r", say=print)
    assert not (tmp_path / "r").exists()
