"""Schema versions on real SQLite files: both roads to the latest schema meet,
data survives the trip, and databases gortc cannot use are refused untouched."""

from __future__ import annotations

import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gortc.repositories import migrations as migrations_module
from gortc.repositories.database import Database
from gortc.repositories.migrations import Migration, SchemaError, latest_version, migrate
from gortc.repositories.unit_of_work import SqliteUnitOfWork
from tests.conftest import dump_database, table_names


def describe_schema(path: Path) -> dict[str, Any]:
    """Tables with their columns, indexes and foreign keys, as PRAGMAs report them."""
    conn = sqlite3.connect(path)
    try:
        tables = table_names(conn)
        described: dict[str, Any] = {}
        for table in tables:
            # table_list tells WITHOUT ROWID (wr) and STRICT tables apart.
            kind = conn.execute(
                "SELECT type, ncol, wr, strict FROM pragma_table_list(?)", (table,)
            ).fetchone()
            columns = [
                (name, type_, notnull, default, pk)
                for _, name, type_, notnull, default, pk in conn.execute(
                    "SELECT * FROM pragma_table_info(?)", (table,)
                )
            ]
            indexes = sorted(
                (
                    name,
                    unique,
                    origin,
                    partial,
                    [
                        tuple(row)
                        for row in conn.execute("SELECT * FROM pragma_index_info(?)", (name,))
                    ],
                )
                for _, name, unique, origin, partial in conn.execute(
                    "SELECT * FROM pragma_index_list(?)", (table,)
                )
            )
            foreign_keys = sorted(
                tuple(row[2:])  # (table, from, to, on_update, on_delete, match)
                for row in conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,))
            )
            described[table] = {
                "kind": tuple(kind),
                "columns": columns,
                "indexes": indexes,
                "foreign_keys": foreign_keys,
            }
        return described
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_there_is_more_than_one_migration() -> None:
    # The step-by-step comparison below means little with a single migration.
    assert latest_version() >= 2


def test_migrating_step_by_step_ends_at_the_schema_of_a_fresh_database(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    stepped = tmp_path / "stepped.db"
    latest = latest_version()

    result = migrate(fresh)
    assert (result.from_version, result.to_version, result.backup) == (0, latest, None)
    for target in range(1, latest):
        assert migrate(stepped, target=target).to_version == target
        assert user_version(stepped) == target
    assert migrate(stepped).to_version == latest

    assert user_version(stepped) == user_version(fresh) == latest
    fresh_schema = describe_schema(fresh)
    assert set(fresh_schema) >= {"users", "sessions", "refresh_tokens", "blobs", "invites"}
    stepped_schema = describe_schema(stepped)
    assert stepped_schema.keys() == fresh_schema.keys()
    for table, description in fresh_schema.items():
        assert stepped_schema[table] == description, table


def test_migrating_a_current_database_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "gortc.db"
    migrate(path)
    before = path.read_bytes()

    result = migrate(path)

    assert (result.from_version, result.to_version, result.backup) == (
        latest_version(),
        latest_version(),
        None,
    )
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gortc.db"]


_V1_ROWS = [
    "INSERT INTO users (id, username, email, display_name, password_hash, is_admin, "
    "email_verified, disabled_at, created_at, updated_at) VALUES ('01HUSER', 'alice', "
    "'Alice@example.com', 'Alice', '$2b$04$hash', 1, 1, NULL, "
    "'2024-01-02T03:04:05.000000Z', '2024-01-02T03:04:05.000000Z')",
    "INSERT INTO sessions (id, user_id, kind, created_at, expires_at, revoked_at, "
    "user_agent, ip) VALUES ('01HSESSION', '01HUSER', 'token', "
    "'2024-01-02T03:04:05.000000Z', '2099-01-01T00:00:00.000000Z', NULL, 'curl', '10.0.0.1')",
    "INSERT INTO refresh_tokens (token_hash, session_id, access_jti, access_expires_at, "
    "created_at, used_at) VALUES ('ab12', '01HSESSION', '01HJTI', "
    "'2099-01-01T00:00:00.000000Z', '2024-01-02T03:04:05.000000Z', NULL)",
    "INSERT INTO revoked_tokens (jti, expires_at) VALUES ('01HOLDJTI', "
    "'2099-01-01T00:00:00.000000Z')",
]


def _database_at_version_1(path: Path) -> None:
    migrate(path, target=1)
    conn = sqlite3.connect(path)
    try:
        with conn:
            for statement in _V1_ROWS:
                conn.execute(statement)
    finally:
        conn.close()


async def test_rows_written_at_version_1_survive_the_migration_to_latest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gortc.db"
    _database_at_version_1(path)
    rows_at_v1 = dump_database(path)

    result = migrate(path)

    assert (result.from_version, result.to_version) == (1, latest_version())
    migrated = dump_database(path)
    # Every old row is still there; users gained two empty avatar columns.
    users = [row for row in migrated if row[0] == "users"]
    assert users == [(*row, None, None) for row in rows_at_v1 if row[0] == "users"]
    assert [row for row in migrated if row[0] != "users"] == [
        row for row in rows_at_v1 if row[0] != "users"
    ]

    # And the running code reads them.
    db = Database(path)
    await db.open()
    try:
        async with SqliteUnitOfWork(db).reading() as repos:
            user = await repos.users.get("01HUSER")
            by_email = await repos.users.get_by_login("alice@EXAMPLE.com")
            session = await repos.sessions.get("01HSESSION")
        assert user is not None and by_email == user
        assert (user.username, user.is_admin, user.avatar_sha256) == ("alice", True, None)
        assert session is not None and session.user_agent == "curl"
    finally:
        await db.close()


def test_the_migration_writes_a_backup_of_the_old_version_beside_the_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gortc.db"
    _database_at_version_1(path)
    rows_at_v1 = dump_database(path)
    schema_at_v1 = describe_schema(path)

    result = migrate(path)

    backup = tmp_path / "gortc.db.v1.bak"
    assert result.backup == backup
    assert backup.is_file()
    assert user_version(backup) == 1
    assert describe_schema(backup) == schema_at_v1
    assert dump_database(backup) == rows_at_v1


def _message_without_path(error: pytest.ExceptionInfo[SchemaError], path: Path) -> str:
    # The path may itself contain digits; the versions must be named apart from it.
    return str(error.value).replace(str(path), "<db>")


def test_a_database_from_a_newer_gortc_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "gortc.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future_things (id INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO future_things VALUES (42)")
    conn.execute(f"PRAGMA user_version = {latest_version() + 7}")
    conn.commit()
    conn.close()
    before = path.read_bytes()

    with pytest.raises(SchemaError) as error:
        migrate(path)

    message = _message_without_path(error, path)
    assert re.search(rf"\b{latest_version() + 7}\b", message), message
    assert re.search(rf"\b{latest_version()}\b", message), message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gortc.db"]


