"""gortc's search shards (design F, repositories/file_index.py) against the
per-owner FTS5 tables they replaced, both through gortc's own file
repository (aiosqlite, the statements the server runs; no HTTP).

For each design, on a fresh database: registers the corpus owners, stores
the first files as upload requests (one owner's files of each window of
5,000 corpus files, at most 100 per request, ``files.max_files_per_upload``;
one transaction each), then the last ``--single`` files one per
transaction (the plain upload path); MB/s counts the indexed text (names and
bodies). Moves of owners between shards are timed on their own. Then the
fixed query mix (bench/search/corpus.py) through the repository's search,
limit 21: one cold pass, two warm ones, each query's lower warm time. Last,
what opening a connection costs with the schema each design leaves.

Run: ``python bench/search/shard_bench.py`` (20,000 files, ~4 min);
``--files 100000`` for FINDINGS.md's corpus.
"""

# ruff: noqa: S608
# (table names from a checked ULID or a shard number only, as in gortc)
from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiosqlite

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from corpus import QUERY_KINDS, Corpus, FileRecord, Query

from gortc.entities.files import StoredFile
from gortc.entities.ids import new_id
from gortc.entities.query_syntax import parse_query
from gortc.entities.users import User
from gortc.repositories import file_index
from gortc.repositories import files as files_repository
from gortc.repositories.database import Database, fetch_all, fetch_one
from gortc.repositories.unit_of_work import SqliteUnitOfWork

BATCH = 100
WINDOW = 5_000
NOW = datetime(2030, 1, 1, tzinfo=UTC)
SHA = "0" * 64


# -- the per-owner design, as file_index.py had it before the shards ---------


def _per_owner_module() -> SimpleNamespace:
    ulid = re.compile(r"[0-9A-Z]{26}")

    def table(owner_id: str) -> str:
        assert ulid.fullmatch(owner_id)
        return "file_index_" + owner_id.lower()

    async def exists(conn: aiosqlite.Connection, owner_id: str) -> bool:
        row = await fetch_one(
            conn,
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (table(owner_id),),
        )
        return row is not None

    async def add(
        conn: aiosqlite.Connection, owner_id: str, doc_id: int, name: str, body: str, **_: Any
    ) -> None:
        t = table(owner_id)
        if not await exists(conn, owner_id):
            await conn.execute(
                f"CREATE VIRTUAL TABLE {t} USING fts5(name, body, content='file_texts', "
                "content_rowid='doc_id', tokenize='unicode61 remove_diacritics 2')"
            )
            await conn.executemany(
                f"INSERT INTO {t} ({t}, rank) VALUES (?, ?)",
                (("rank", "bm25(10.0, 1.0)"), ("hashsize", 16 * 1024 * 1024)),
            )
        await conn.execute(
            "INSERT INTO file_texts (doc_id, name, body) VALUES (?, ?, ?)", (doc_id, name, body)
        )
        await conn.execute(
            f"INSERT INTO {t} (rowid, name, body) VALUES (?, ?, ?)", (doc_id, name, body)
        )

    async def search(
        conn: aiosqlite.Connection,
        owner_id: str,
        match: str,
        *,
        marks: tuple[str, str],
        limit: int,
        offset: int,
    ) -> list[sqlite3.Row]:
        if not await exists(conn, owner_id):
            return []
        t = table(owner_id)
        start, end = marks
        return await fetch_all(
            conn,
            f"SELECT rowid AS doc_id, rank, highlight({t}, 0, ?, ?) AS name_marked, "
            f"snippet({t}, 1, ?, ?, ?, ?) AS snippet "
            f"FROM {t} WHERE {t} MATCH ? ORDER BY rank LIMIT ? OFFSET ?",
            (start, end, start, end, "…", 24, match, limit, offset),
        )

    return SimpleNamespace(add=add, search=search)


@contextmanager
def design(name: str) -> Iterator[None]:
    """The repository with the named index module in place of file_index."""
    module: Any = file_index if name == "shards" else _per_owner_module()
    saved = files_repository.file_index
    files_repository.file_index = module
    try:
        yield
    finally:
        files_repository.file_index = saved


# -- measuring ---------------------------------------------------------------


def uploads(records: Sequence[FileRecord]) -> list[list[FileRecord]]:
    """The records as upload requests: one owner's files each, at most
    BATCH, in corpus order by windows of WINDOW files (an upload request
    carries one person's files, so all go to one shard)."""
    requests: list[list[FileRecord]] = []
    for start in range(0, len(records), WINDOW):
        by_owner: dict[int, list[FileRecord]] = {}
        for record in records[start : start + WINDOW]:
            by_owner.setdefault(record.owner, []).append(record)
        for files in by_owner.values():
            requests.extend(files[i : i + BATCH] for i in range(0, len(files), BATCH))
    return requests


