"""``python -m gortc`` as the operator runs it: real subprocesses on a real
data directory, checked against the HTTP app opened on the same data."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from gortc.app import create_app
from gortc.config import load_config
from gortc.repositories.migrations import latest_version, migrate
from tests.conftest import TEST_PASSWORD, ClientFactory, bearer, login, make_config

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NEW_PASSWORD = "a brand new passphrase"
# Only a hang ends here; a command normally takes well under a second.
COMMAND_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def clean_environment(**settings: str) -> dict[str, str]:
    """The test runner's environment without any GORTC_ variable, plus ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GORTC_")}
    env["GORTC_AUTH_BCRYPT_ROUNDS"] = "4"
    env.update(settings)
    return env


async def gortc(*args: str, env: Mapping[str, str] | None = None, stdin: str = "") -> Outcome:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gortc",
        *args,
        cwd=PROJECT_ROOT,
        env=dict(env if env is not None else clean_environment()),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            stdout, stderr = await process.communicate(stdin.encode())
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise
    assert process.returncode is not None
    return Outcome(process.returncode, stdout.decode(), stderr.decode())


def assert_ok(outcome: Outcome) -> None:
    assert outcome.returncode == 0, outcome
    assert "Traceback" not in outcome.stderr


def assert_one_line_error(outcome: Outcome, status: int, *fragments: str) -> None:
    assert outcome.returncode == status, outcome
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert len(outcome.stderr_lines) == 1, outcome.stderr
    [line] = outcome.stderr_lines
    assert line.startswith("gortc: ")
    for fragment in fragments:
        assert fragment in line


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


async def add_alice(data_dir: Path, *flags: str, env: Mapping[str, str] | None = None) -> None:
    outcome = await gortc(
        "user",
        "add",
        "alice",
        "alice@example.com",
        *flags,
        "--password-stdin",
        "--data-dir",
        str(data_dir),
        env=env,
        stdin=TEST_PASSWORD + "\n",
    )
    assert_ok(outcome)


def listed_flags(listing: str, username: str) -> set[str]:
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if fields[1] == username:
            return set(fields[3].split(",")) - {"-"}
    raise AssertionError(f"{username} not in the listing:\n{listing}")


async def test_user_add_creates_an_administrator_that_user_list_shows(data_dir: Path) -> None:
    added = await gortc(
        "user",
        "add",
        "Alice",
        "alice@example.com",
        "--admin",
        "--password-stdin",
        "--data-dir",
        str(data_dir),
        stdin=TEST_PASSWORD + "\n",
    )

    assert_ok(added)
    assert added.stdout.startswith("added alice (")
    assert "as administrator" in added.stdout
    listing = await gortc("user", "list", "--data-dir", str(data_dir))
    assert_ok(listing)
    assert listing.stdout.splitlines()[0].split() == ["ID", "USERNAME", "EMAIL", "FLAGS"]
    [row] = listing.stdout.splitlines()[1:]
    assert row.split()[1:3] == ["alice", "alice@example.com"]
    # The operator vouches for the address.
    assert listed_flags(listing.stdout, "alice") == {"admin", "verified"}


async def test_a_disabled_account_is_refused_until_enabled_again(
    data_dir: Path, aiohttp_client: ClientFactory
) -> None:
    await add_alice(data_dir)
    client = await aiohttp_client(create_app(make_config(data_dir)))
    tokens = await login(client, "alice")

    disabled = await gortc("user", "disable", "alice", "--data-dir", str(data_dir))

    assert_ok(disabled)
    assert "disabled alice" in disabled.stdout
    refused = await client.post(
        "/api/v1/auth/login", json={"login": "alice", "password": TEST_PASSWORD}
    )
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "account_disabled"
    # The server running beside the command sees its sign-ins end at once.
    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert me.status == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status == 401

    enabled = await gortc("user", "enable", "ALICE@example.com", "--data-dir", str(data_dir))

    assert_ok(enabled)
    assert "enabled alice" in enabled.stdout
    await login(client, "alice")


async def test_set_password_replaces_the_password_and_ends_sign_ins(
    data_dir: Path, aiohttp_client: ClientFactory
) -> None:
    await add_alice(data_dir)
    client = await aiohttp_client(create_app(make_config(data_dir)))
    tokens = await login(client, "alice")

    outcome = await gortc(
        "user",
        "set-password",
        "alice",
        "--password-stdin",
        "--data-dir",
        str(data_dir),
        stdin=NEW_PASSWORD + "\n",
    )

    assert_ok(outcome)
    assert "password of alice set" in outcome.stdout
    old = await client.post(
        "/api/v1/auth/login", json={"login": "alice", "password": TEST_PASSWORD}
    )
    assert old.status == 401
    await login(client, "alice", NEW_PASSWORD)
    assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status == 401


async def test_make_admin_revoke_takes_administration_away(data_dir: Path) -> None:
    await add_alice(data_dir, "--admin")

    revoked = await gortc("user", "make-admin", "alice", "--revoke", "--data-dir", str(data_dir))

    assert_ok(revoked)
    assert "alice is no longer an administrator" in revoked.stdout
    listing = await gortc("user", "list", "--data-dir", str(data_dir))
    assert listed_flags(listing.stdout, "alice") == {"verified"}


