"""Schema versions: create a new database from ``schema.sql``, bring an older
one up to date with the numbered files in ``migrations/``.

The version lives in ``PRAGMA user_version``. Migrations run with the
standard library's sqlite3 before the server accepts connections (and from
``gortc migrate``), each in its own transaction, after a backup copy of the
database has been written beside it.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


class SchemaError(Exception):
    """The database cannot be used by this version of gortc."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def schema_sql() -> str:
    return resources.files("gortc").joinpath("schema.sql").read_text(encoding="utf-8")


def migrations() -> list[Migration]:
    folder = resources.files("gortc.repositories").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append(
                Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda migration: migration.version)
    expected = list(range(1, len(found) + 1))
    if [migration.version for migration in found] != expected:
        raise SchemaError("migration files are not numbered 0001, 0002, … without gaps")
    return found


def latest_version() -> int:
    return len(migrations())


@dataclass(frozen=True, slots=True)
class MigrationResult:
    from_version: int
    to_version: int
    backup: Path | None


def migrate(path: Path, *, target: int | None = None) -> MigrationResult:
    """Brings the database at ``path`` to ``target`` (default: the latest).

    Raises SchemaError when the database is newer than this gortc, or is not
    a gortc database at all.
    """
    all_migrations = migrations()
    latest = len(all_migrations)
    target = latest if target is None else target
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > latest:
            raise SchemaError(
                f"the database {path} has schema version {current}, newer than the "
                f"{latest} this gortc knows; upgrade gortc or restore an older backup"
            )
        if current == 0:
            tables = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
            if tables:
                raise SchemaError(f"{path} is not a gortc database (it has no schema version)")
            if target == latest:
                _run_script(conn, schema_sql(), latest)
                return MigrationResult(0, latest, None)
        if current >= target:
            return MigrationResult(current, current, None)
        backup = None
        if current > 0:
            backup = path.with_name(f"{path.name}.v{current}.bak")
            with sqlite3.connect(backup) as copy:
                conn.backup(copy)
            copy.close()
        for migration in all_migrations[current:target]:
            _run_script(conn, migration.sql, migration.version)
        return MigrationResult(current, target, backup)
    finally:
        conn.close()


def _run_script(conn: sqlite3.Connection, sql: str, version: int) -> None:
    # executescript commits first, so the transaction is part of the script;
    # a failing statement leaves it open, and the rollback undoes it whole.
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {version};\nCOMMIT;")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise SchemaError(f"migration to version {version} failed: {exc}") from exc