def pct(values: Sequence[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


class MoveTimer:
    """Times file_index._move, which runs inside the upload's transaction."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.files: list[int] = []
        self.bytes: list[int] = []
        self._original = file_index._move

    def __enter__(self) -> MoveTimer:
        async def timed(
            conn: aiosqlite.Connection, owner_id: str, current: Any, target: int
        ) -> None:
            started = time.perf_counter()
            await self._original(conn, owner_id, current, target)
            self.times.append(time.perf_counter() - started)
            self.files.append(current.files)
            self.bytes.append(current.text_bytes)

        file_index._move = timed  # type: ignore[assignment]
        return self

    def __exit__(self, *_: object) -> None:
        file_index._move = self._original  # type: ignore[assignment]


async def time_queries(
    run: Callable[[Query], Awaitable[int]], queries: Sequence[Query]
) -> dict[str, tuple[float, float]]:
    warm: dict[int, float] = {}
    for attempt in range(3):
        for i, query in enumerate(queries):
            started = time.perf_counter()
            await run(query)
            elapsed = (time.perf_counter() - started) * 1000
            if attempt:
                warm[i] = min(warm.get(i, elapsed), elapsed)
    result = {}
    for kind in (*QUERY_KINDS, "all"):
        values = [warm[i] for i, q in enumerate(queries) if kind in ("all", q.kind)]
        result[kind] = (statistics.median(values), pct(values, 95))
    return result


def stored_file(owner_id: str, name: str, size: int) -> StoredFile:
    return StoredFile(
        id=new_id(),
        owner_id=owner_id,
        name=name,
        size=size,
        content_type="text/plain; charset=utf-8",
        sha256=SHA,
        searchable=True,
        not_searchable_reason=None,
        index_truncated=False,
        created_at=NOW,
        updated_at=NOW,
    )


async def run(name: str, corpus: Corpus, single: int, queries: Sequence[Query], tmp: Path) -> dict:
    path = tmp / f"{name}.db"
    database = Database(path)
    await database.open()
    uow = SqliteUnitOfWork(database)
    owners = {o: new_id() for o in sorted(set(corpus.owner_of[: corpus.files]))}
    async with uow.transaction() as repos:
        await repos.blobs.acquire(SHA, 1)
        for number, owner_id in owners.items():
            await repos.users.add(
                User(
                    id=owner_id,
                    username=f"owner{number}",
                    email=f"owner{number}@example.com",
                    display_name=f"Owner {number}",
                    password_hash="!",  # noqa: S106 (nobody signs in)
                    is_admin=False,
                    email_verified=True,
                    disabled_at=None,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    records = list(corpus.records())
    bulk, tail = records[: len(records) - single], records[len(records) - single :]
    result: dict[str, Any] = {"design": name}
    with design(name), MoveTimer() as moves:
        for label, chunks in (
            ("bulk", uploads(bulk)),
            ("single", [[r] for r in tail]),
        ):
            size = sum(len(r.name.encode()) + len(r.text.encode()) for c in chunks for r in c)
            wall, cpu = time.perf_counter(), time.process_time()
            for chunk in chunks:
                async with uow.transaction() as repos:
                    for r in chunk:
                        await repos.files.add(
                            stored_file(owners[r.owner], r.name, len(r.text)), r.text
                        )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            result[label] = (size / 1e6 / wall, size / 1e6 / cpu, size / 1e6)

        async def search(query: Query) -> int:
            parsed = parse_query(query.display())
            if parsed is None:
                return 0
            async with uow.reading() as repos:
                return len(
                    await repos.files.search(owners[query.owner], parsed, limit=21, offset=0)
                )

        result["latency"] = await time_queries(search, queries)
    result["moves"] = (moves.times, moves.files, moves.bytes)
    await database.close()
    conn = sqlite3.connect(path)
    result["schema_rows"] = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    result["fts_tables"] = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE file_%'"
    ).fetchone()[0]
    conn.close()
    opened = []
    for _ in range(5):
        started = time.perf_counter()
        conn = sqlite3.connect(path)
        conn.execute("SELECT count(*) FROM files").fetchone()
        opened.append((time.perf_counter() - started) * 1000)
        conn.close()
    result["open_ms"] = min(opened)
    result["db_mb"] = path.stat().st_size / 1e6
    return result


def report(results: Sequence[dict]) -> None:
    print("\n## Indexing (text MB/s wall, MB/CPU-s)\n")
    print(
        "| design | uploads ≤ 100 files | 1 file/txn | FTS tables | schema rows "
        "| open+prepare | DB MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        b, s = r["bulk"], r["single"]
        print(
            f"| {r['design']} | {b[0]:.1f} / {b[1]:.1f} ({b[2]:.0f} MB) | {s[0]:.1f} / {s[1]:.1f} "
            f"| {r['fts_tables']} | {r['schema_rows']} | {r['open_ms']:.1f} ms | {r['db_mb']:.0f} |"
        )
    print("\n## Search through the repository, warm, ms p50 / p95\n")
    print("| design | " + " | ".join((*QUERY_KINDS, "all")) + " |")
    print("|---|" + "---|" * (len(QUERY_KINDS) + 1))
    for r in results:
        cells = [f"{p50:.2f} / {p95:.2f}" for p50, p95 in r["latency"].values()]
        print(f"| {r['design']} | " + " | ".join(cells) + " |")
    for r in results:
        times, files, sizes = r["moves"]
        if times:
            print(
                f"\n## Moves between shards ({r['design']}): {len(times)}, "
                f"{sum(files)} files, {sum(sizes) / 1e6:.1f} MB, {sum(times):.1f} s in all\n"
            )
            print("| files | MB | seconds | MB/s |")
            print("|---|---|---|---|")
            for t, f, b in sorted(zip(times, files, sizes, strict=True), key=lambda x: -x[2])[:10]:
                print(f"| {f} | {b / 1e6:.2f} | {t:.3f} | {b / 1e6 / t:.1f} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=500, help="files stored one per transaction")
    parser.add_argument("--per-kind", type=int, default=50, help="queries of each kind")
    parser.add_argument("--designs", default="shards,per_owner")
    args = parser.parse_args()
    corpus = Corpus(files=args.files)
    queries = corpus.queries(per_kind=args.per_kind)
    results = []
    with tempfile.TemporaryDirectory(prefix="gortc-shards-") as tmp:
        for name in args.designs.split(","):
            started = time.perf_counter()
            results.append(await run(name, corpus, args.single, queries, Path(tmp)))
            print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