async def test_the_database_refuses_to_open_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "gortc.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = path.read_bytes()

    db = Database(path)
    with pytest.raises(SchemaError, match="999"):
        await db.open()

    assert path.read_bytes() == before
    with pytest.raises(RuntimeError):
        async with db.read():
            pass


def test_a_sqlite_file_of_another_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('soup')")
    conn.commit()
    conn.close()
    before = path.read_bytes()

    with pytest.raises(SchemaError, match="not a gortc database"):
        migrate(path)

    assert path.read_bytes() == before
    assert user_version(path) == 0
    assert list(describe_schema(path)) == ["recipes"]


def test_a_file_that_is_not_sqlite_at_all_is_refused_with_a_schema_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gortc.db"
    path.write_text("these are my notes, not a database\n" * 40)
    before = path.read_bytes()

    try:
        with pytest.raises(SchemaError):
            migrate(path)
    finally:
        assert path.read_bytes() == before


def test_a_failing_migration_rolls_back_completely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gortc.db"
    _database_at_version_1(path)
    schema_before = describe_schema(path)
    rows_before = dump_database(path)

    first = migrations_module.migrations()[0]
    broken = Migration(
        2,
        "0002_broken.sql",
        "CREATE TABLE half_done (id INTEGER PRIMARY KEY);\n"
        "ALTER TABLE users ADD COLUMN nickname TEXT;\n"
        "UPDATE users SET display_name = 'changed';\n"
        "INSERT INTO no_such_table VALUES (1);\n",
    )
    monkeypatch.setattr(migrations_module, "migrations", lambda: [first, broken])

    with pytest.raises(SchemaError, match="version 2") as error:
        migrate(path)

    assert "no_such_table" in str(error.value)
    assert user_version(path) == 1
    assert describe_schema(path) == schema_before
    assert dump_database(path) == rows_before
    # The database is still usable: a fixed migration applies afterwards.
    fixed = Migration(2, "0002_fixed.sql", "ALTER TABLE users ADD COLUMN nickname TEXT;")
    monkeypatch.setattr(migrations_module, "migrations", lambda: [first, fixed])
    assert migrate(path).to_version == 2
    assert user_version(path) == 2
    assert "nickname" in [column[0] for column in describe_schema(path)["users"]["columns"]]


def test_two_processes_migrating_a_fresh_database_at_once_both_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # E.g. `gortc serve` and `gortc user add` started together by a setup script.
    path = tmp_path / "gortc.db"
    real_connect = sqlite3.connect
    arrived = threading.Semaphore(0)

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)

        def trace(statement: str) -> None:
            if statement.lstrip().upper().startswith("BEGIN"):
                arrived.release()

        conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    # Another writer holds the lock until both migrations are about to take it,
    # which makes the interleaving of two real processes certain here.
    blocker = real_connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(migrate, path) for _ in range(2)]
        for _ in runs:
            # Bounded: a migrate that no longer begins with BEGIN goes on anyway.
            arrived.acquire(timeout=10)
        blocker.execute("ROLLBACK")
        blocker.close()
        errors = [run.exception(timeout=30) for run in runs]

    assert errors == [None, None]
    assert user_version(path) == latest_version()
