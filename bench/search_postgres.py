"""Personal file search at 100,000 files: PostgreSQL against SQLite, the same
rows, the same queries, in one run.

1. Seeds each engine straight through gortc's repositories (no HTTP): one
   user ("me") owns --files files (100,000 by default) and --other-users
   others (50) own --others files between them (half of --files), drawn from the same vocabulary
   (bench/search/corpus.py), so every query must leave other owners' hits
   out. Each batch of --batch files is one ``UnitOfWork.transaction()``:
   ``blobs.acquire`` and ``files.add_many`` (rows, names and text indexed),
   what an upload does once its bytes are stored; no blob bytes are written,
   search never reads them. The corpus is generated once, batch by batch,
   and each batch goes to both engines (seeding time is timed per engine).
2. Times the personal search use case (``FileService.search``: the query
   parsed, the owner's files searched, a page of 20) for the fixed query mix
   of bench/search_bench.py (common word, common word for the biggest
   owner, rare word, AND, OR, NOT, phrase, prefix; --per-kind of each, words
   from "me"'s files): each query once cold, then twice warm, its lower
   warm time (--budget seconds per kind at most, once 3 of the kind are
   timed: an engine that takes seconds a query still finishes, and the
   report says how many were timed). Then the same queries as one of the
   other owners (a small user whose index shares its tables with 100,000
   files of mine).
3. Prints p50/p95 per kind and overall per engine, and PostgreSQL / SQLite.

PostgreSQL is Debian's, started here by tests/postgres_server.py's helper
(durable: fsync on); SQLite is a file in a temporary folder, in WAL mode as
gortc opens it. This process runs both, one after the other, on whatever
cores it is given; the database server is not pinned.

Run: ``make bench-search-postgres`` (``FILES=…`` to change the size; half
an hour to an hour at 100,000, bounded by --budget); a smoke run: ``python
bench/search_postgres.py --files 500 --per-kind 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The gortc of this checkout, whatever is installed; then the corpus.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent / "search"))

from corpus import QUERY_KINDS, Corpus, Query
from fts_designs import Latency, summarize

from gortc.adapters.blob_store import DiskBlobStore
from gortc.config import DatabaseConfig
from gortc.entities.files import StoredFile
from gortc.entities.ids import new_id
from gortc.entities.users import User
from gortc.repositories.backends import DatabaseBackend, database_backend
from gortc.usecases.files import FileService, FileSettings

PAGE = 20  # hits per search, as the web client asks
MIN_TIMED = 3  # queries of each kind timed whatever the budget
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FixedClock:
    """The use case's clock; search does not read it."""

    def now(self) -> datetime:
        return EPOCH


@dataclass
class Engine:
    name: str
    backend: DatabaseBackend
    seed_seconds: float = 0.0
    # Owner ("me"/"other") -> one Timed per pass over the queries.
    results: dict[str, list[Timed]] = field(default_factory=dict)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def user(number: int) -> User:
    name = "me" if number == 0 else f"other{number:03d}"
    return User(
        id=new_id(),
        username=name,
        email=f"{name}@bench.example",
        display_name=name,
        password_hash="-",  # noqa: S106 - never signs in
        is_admin=False,
        email_verified=True,
        disabled_at=None,
        created_at=EPOCH,
        updated_at=EPOCH,
    )


def stored_file(index: int, owner_id: str, name: str, text: str) -> StoredFile:
    data = text.encode()
    created = EPOCH + timedelta(seconds=index)
    return StoredFile(
        id=new_id(int(created.timestamp() * 1000)),
        owner_id=owner_id,
        name=name,
        size=len(data),
        content_type="text/plain",
        sha256=hashlib.sha256(data).hexdigest(),
        searchable=True,
        not_searchable_reason=None,
        index_truncated=False,
        created_at=created,
        updated_at=created,
    )


