"""``python -m gortc`` on a PostgreSQL database: the operator's commands
work the same, and the server they prepare serves from it."""

from __future__ import annotations

from pathlib import Path

from gortc.app import create_app
from gortc.repositories.postgres.migrations import postgres_migrations
from tests.conftest import ClientFactory, bearer, login, make_config
from tests.integration.test_cli import clean_environment, gortc
from tests.postgres_server import PostgresServer

LATEST = len(postgres_migrations())


async def test_migrate_user_reindex_and_backup_on_postgresql(
    postgres_server: PostgresServer,
    empty_postgres_url: str,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
) -> None:
    # With a password in it (the test server trusts loopback and ignores
    # it): no message may show it.
    url = empty_postgres_url.replace("postgres@", "postgres:pa55-w0rd-xyz@")
    env = clean_environment(GORTC_DATABASE_URL=url, GORTC_SERVER_DATA_DIR=str(tmp_path / "data"))

    first = await gortc("migrate", env=env)
    again = await gortc("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith(f"schema version 0 → {LATEST}")
    assert again.stdout.strip().endswith(f"schema version {LATEST} is current")
    assert "pa55-w0rd-xyz" not in first.stdout + first.stderr

    added = await gortc(
        "user", "add", "olga", "olga@example.com", env=env, stdin="a passphrase ok\n"
    )
    assert added.returncode == 0, added.stderr
    listed = await gortc("user", "list", env=env)
    assert "olga" in listed.stdout

    reindexed = await gortc("reindex", env=env)
    assert reindexed.returncode == 0, reindexed.stderr
    assert "1 people" in reindexed.stdout

    refused = await gortc("backup", str(tmp_path / "copy"), env=env)
    assert refused.returncode == 2
    assert "pg_dump" in refused.stderr and "pa55-w0rd-xyz" not in refused.stderr
    assert not (tmp_path / "copy").exists()

    # The server on the same database knows the account the CLI made.
    config = make_config(tmp_path / "data", database={"url": empty_postgres_url})
    client = await aiohttp_client(create_app(config))
    tokens = await login(client, "olga", "a passphrase ok")
    me = await (await client.get("/api/v1/users/me", headers=bearer(tokens))).json()
    assert me["username"] == "olga"
    found = await client.get("/api/v1/users/search", params={"q": "olg"}, headers=bearer(tokens))
    assert [user["username"] for user in (await found.json())["items"]] == ["olga"]


async def test_a_database_that_is_not_gortcs_is_refused(
    postgres_server: PostgresServer, empty_postgres_url: str, tmp_path: Path
) -> None:
    database = empty_postgres_url.rsplit("/", 1)[1]
    postgres_server.psql("CREATE TABLE invoices (id int)", database)
    env = clean_environment(GORTC_DATABASE_URL=empty_postgres_url)

    outcome = await gortc("migrate", env=env)

    assert outcome.returncode == 2
    assert "not empty and is not a gortc database" in outcome.stderr
    assert (
        postgres_server.psql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database
        ).strip()
        == "1"
    )
