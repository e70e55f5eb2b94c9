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

from gortc.entities.name_search import search_key

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
    """Brings the database at ``path`` to ``target`` (default: the latest),
    in one transaction: it is either fully upgraded or left as it was.

    Raises SchemaError when the database is newer than this gortc, is not a
    gortc database, is not SQLite at all, or a migration fails.
    """
    all_migrations = migrations()
    target = len(all_migrations) if target is None else target
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        try:
            _register_functions(conn)
            return _migrate(conn, path, all_migrations, target)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise SchemaError(f"{path} cannot be used as a gortc database: {exc}") from None


def _migrate(
    conn: sqlite3.Connection, path: Path, all_migrations: list[Migration], target: int
) -> MigrationResult:
    current = _usable_version(conn, path, len(all_migrations))
    if current >= target:
        return MigrationResult(current, current, None)
    backup = None
    if current > 0:
        # Before taking the write lock: a backup from a connection that
        # holds a write transaction never completes.
        backup = path.with_name(f"{path.name}.v{current}.bak")
        with sqlite3.connect(backup) as copy:
            conn.backup(copy)
        copy.close()
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process (a second `gortc` starting at the same moment) may
        # have migrated while we waited for the lock: decide again, locked.
        current = _usable_version(conn, path, len(all_migrations))
        if current == 0 and target == len(all_migrations):
            steps = [(target, schema_sql())]
        else:
            steps = [(m.version, m.sql) for m in all_migrations[current:target]]
        for version, sql in steps:
            try:
                for statement in _statements(sql):
                    conn.execute(statement)
            except sqlite3.Error as exc:
                raise SchemaError(f"migration to version {version} failed: {exc}") from exc
        conn.execute(f"PRAGMA user_version = {max(current, target)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if not steps and backup is not None:
        backup.unlink(missing_ok=True)
        backup = None
    return MigrationResult(current, max(current, target), backup)


def _register_functions(conn: sqlite3.Connection) -> None:
    """Python functions that migrations call to fill new tables, where SQL
    alone cannot compute the values (0006: people's search keys)."""
    conn.create_function(
        "gortc_search_key", 1, lambda text: search_key(text or ""), deterministic=True
    )


def _usable_version(conn: sqlite3.Connection, path: Path, latest: int) -> int:
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > latest:
        raise SchemaError(
            f"the database {path} has schema version {current}, newer than the "
            f"{latest} this gortc knows; upgrade gortc or restore an older backup"
        )
    if current == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
        if tables.fetchone()[0]:
            raise SchemaError(f"{path} is not a gortc database (it has no schema version)")
    return current


def _statements(script: str) -> list[str]:
    """The statements of an SQL script, split where SQLite says one ends
    (executescript would commit the transaction we run them in)."""
    statements = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        statements.append(buffer.strip())
    return statements