async def test_an_invite_code_from_the_command_line_lets_one_person_register(
    data_dir: Path, aiohttp_client: ClientFactory
) -> None:
    env = clean_environment(GORTC_AUTH_SIGNUP="invite")
    await add_alice(data_dir, "--admin", env=env)

    created = await gortc(
        "invite", "create", "--note", "for bob", "--data-dir", str(data_dir), env=env
    )

    assert_ok(created)
    [code] = created.stdout.split()
    assert "single use" in created.stderr
    # The app reads the same settings the command was given.
    config = load_config(environ=env).with_overrides(server={"data_dir": str(data_dir)})
    assert config.auth.signup == "invite"
    client = await aiohttp_client(create_app(config))

    def bob(name: str, **extra: str) -> dict[str, str]:
        return {"username": name, "email": f"{name}@example.com", "password": TEST_PASSWORD} | extra

    without = await client.post("/api/v1/auth/register", json=bob("bob"))
    assert without.status == 403
    assert (await without.json())["error"]["code"] == "invite_required"
    wrong = await client.post("/api/v1/auth/register", json=bob("bob", invite_code="x" * 43))
    assert wrong.status == 403
    assert (await wrong.json())["error"]["code"] == "invalid_invite"

    accepted = await client.post("/api/v1/auth/register", json=bob("bob", invite_code=code))

    assert accepted.status == 201, await accepted.text()
    bob_id = (await accepted.json())["id"]
    await login(client, "bob")
    again = await client.post("/api/v1/auth/register", json=bob("carol", invite_code=code))
    assert again.status == 403
    assert (await again.json())["error"]["code"] == "invalid_invite"
    listing = await gortc("invite", "list", "--data-dir", str(data_dir), env=env)
    assert_ok(listing)
    assert f"used by {bob_id}" in listing.stdout
    assert "for bob" in listing.stdout


async def test_migrate_creates_the_database_and_prints_its_version(data_dir: Path) -> None:
    latest = latest_version()

    first = await gortc("migrate", "--data-dir", str(data_dir))

    assert_ok(first)
    assert f"schema version 0 → {latest}" in first.stdout
    assert (data_dir / "gortc.db").is_file()
    second = await gortc("migrate", "--data-dir", str(data_dir))
    assert_ok(second)
    assert f"schema version {latest} is current" in second.stdout


async def test_migrate_brings_an_old_database_up_and_names_the_backup(data_dir: Path) -> None:
    migrate(data_dir / "gortc.db", target=1)

    outcome = await gortc("migrate", "--data-dir", str(data_dir))

    assert_ok(outcome)
    assert f"schema version 1 → {latest_version()}" in outcome.stdout
    assert str(data_dir / "gortc.db.v1.bak") in outcome.stdout
    assert (data_dir / "gortc.db.v1.bak").is_file()


COMMANDS = (["migrate"], ["serve"], ["user", "list"])


async def test_an_invalid_setting_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    env = clean_environment(GORTC_SERVER_PORT="notanumber")
    data_dirs = [tmp_path / f"data{n}" for n in range(len(COMMANDS))]

    outcomes = await asyncio.gather(
        *(
            gortc(*command, "--data-dir", str(data_dir), env=env)
            for command, data_dir in zip(COMMANDS, data_dirs, strict=True)
        )
    )

    for outcome, data_dir in zip(outcomes, data_dirs, strict=True):
        assert_one_line_error(outcome, 2, "server.port", "GORTC_SERVER_PORT")
        assert not data_dir.exists()


async def test_a_misspelt_setting_name_is_one_line_and_exit_status_2(data_dir: Path) -> None:
    env = clean_environment(GORTC_SERVER_PORTT="9000")

    outcome = await gortc("migrate", "--data-dir", str(data_dir), env=env)

    assert_one_line_error(outcome, 2, "GORTC_SERVER_PORTT")


async def test_a_database_from_a_newer_gortc_is_one_line_and_exit_status_2(
    tmp_path: Path,
) -> None:
    databases = []
    for n in range(len(COMMANDS)):
        database = tmp_path / f"data{n}" / "gortc.db"
        database.parent.mkdir()
        conn = sqlite3.connect(database)
        conn.execute("PRAGMA user_version = 999")
        conn.close()
        databases.append((database, database.read_bytes()))
    # Port 0: should the refusal ever fail, serve must not clash with anything.
    env = clean_environment(GORTC_SERVER_PORT="0")

    outcomes = await asyncio.gather(
        *(
            gortc(*command, "--data-dir", str(database.parent), env=env)
            for command, (database, _) in zip(COMMANDS, databases, strict=True)
        )
    )

    for outcome, (database, before) in zip(outcomes, databases, strict=True):
        assert_one_line_error(outcome, 2, "999", "newer")
        assert database.read_bytes() == before


async def test_a_database_file_that_is_not_sqlite_is_one_line_and_exit_status_2(
    data_dir: Path,
) -> None:
    data_dir.mkdir()
    (data_dir / "gortc.db").write_text("not a database\n" * 100)

    outcome = await gortc("migrate", "--data-dir", str(data_dir))

    assert_one_line_error(outcome, 2, "gortc.db")


async def test_disabling_an_unknown_user_is_a_clear_message_and_exit_status_1(
    data_dir: Path,
) -> None:
    outcome = await gortc("user", "disable", "nobody", "--data-dir", str(data_dir))

    assert_one_line_error(outcome, 1, "no user 'nobody'")
    assert outcome.stdout == ""


async def test_an_empty_secret_file_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "secret.key").write_text("")

    outcome = await gortc("serve", "--port", "0", "--data-dir", str(data_dir))

    assert outcome.returncode == 2
    assert "secret.key holds no usable secret" in outcome.stderr
    assert "Traceback" not in outcome.stderr
