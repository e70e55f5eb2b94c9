"""``python -m gortc`` / ``gortc``: serve, migrate, reindex, and operator commands.

Problems the operator can fix (a bad setting, a database from a newer
gortc) are one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning

from gortc import __version__
from gortc.config import Config, ConfigError, load_config
from gortc.entities.errors import DomainError
from gortc.logs import configure_logging
from gortc.repositories.migrations import SchemaError, latest_version, migrate

log = logging.getLogger("gortc")

EXIT_USAGE = 2
EXIT_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gortc",
        description="gortc: self-hosted chat, files, video calls and live streaming.",
    )
    parser.add_argument("--version", action="version", version=f"gortc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_common(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--config", metavar="PATH", help="TOML settings file (see config.toml)")
        sub.add_argument("--data-dir", metavar="DIR", help="where the server keeps its data")
        return sub

    serve = with_common(commands.add_parser("serve", help="run the server"))
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    with_common(commands.add_parser("migrate", help="bring the database schema up to date"))
    with_common(
        commands.add_parser(
            "reindex",
            help="rebuild the search indexes from the stored data (with the server stopped)",
        )
    )

    user = commands.add_parser("user", help="manage accounts (works beside a running server)")
    user_commands = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = with_common(user_commands.add_parser("add", help="create an account"))
    add.add_argument("username")
    add.add_argument("email")
    add.add_argument("--admin", action="store_true", help="make it an administrator")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    listing = with_common(user_commands.add_parser("list", help="list accounts"))
    listing.add_argument("--limit", type=int, default=1000)
    for action, text in (
        ("disable", "disable an account and end its sign-ins"),
        ("enable", "re-enable a disabled account"),
    ):
        sub = with_common(user_commands.add_parser(action, help=text))
        sub.add_argument("login", help="username or email")
    password = with_common(
        user_commands.add_parser("set-password", help="set a password, ending all sign-ins")
    )
    password.add_argument("login", help="username or email")
    password.add_argument("--password-stdin", action="store_true")
    make_admin = with_common(user_commands.add_parser("make-admin", help="grant administration"))
    make_admin.add_argument("login", help="username or email")
    make_admin.add_argument("--revoke", action="store_true", help="take administration away")

    invite = commands.add_parser("invite", help="invite codes for sign-up policy 'invite'")
    invite_commands = invite.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = with_common(invite_commands.add_parser("create", help="make a single-use code"))
    create.add_argument("--note", default="", help="who it is for")
    with_common(invite_commands.add_parser("list", help="list invite codes"))

    backup = with_common(
        commands.add_parser(
            "backup", help="copy a running server's database, files and secret to PATH"
        )
    )
    backup.add_argument("path", metavar="PATH", help="the backup directory to create")
    restore = with_common(
        commands.add_parser("restore", help="put a backup back into an empty data directory")
    )
    restore.add_argument("path", metavar="PATH", help="a directory made by 'gortc backup'")
    move = with_common(
        commands.add_parser(
            "move-to-postgres",
            help="copy this SQLite deployment into an empty PostgreSQL database (server stopped)",
        )
    )
    move.add_argument(
        "--to", required=True, metavar="URL", help="postgresql://user:password@host:port/dbname"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter() - _seconds_since_process_start()
    # aiohttp-session (third party) stores its state under plain string keys.
    warnings.filterwarnings("ignore", category=NotAppKeyWarning, module="aiohttp_session")
    args = build_parser().parse_args(argv)
    try:
        config = _config_from(args)
    except ConfigError as exc:
        print(f"gortc: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.server.log_level, config.server.log_format)
    try:
        if args.command == "serve":
            with asyncio.Runner(loop_factory=_loop_factory(config)) as runner:
                return runner.run(_run_server(config, started))
        if args.command == "migrate":
            return _migrate(config)
        if args.command == "reindex":
            return asyncio.run(_reindex(config))
        if args.command in ("backup", "restore"):
            return _backup_or_restore(config, args)
        if args.command == "move-to-postgres":
            return asyncio.run(_move_to_postgres(config, args.to))
        return asyncio.run(_operator_command(config, args))
    except (ConfigError, SchemaError) as exc:
        print(f"gortc: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _seconds_since_process_start() -> float:
    """How long this process has run, imports included (Linux); else 0."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            # Field 22, after the parenthesised command name: start in ticks.
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            since_boot = float(uptime.read().split()[0])
        return max(0.0, since_boot - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _config_from(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    server: dict[str, Any] = {}
    if getattr(args, "host", None) is not None:
        server["host"] = args.host
    if getattr(args, "port", None) is not None:
        server["port"] = args.port
    if args.data_dir is not None:
        server["data_dir"] = args.data_dir
    return config.with_overrides(server=server) if server else config


def _migrate(config: Config) -> int:
    if config.database.url:
        return asyncio.run(_migrate_postgres(config.database.url))
    result = migrate(config.database_path)
    if result.from_version == result.to_version:
        print(f"{config.database_path}: schema version {result.to_version} is current")
    else:
        print(
            f"{config.database_path}: schema version {result.from_version} → {result.to_version}"
            + (f" (backup: {result.backup})" if result.backup else "")
        )
    return 0


async def _migrate_postgres(url: str) -> int:
    from gortc.repositories.postgres.database import PostgresDatabase, describe

    database = PostgresDatabase(url, min_connections=1, max_connections=1)
    before, after = await database.migrate()
    where = describe(url)
    if before == after:
        print(f"{where}: schema version {after} is current")
    else:
        print(f"{where}: schema version {before} → {after}")
    return 0


def _backup_or_restore(config: Config, args: argparse.Namespace) -> int:
    import sqlite3
    from pathlib import Path

    from gortc.repositories import backup

    if config.database.url:
        # PostgreSQL has its own tools, which do this better than gortc could.
        print(
            f"gortc: {args.command} copies SQLite deployments; this one's database is "
            "PostgreSQL: use pg_dump / pg_restore for it, and copy the data directory "
            "(files, secret) beside it (docs/deploy.md, Backups)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if config.storage.url:
        # So has the object store: a copy of the database alone would name
        # files the backup does not hold.
        print(
            f"gortc: {args.command} copies deployments whose files are on disk; this one's "
            f"are in the object store {config.storage.url}: back the bucket up with the "
            "store's own tools (versioning, replication, rclone / aws s3 sync) beside the "
            "database (docs/deploy.md, Backups)",
            file=sys.stderr,
        )
        return EXIT_USAGE

    def say(line: str) -> None:
        print(f"gortc {args.command}: {line}", file=sys.stderr, flush=True)

    try:
        if args.command == "backup":
            summary = backup.backup(
                config.database_path,
                config.data_path,
                Path(args.path),
                secret_configured=bool(config.auth.secret),
                say=say,
            )
        else:
            summary = backup.restore(
                Path(args.path), config.database_path, config.data_path, say=say
            )
    except backup.BackupError as exc:
        print(f"gortc: {exc.message}", file=sys.stderr)
        return exc.status
    except (OSError, sqlite3.Error) as exc:  # a full disk, a permission: nothing kept
        print(f"gortc: {args.command} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    say(summary.describe())
    if summary.missing:
        say(
            f"WARNING: {len(summary.missing)} referenced files were already missing from "
            f"{config.data_path / 'blobs'} (listed in the manifest); the backup lacks them"
        )
        return EXIT_FAILED
    if args.command == "restore":
        say(f"restored into {config.data_path}; start the server on it")
    return 0


async def _move_to_postgres(config: Config, url: str) -> int:
    import sqlite3
    from urllib.parse import urlsplit

    import asyncpg

    from gortc.repositories.postgres.database import PostgresDatabase, describe
    from gortc.repositories.postgres.move import MoveError, move_to_postgres

    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        print("gortc: --to must be a postgresql:// URL", file=sys.stderr)
        return EXIT_USAGE
    if config.database.url:
        print("gortc: this deployment already runs on PostgreSQL", file=sys.stderr)
        return EXIT_USAGE

    def say(line: str) -> None:
        print(f"gortc move-to-postgres: {line}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    try:
        report = await move_to_postgres(
            config.database_path, PostgresDatabase(url, max_connections=2), say=say
        )
    except MoveError as exc:
        print(f"gortc: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (OSError, sqlite3.Error, asyncpg.PostgresError) as exc:
        # Nothing was kept: the copy is one transaction.
        print(f"gortc: the move failed, nothing was kept: {exc}", file=sys.stderr)
        return EXIT_FAILED
    say(
        f"moved {report.describe()} to {describe(url)} in {time.perf_counter() - started:.1f}s; "
        "every table counted and checked. Set GORTC_DATABASE_URL (database.url) and keep "
        f"{config.data_path} (files, secret) for the instances that serve from it"
    )
    return 0


async def _reindex(config: Config) -> int:
    if config.database.url:
        return await _reindex_postgres(config.database.url)
    from gortc.progress import ProgressBar
    from gortc.repositories.database import Database
    from gortc.repositories.search_indexes import rebuild_all

    bars: list[ProgressBar] = []

    def progress_for(name: str) -> Callable[[int, int], None]:
        if bars:
            bars[-1].finish()
        bars.append(ProgressBar(sys.stderr, name))
        return bars[-1].update

    database = Database(config.database_path, readers=1)
    await database.open()  # migrates first, so the indexes exist
    try:
        started = time.perf_counter()
        indexed = await rebuild_all(database, progress_for)
        if bars:
            bars[-1].finish()
    finally:
        await database.close()
    summary = ", ".join(f"{count:,} {name}" for name, count in indexed.items())
    print(f"{config.database_path}: reindexed {summary} in {time.perf_counter() - started:.1f}s")
    return 0


async def _reindex_postgres(url: str) -> int:
    from gortc.repositories.postgres.database import PostgresDatabase, describe
    from gortc.repositories.postgres.search_columns import rewrite_all

    database = PostgresDatabase(url, min_connections=1, max_connections=1)
    await database.open()
    try:
        started = time.perf_counter()
        counts = await rewrite_all(database)
    finally:
        await database.close()
    summary = ", ".join(f"{count:,} {name}" for name, count in counts.items())
    print(f"{describe(url)}: reindexed {summary} in {time.perf_counter() - started:.1f}s")
    return 0


async def _run_server(config: Config, started: float) -> int:
    from gortc.app import create_app  # the heavy imports only for serving

    runner = web.AppRunner(
        create_app(config),
        access_log=None,
        shutdown_timeout=config.server.shutdown_timeout,
        # aiohttp closes a connection still waiting for a whole request head
        # this long after it opened or after its last answer: the header
        # timeout against slowloris clients (and the idle keep-alive one).
        keepalive_timeout=config.server.header_timeout_seconds,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.server.host, config.server.port)
        try:
            await site.start()
        except OSError as exc:
            print(
                f"gortc: cannot listen on {config.server.host}:{config.server.port}: "
                f"{exc.strerror}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        host, port = runner.addresses[0][:2]
        log.info(
            "gortc %s ready on http://%s:%d in %.2fs (data in %s)",
            __version__,
            host,
            port,
            time.perf_counter() - started,
            config.data_path.resolve(),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("shutting down: finishing requests in flight")
    finally:
        # Stops listening, closes WebSockets (on_shutdown), waits for
        # handlers up to shutdown_timeout, then closes the database.
        await runner.cleanup()
    log.info("stopped")
    return 0


async def _operator_command(config: Config, args: argparse.Namespace) -> int:
    from gortc.app import build_core

    core = build_core(config)
    await core.open()
    try:
        handler = _OPERATIONS[(args.command, args.action)]
        await handler(core, args)
        return 0
    except DomainError as exc:
        print(f"gortc: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await core.close()


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise DomainError("the two passwords differ", code="password_mismatch")
    return first


async def _user_add(core: Any, args: argparse.Namespace) -> None:
    user = await core.admin.add_user(
        username=args.username, email=args.email, password=_read_password(args), admin=args.admin
    )
    print(f"added {user.username} ({user.id}){' as administrator' if user.is_admin else ''}")


async def _user_list(core: Any, args: argparse.Namespace) -> None:
    users = await core.admin.list_users(limit=args.limit)
    print(f"{'ID':26}  {'USERNAME':32}  {'EMAIL':32}  FLAGS")
    for user in users:
        flags = ",".join(
            name
            for name, on in (
                ("admin", user.is_admin),
                ("verified", user.email_verified),
                ("disabled", user.is_disabled),
            )
            if on
        )
        print(f"{user.id:26}  {user.username:32}  {user.email:32}  {flags or '-'}")


async def _user_disable(core: Any, args: argparse.Namespace) -> None:
    user = await core.admin.set_disabled(args.login, True)
    print(f"disabled {user.username}; its sign-ins have ended")


async def _user_enable(core: Any, args: argparse.Namespace) -> None:
    user = await core.admin.set_disabled(args.login, False)
    print(f"enabled {user.username}")


async def _user_set_password(core: Any, args: argparse.Namespace) -> None:
    user = await core.admin.set_password(args.login, _read_password(args))
    print(f"password of {user.username} set; its sign-ins have ended")


async def _user_make_admin(core: Any, args: argparse.Namespace) -> None:
    user = await core.admin.set_admin(args.login, not args.revoke)
    print(f"{user.username} is {'now' if user.is_admin else 'no longer'} an administrator")


async def _invite_create(core: Any, args: argparse.Namespace) -> None:
    created = await core.admin.create_invite(None, args.note)
    print(created.code)
    print(f"(single use, expires {created.invite.expires_at:%Y-%m-%d %H:%M} UTC)", file=sys.stderr)


async def _invite_list(core: Any, args: argparse.Namespace) -> None:
    for invite in await core.admin.list_invites(None):
        state = f"used by {invite.used_by}" if invite.used_at else "unused"
        print(f"{invite.id}  {invite.expires_at:%Y-%m-%d %H:%M}  {state:40}  {invite.note}")


_OPERATIONS: dict[tuple[str, str], Callable[[Any, argparse.Namespace], Awaitable[None]]] = {
    ("user", "add"): _user_add,
    ("user", "list"): _user_list,
    ("user", "disable"): _user_disable,
    ("user", "enable"): _user_enable,
    ("user", "set-password"): _user_set_password,
    ("user", "make-admin"): _user_make_admin,
    ("invite", "create"): _invite_create,
    ("invite", "list"): _invite_list,
}

__all__ = ["latest_version", "main"]


def _loop_factory(config: Config) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if config.server.event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None
