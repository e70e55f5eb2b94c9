"""PostgreSQL schema versions: the numbered files in ``migrations/``.

A new database gets them all, in order; an older one the ones it lacks.
Unlike SQLite's, this sequence has no separate ``schema.sql``: it starts at
the schema SQLite had reached (0001), so there is one road only. The
version is the row of ``gortc_schema``; every migration of one run happens
in one transaction (PostgreSQL's DDL is transactional) under an advisory
lock, so instances starting together migrate once, one after the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from gortc.repositories.migrations import SchemaError

_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
# pg_advisory_xact_lock's key: any constant of ours ("gortc" in ASCII).
_MIGRATION_LOCK = 0x67_6F_72_74_63


@dataclass(frozen=True, slots=True)
class PostgresMigration:
    version: int
    name: str
    sql: str


def postgres_migrations() -> list[PostgresMigration]:
    folder = resources.files("gortc.repositories.postgres").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            found.append(PostgresMigration(int(match.group(1)), entry.name, text))
    found.sort(key=lambda migration: migration.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise SchemaError("PostgreSQL migration files are not numbered 0001, 0002, … without gaps")
    return found


async def migrate_postgres(
    conn: asyncpg.Connection[asyncpg.Record], *, target: int | None = None
) -> tuple[int, int]:
    """Brings the database to ``target`` (default: the latest); returns
    (version before, version after). Raises SchemaError when the database is
    newer than this gortc, belongs to something else, or a migration fails."""
    all_migrations = postgres_migrations()
    target = len(all_migrations) if target is None else target
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        current = await _version(conn, latest=len(all_migrations))
        for migration in all_migrations[current:target]:
            try:
                await conn.execute(migration.sql)
            except asyncpg.PostgresError as exc:
                raise SchemaError(f"PostgreSQL migration {migration.name} failed: {exc}") from exc
        if target > current:
            await conn.execute("UPDATE gortc_schema SET version = $1", target)
    return current, max(current, target)


async def _version(conn: asyncpg.Connection[asyncpg.Record], *, latest: int) -> int:
    exists = await conn.fetchval("SELECT to_regclass('gortc_schema') IS NOT NULL")
    if not exists:
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        )
        if tables:
            raise SchemaError("the database is not empty and is not a gortc database")
        await conn.execute("CREATE TABLE gortc_schema (version integer NOT NULL)")
        await conn.execute("INSERT INTO gortc_schema (version) VALUES (0)")
        return 0
    current = int(await conn.fetchval("SELECT version FROM gortc_schema"))
    if current > latest:
        raise SchemaError(
            f"the database has schema version {current}, newer than the {latest} this "
            "gortc knows; upgrade gortc or restore an older backup"
        )
    return current
