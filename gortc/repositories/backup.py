"""``gortc backup`` and ``gortc restore``: a consistent copy of a running
server's data directory, and putting one back into an empty one.

A backup is a directory::

    manifest.json   format, gortc version, schema version, counts, sizes
    gortc.db        the database, copied with SQLite's online backup API
    secret.key      the server's secret (absent when it is configured)
    blobs/ab/cd/<sha256>   every blob the copied database references

Consistency (see docs/architecture.md, "Backups"): the backup takes the
database's write lock (``BEGIN IMMEDIATE`` on a connection of its own), so
no commit and no garbage collection can run; it opens a read transaction on
a second connection, which fixes the snapshot, reads the referenced blobs
from it and hard-links each one into a staging directory beside them; then
it lets the writers go again. Blobs are immutable (content-addressed and
renamed into place whole), so a link is a copy that the collector's unlink
cannot take away. The database pages are then copied from the still-open
read transaction — the same snapshot — and the linked blobs copied at
leisure. Writers wait only for the links, not for the copying.

The HLS output under ``<data_dir>/live`` is not backed up: live segments
are transient and a restored server starts with no live stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gortc import __version__
from gortc.adapters.blob_store import DiskBlobStore
from gortc.repositories.migrations import latest_version

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "gortc.db"
KEY_FILE = "secret.key"
BLOBS = "blobs"
_STAGING_PREFIX = ".backup-staging-"
_CHUNK = 1 << 20
# How long the backup waits for the server's write in flight, at most.
_LOCK_TIMEOUT_SECONDS = 30.0
_COUNTED = ("users", "groups", "messages", "files")
_COUNT_ROWS = (
    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM groups), "
    "(SELECT count(*) FROM messages), (SELECT count(*) FROM files)"
)


class BackupError(Exception):
    """Something the operator can fix or should know; one line, no traceback.
    ``status`` is the exit status of the command."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Summary:
    database_bytes: int = 0
    blob_count: int = 0
    blob_bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    key_source: str = "none"

    def describe(self) -> str:
        rows = ", ".join(f"{count:,} {name}" for name, count in self.counts.items())
        return (
            f"database {_size(self.database_bytes)} ({rows}); "
            f"{self.blob_count:,} blobs, {_size(self.blob_bytes)}; secret: {self.key_source}"
        )