async def seed(
    engines: Sequence[Engine], corpus: Corpus, owners: list[User], mine: int, size: int
) -> int:
    """Every file, ``size`` a batch, into every engine; the text's bytes.
    Files 0 … mine - 1 are the first owner's, the rest dealt to the others."""
    for engine in engines:
        async with engine.backend.uow.transaction() as repos:
            for owner in owners:
                await repos.users.add(owner)
    others = owners[1:]
    total = 0
    started = time.perf_counter()
    for start in range(0, corpus.files, size):
        batch: list[tuple[StoredFile, str | None]] = []
        for index in range(start, min(start + size, corpus.files)):
            record = corpus.record(index)
            owner = owners[0] if index < mine else others[(index - mine) % len(others)]
            batch.append((stored_file(index, owner.id, record.name, record.text), record.text))
            total += len(record.text)
        for engine in engines:
            began = time.perf_counter()
            async with engine.backend.uow.transaction() as repos:
                for file, _ in batch:
                    await repos.blobs.acquire(file.sha256, file.size)
                await repos.files.add_many(batch)
            engine.seed_seconds += time.perf_counter() - began
        done = start + len(batch)
        if done % 10_000 < size or done == corpus.files:
            times = ", ".join(f"{e.name} {e.seed_seconds:.0f} s" for e in engines)
            log(
                f"  seeded {done:,} / {corpus.files:,} files "
                f"({time.perf_counter() - started:.0f} s: {times})"
            )
    return total


@dataclass
class Timed:
    """One engine's latencies for one owner's queries."""

    per_kind: dict[str, Latency]
    overall: Latency
    empty: int  # queries that found nothing
    timed: dict[str, int]  # queries timed per kind (the budget may stop a kind early)


async def search_as(
    service: FileService, owner_id: str, queries: Sequence[Query], budget: float
) -> Timed:
    """Each query once cold, then twice warm (once if the cold run took over
    a second); its warm time is the lower. A kind stops after ``budget``
    seconds once MIN_TIMED of its queries are timed, so that an engine that
    takes seconds per query still finishes."""
    cold: dict[str, list[float]] = {kind: [] for kind in QUERY_KINDS}
    warm: dict[str, list[float]] = {kind: [] for kind in QUERY_KINDS}
    empty = 0

    async def run(query: Query) -> tuple[float, int]:
        started = time.perf_counter()
        page = await service.search(owner_id, query.display(), limit=PAGE)
        return (time.perf_counter() - started) * 1000, len(page.hits)

    for kind in QUERY_KINDS:
        spent = 0.0
        for query in (q for q in queries if q.kind == kind):
            if len(warm[kind]) >= MIN_TIMED and spent > budget:
                break
            first, found = await run(query)
            empty += found == 0
            repeats = [(await run(query))[0] for _ in range(1 if first > 1000 else 2)]
            cold[kind].append(first)
            warm[kind].append(min(repeats))
            spent += (first + sum(repeats)) / 1000
    return Timed(
        per_kind={kind: summarize(cold[kind], warm[kind]) for kind in QUERY_KINDS},
        overall=summarize(
            [t for kind in QUERY_KINDS for t in cold[kind]],
            [t for kind in QUERY_KINDS for t in warm[kind]],
        ),
        empty=empty,
        timed={kind: len(warm[kind]) for kind in QUERY_KINDS},
    )


async def bench(arguments: argparse.Namespace) -> tuple[list[Engine], int, list[User]]:
    from tests.postgres_server import PostgresServer

    defaults = DatabaseConfig.model_validate({})
    corpus = Corpus(files=arguments.files + arguments.others, owners=arguments.other_users + 1)
    queries = corpus.queries(per_kind=arguments.per_kind, pool=range(arguments.files))
    owners = [user(number) for number in range(arguments.other_users + 1)]
    with (
        tempfile.TemporaryDirectory(prefix="gortc-search-pg-") as workdir,
        PostgresServer(durable=True) as postgres,
    ):
        engines = [
            Engine(
                "SQLite",
                database_backend(
                    "",
                    Path(workdir) / "gortc.db",
                    readers=defaults.readers,
                    busy_timeout_ms=defaults.busy_timeout_ms,
                    pool_size=defaults.pool_size,
                ),
            ),
            Engine(
                "PostgreSQL",
                database_backend(
                    postgres.create_database("search"),
                    Path(workdir) / "unused.db",
                    readers=defaults.readers,
                    busy_timeout_ms=defaults.busy_timeout_ms,
                    pool_size=defaults.pool_size,
                ),
            ),
        ]
        async with contextlib.AsyncExitStack() as stack:
            for engine in engines:
                await engine.backend.open()
                stack.push_async_callback(engine.backend.close)
            log(
                f"seeding {arguments.files:,} files of one user and {arguments.others:,} of "
                f"{arguments.other_users} others into {' and '.join(e.name for e in engines)} ..."
            )
            text_bytes = await seed(engines, corpus, owners, arguments.files, arguments.batch)
            postgres.psql("VACUUM ANALYZE", database="search")  # as autovacuum would, in time
            for engine in engines:
                service = FileService(
                    uow=engine.backend.uow,
                    blobs=DiskBlobStore(Path(workdir) / f"blobs-{engine.name}"),
                    clock=FixedClock(),
                    settings=FileSettings(),
                )
                for number in range(1, arguments.passes + 1):
                    log(f"searching {engine.name} as me (pass {number}) ...")
                    engine.results.setdefault("me", []).append(
                        await search_as(service, owners[0].id, queries, arguments.budget)
                    )
                    log(f"searching {engine.name} as {owners[1].username} (pass {number}) ...")
                    engine.results.setdefault("other", []).append(
                        await search_as(service, owners[1].id, queries, arguments.budget)
                    )
    return engines, text_bytes, owners


def row(label: str, per_kind: dict[str, Latency], overall: Latency) -> str:
    cells = " ".join(f"{per_kind[kind].p50:5.2f}/{per_kind[kind].p95:6.2f}" for kind in QUERY_KINDS)
    return f"{label:40} {cells}  {overall.p50:5.2f} / {overall.p95:6.2f} / {overall.p99:6.2f}"


def report(arguments: argparse.Namespace, engines: list[Engine], text_bytes: int) -> None:
    other_files = -(-arguments.others // arguments.other_users)
    print(
        f"Corpus: {arguments.files:,} files of one user + {arguments.others:,} of "
        f"{arguments.other_users} others (~{other_files:,} each), {text_bytes / 1e6:,.0f} MB of"
        f" text; {arguments.per_kind} queries of each kind, pages of {PAGE};"
        " through FileService.search (no HTTP)."
    )
    print()
    print("Seeding through the repositories, batches of", arguments.batch)
    for engine in engines:
        print(
            f"  {engine.name:12} {engine.seed_seconds:7.0f} s "
            f"{text_bytes / 1e6 / engine.seed_seconds:6.1f} MB/s"
        )
    print()
    print("Latency, ms, warm p50/p95 per kind; all p50 / p95 / p99")
    print(f"{'':40} " + " ".join(f"{kind:>12}" for kind in QUERY_KINDS))
    for who, label in (("me", "me"), ("other", f"another owner (~{other_files:,} files)")):
        for engine in engines:
            for number, timed in enumerate(engine.results[who], 1):
                print(row(f"{engine.name}, {label}, #{number}", timed.per_kind, timed.overall))
    print()
    sqlite, postgres = engines
    for who, label in (("me", "me"), ("other", "another owner")):
        for number in range(arguments.passes):
            base = sqlite.results[who][number].overall
            other = postgres.results[who][number].overall
            print(
                f"{label}, pass {number + 1}: p95 SQLite {base.p95:.2f} ms, PostgreSQL"
                f" {other.p95:.2f} ms, PostgreSQL / SQLite x{other.p95 / base.p95:.2f} "
                f"(p50 x{other.p50 / base.p50:.2f}; cold p95 {base.cold_p95:.2f} → "
                f"{other.cold_p95:.2f} ms)"
            )
    empty = ", ".join(
        f"{engine.name} {engine.results['me'][0].empty}/{engine.results['other'][0].empty}"
        for engine in engines
    )
    print(f"queries with no hit (me/another owner): {empty}")
    for engine in engines:
        for who in ("me", "other"):
            counted = engine.results[who][-1].timed
            if any(counted[kind] < arguments.per_kind for kind in QUERY_KINDS):
                counts = ", ".join(f"{kind} {counted[kind]}" for kind in QUERY_KINDS)
                print(
                    f"{engine.name}, {who}: the {arguments.budget:g} s budget per kind stopped"
                    f" early; queries timed: {counts}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000, help="files of the searching user")
    parser.add_argument(
        "--others", type=int, help="files of the other users (default: half of --files)"
    )
    parser.add_argument("--other-users", type=int, default=50)
    parser.add_argument("--per-kind", type=int, default=100, help="queries of each kind")
    parser.add_argument("--batch", type=int, default=500, help="files per seeding transaction")
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help=f"seconds per kind of query, per engine and owner (at least {MIN_TIMED} are timed)",
    )
    parser.add_argument(
        "--passes", type=int, default=2, help="times the query mix is run on the same data"
    )
    arguments = parser.parse_args()
    if arguments.others is None:
        arguments.others = max(1, arguments.files // 2)
    if arguments.files < 1 or arguments.other_users < 1 or arguments.others < 1:
        parser.error("--files, --others and --other-users must be at least 1")
    engines, text_bytes, _ = asyncio.run(bench(arguments))
    report(arguments, engines, text_bytes)


if __name__ == "__main__":
    main()