def backup(
    database_path: Path,
    data_dir: Path,
    target: Path,
    *,
    secret_configured: bool,
    say: Callable[[str], None],
) -> Summary:
    """Writes a backup of the data at ``target`` (which must not exist):
    built under a temporary name beside it, renamed into place at the end."""
    if target.exists():
        raise BackupError(f"{target} already exists; name a new backup", status=2)
    if not database_path.is_file():
        raise BackupError(f"no database at {database_path}: nothing to back up", status=2)
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory", status=2)
    started = time.perf_counter()
    blob_store = DiskBlobStore(data_dir / BLOBS)
    _remove_stale_staging(data_dir)
    staging = data_dir / f"{_STAGING_PREFIX}{secrets.token_hex(8)}"
    partial = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    summary = Summary()
    snapshot = sqlite3.connect(
        f"file:{database_path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    try:
        staging.mkdir()
        with _write_lock(database_path):
            # The snapshot is fixed by its first read, made while no writer
            # (and so no garbage collection) can run.
            snapshot.execute("BEGIN")
            referenced = snapshot.execute(
                "SELECT sha256, size FROM blobs WHERE refcount > 0 ORDER BY sha256"
            ).fetchall()
            for sha256, _size_bytes in referenced:
                if not _link_or_copy(Path(blob_store.path(sha256)), staging / sha256):
                    summary.missing.append(sha256)
        say(f"snapshot taken; {len(referenced):,} referenced blobs held")
        partial.mkdir(mode=0o700)  # it holds the secret and everyone's data
        destination = sqlite3.connect(partial / DATABASE)
        try:
            snapshot.backup(destination)
            # One self-contained file (the server turns WAL back on).
            destination.execute("PRAGMA journal_mode = DELETE")
            summary.counts = dict(
                zip(_COUNTED, destination.execute(_COUNT_ROWS).fetchone(), strict=True)
            )
            schema_version = int(destination.execute("PRAGMA user_version").fetchone()[0])
        finally:
            destination.close()
        snapshot.execute("COMMIT")
        _fsync(partial / DATABASE)
        summary.database_bytes = (partial / DATABASE).stat().st_size
        say(f"database copied: {_size(summary.database_bytes)}")

        copied = DiskBlobStore(partial / BLOBS)
        for sha256, _size_bytes in referenced:
            held = staging / sha256
            if sha256 in summary.missing:
                continue
            out = Path(copied.path(sha256))
            out.parent.mkdir(parents=True, exist_ok=True)
            summary.blob_bytes += _copy(held, out)
            summary.blob_count += 1
            held.unlink()
        say(f"blobs copied: {summary.blob_count:,}, {_size(summary.blob_bytes)}")

        secret_file = data_dir / KEY_FILE
        if secret_configured:
            summary.key_source = "configured (keep your settings: it is not in the backup)"
        elif secret_file.is_file():
            _copy(secret_file, partial / KEY_FILE)
            os.chmod(partial / KEY_FILE, 0o600)
            summary.key_source = "secret.key"
        else:
            summary.key_source = "none yet (the server makes one on its first start)"
        manifest = {
            "format": FORMAT,
            "gortc_version": __version__,
            "schema_version": schema_version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": {"file": DATABASE, "bytes": summary.database_bytes},
            "blobs": {"count": summary.blob_count, "bytes": summary.blob_bytes},
            "counts": summary.counts,
            "secret": KEY_FILE if summary.key_source == "secret.key" else None,
            "missing_blobs": summary.missing,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _fsync(partial / MANIFEST)
        os.replace(partial, target)
        _fsync_directory(target.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        snapshot.close()
        shutil.rmtree(staging, ignore_errors=True)
    say(f"backup written to {target} in {time.perf_counter() - started:.1f}s")
    return summary


def restore(
    source: Path,
    database_path: Path,
    data_dir: Path,
    *,
    say: Callable[[str], None],
) -> Summary:
    """Puts the backup at ``source`` into ``data_dir``, which must be empty
    (or not exist). Everything is verified — each blob's sha256 against its
    name, the database's integrity, every referenced blob present — in a
    staging directory first; on any failure nothing is left behind."""
    manifest = _read_manifest(source)
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(
            f"{data_dir} is not empty; restore only into an empty or new data directory",
            status=2,
        )
    if database_path.exists():
        raise BackupError(f"{database_path} already exists; restore refuses to replace it", 2)
    created = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = data_dir / f".restore-{secrets.token_hex(8)}"
    summary = Summary()
    try:
        staging.mkdir()
        database = staging / DATABASE
        summary.database_bytes = _copy(source / DATABASE, database)
        referenced = _check_database(database)
        say(f"database verified: {_size(summary.database_bytes)}")

        restored = DiskBlobStore(staging / BLOBS)
        present: set[str] = set()
        for blob in _blob_files(source / BLOBS):
            out = Path(restored.path(blob.name))
            out.parent.mkdir(parents=True, exist_ok=True)
            digest, size = _copy_hashing(blob, out)
            if digest != blob.name:
                raise BackupError(
                    f"the backup is damaged: {blob} does not match its sha256; nothing restored"
                )
            present.add(blob.name)
            summary.blob_count += 1
            summary.blob_bytes += size
        absent = sorted(set(referenced) - present - set(manifest.get("missing_blobs", [])))
        if absent:
            raise BackupError(
                f"the backup is incomplete: {len(absent)} referenced files are missing "
                f"(first: {absent[0]}); nothing restored"
            )
        if summary.blob_count != manifest["blobs"]["count"]:
            raise BackupError(
                f"the backup is incomplete: {summary.blob_count} files, its manifest says "
                f"{manifest['blobs']['count']}; nothing restored"
            )
        say(f"blobs verified: {summary.blob_count:,}, {_size(summary.blob_bytes)}")
        if manifest.get("secret"):
            _copy(source / KEY_FILE, staging / KEY_FILE)
            os.chmod(staging / KEY_FILE, 0o600)
            summary.key_source = "secret.key"
        else:
            summary.key_source = "not in the backup (configure the same secret as before)"

        # Verified: into place.
        if (staging / BLOBS).exists():
            os.replace(staging / BLOBS, data_dir / BLOBS)
        if (staging / KEY_FILE).exists():
            os.replace(staging / KEY_FILE, data_dir / KEY_FILE)
        database_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(database, database_path)
        _fsync_directory(data_dir)
        _fsync_directory(database_path.parent)
        summary.counts = manifest.get("counts", {})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            for leftover in (data_dir / BLOBS, data_dir / KEY_FILE):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return summary


def _read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{source} is not a gortc backup (no {MANIFEST})", status=2) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source / MANIFEST} is unreadable: {exc}", status=2) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(
            f"{source} is a backup format this gortc ({__version__}) does not know", status=2
        )
    if int(manifest.get("schema_version", 0)) > latest_version():
        raise BackupError(
            f"{source} was made by gortc {manifest.get('gortc_version')} with a newer schema; "
            f"restore it with that version or later",
            status=2,
        )
    if not (source / DATABASE).is_file():
        raise BackupError(f"the backup is damaged: {source / DATABASE} is missing")
    return manifest


def _check_database(path: Path) -> list[str]:
    """The referenced blobs, once ``PRAGMA integrity_check`` says ok."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchall()
            if verdict != [("ok",)]:
                raise BackupError(
                    f"the backup is damaged: its database fails the integrity check "
                    f"({verdict[0][0]}); nothing restored"
                )
            rows = conn.execute("SELECT sha256 FROM blobs WHERE refcount > 0").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the backup is damaged: its database: {exc}; nothing restored") from None
    return [row[0] for row in rows]


def _blob_files(root: Path) -> Iterator[Path]:
    if root.is_dir():
        yield from sorted(path for path in root.rglob("*") if path.is_file())


@contextlib.contextmanager
def _write_lock(database_path: Path) -> Iterator[None]:
    conn = sqlite3.connect(database_path, timeout=_LOCK_TIMEOUT_SECONDS, isolation_level=None)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise BackupError(f"cannot lock {database_path} for the snapshot: {exc}") from None
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


def _link_or_copy(source: Path, target: Path) -> bool:
    """Holds the blob at ``target``; False if it does not exist."""
    try:
        os.link(source, target)
    except FileNotFoundError:
        return False
    except OSError:  # another file system, or no hard links there
        try:
            shutil.copyfile(source, target)
        except FileNotFoundError:
            return False
    return True


def _remove_stale_staging(data_dir: Path, older_than_seconds: float = 86_400.0) -> None:
    # What a killed backup left behind; a day old, so never a running one's.
    cutoff = time.time() - older_than_seconds
    for entry in data_dir.glob(f"{_STAGING_PREFIX}*"):
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)


def _copy(source: Path, target: Path) -> int:
    return _copy_hashing(source, target)[1]


def _copy_hashing(source: Path, target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, target.open("xb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"
