"""The file repository and its sharded FTS5 index on a real SQLite file:
owners share shards yet find only their own files, shards fill up and big
owners move out, the index stays exactly what the files say through
renames, deletions, moves and rollbacks, and nothing a user types becomes
SQL or reaches the owner-token column."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from gortc.entities.files import StoredFile
from gortc.entities.ids import new_id
from gortc.entities.query_syntax import parse_query
from gortc.repositories import file_index
from gortc.repositories.database import Database
from gortc.repositories.file_index import ShardLimits
from gortc.repositories.files import SqliteFileRepository
from gortc.repositories.unit_of_work import SqliteUnitOfWork
from tests.integration.test_repositories import NOW, make_user

# Small enough to fill and split with a handful of files: shared shards of
# 4 files, an own shard past 2, room for 1 file first (then 2).
SMALL = ShardLimits(
    files=4,
    text_bytes=100_000,
    own_files=2,
    own_text_bytes=50_000,
    first_files=1,
    first_text_bytes=1_000,
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "gortc.db")
    await database.open()
    yield database
    await database.close()


def make_file(owner_id: str, name: str, *, searchable: bool = True) -> StoredFile:
    return StoredFile(
        id=new_id(),
        owner_id=owner_id,
        name=name,
        size=3,
        content_type="text/plain; charset=utf-8",
        sha256="a" * 64,
        searchable=searchable,
        not_searchable_reason=None if searchable else "binary",
        index_truncated=False,
        created_at=NOW,
        updated_at=NOW,
    )


async def owner(uow: SqliteUnitOfWork, username: str = "alice") -> str:
    user = make_user(username)
    async with uow.transaction() as repos:
        await repos.users.add(user)
        if not await repos.blobs.is_referenced("a" * 64):
            await repos.blobs.acquire("a" * 64, 3)
    return user.id


async def store(
    db: Database, owner_id: str, *files: tuple[str, str], limits: ShardLimits = SMALL
) -> list[StoredFile]:
    """Stores the (name, text) files in one transaction, as one upload."""
    stored = [make_file(owner_id, name) for name, _ in files]
    async with db.write() as conn:
        repo = SqliteFileRepository(conn, shard_limits=limits)
        await repo.add_many([(file, text) for file, (_, text) in zip(stored, files, strict=True)])
    return stored


async def found(db: Database, owner_id: str, text: str) -> list[str]:
    query = parse_query(text)
    assert query is not None
    async with db.read() as conn:
        hits = await SqliteFileRepository(conn).search(owner_id, query, limit=100, offset=0)
    return sorted(hit.file.name for hit in hits)


def tables(db: Database) -> set[str]:
    conn = sqlite3.connect(db.path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


def shards(db: Database) -> list[tuple[int, str, str | None, int, int]]:
    conn = sqlite3.connect(db.path)
    try:
        return conn.execute(
            "SELECT id, kind, owner_id, file_count, text_bytes FROM search_shards ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def shard_of(db: Database, owner_id: str) -> int | None:
    conn = sqlite3.connect(db.path)
    try:
        row = conn.execute(
            "SELECT shard_id FROM file_search_owners WHERE owner_id = ?", (owner_id,)
        ).fetchone()
        return None if row is None else int(row[0])
    finally:
        conn.close()


def assert_index_exact(db: Database) -> None:
    """Every shard holds exactly the entries its owners' stored texts give
    (read from the index itself through fts5vocab, compared with a fresh FTS5
    table of the same tokenizer), no other shard table exists, and every
    count is right."""
    conn = sqlite3.connect(db.path)
    try:
        shard_rows = conn.execute("SELECT id, file_count, text_bytes FROM search_shards").fetchall()
        assert {f"file_shard_{row[0]}" for row in shard_rows} == {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'file_shard_%' "
                "AND sql LIKE 'CREATE VIRTUAL%'"
            )
        }
        expected_docs = conn.execute(
            "SELECT o.shard_id, d.doc_id, d.otok, d.name, d.body FROM file_docs AS d "
            "JOIN files AS f ON f.doc_id = d.doc_id "
            "JOIN file_search_owners AS o ON o.owner_id = f.owner_id"
        ).fetchall()
        assert len(expected_docs) == conn.execute("SELECT count(*) FROM file_texts").fetchone()[0]
        conn.execute(
            "CREATE VIRTUAL TABLE temp.reference USING fts5(otok, name, body, "
            "tokenize='unicode61 remove_diacritics 2')"
        )
        for shard_id, files, text_bytes in shard_rows:
            docs = [row[1:] for row in expected_docs if row[0] == shard_id]
            conn.execute("DELETE FROM temp.reference")
            conn.executemany(
                "INSERT INTO temp.reference (rowid, otok, name, body) VALUES (?, ?, ?, ?)", docs
            )
            conn.execute(
                "CREATE VIRTUAL TABLE temp.ref_terms USING fts5vocab(temp, reference, 'instance')"
            )
            conn.execute(
                f"CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, file_shard_{shard_id}, "
                "'instance')"
            )
            indexed = conn.execute("SELECT * FROM temp.terms ORDER BY 1, 2, 3, 4").fetchall()
            reference = conn.execute("SELECT * FROM temp.ref_terms ORDER BY 1, 2, 3, 4").fetchall()
            assert indexed == reference, f"shard {shard_id}"
            conn.execute("DROP TABLE temp.terms")
            conn.execute("DROP TABLE temp.ref_terms")
            assert files == len(docs), f"shard {shard_id}"
            assert text_bytes == sum(len(d[2].encode()) + len(d[3].encode()) for d in docs)
        owner_counts = conn.execute(
            "SELECT o.file_count, o.text_bytes, count(t.doc_id), "
            "coalesce(sum(length(CAST(t.name AS BLOB)) + length(CAST(t.body AS BLOB))), 0) "
            "FROM file_search_owners AS o LEFT JOIN files AS f ON f.owner_id = o.owner_id "
            "LEFT JOIN file_texts AS t ON t.doc_id = f.doc_id GROUP BY o.owner_id"
        ).fetchall()
        for file_count, text_bytes, actual_count, actual_bytes in owner_counts:
            assert (file_count, text_bytes) == (actual_count, actual_bytes)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "bad",
    ["", "01arz3ndektsv4rrffq69g5fav", "01ARZ3NDEKTSV4RRFFQ69G5FA", "x; DROP TABLE users", "../"],
)
def test_only_a_ulid_becomes_an_owner_token(bad: str) -> None:
    with pytest.raises(ValueError, match="ULID"):
        file_index.owner_token(bad)
    assert file_index.owner_token("01ARZ3NDEKTSV4RRFFQ69G5FAV") == "u01arz3ndektsv4rrffq69g5fav"


@pytest.mark.parametrize("bad", [0, -1, "1", "1; DROP TABLE users", 1.0, True])
def test_only_a_positive_integer_becomes_part_of_a_table_name(bad: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        file_index.shard_table(bad)  # type: ignore[arg-type]
    assert file_index.shard_table(7) == "file_shard_7"


@pytest.mark.parametrize(
    "limits",
    [
        {"files": 10, "own_files": 10},
        {"text_bytes": 10, "own_text_bytes": 20},
        {"own_files": 3, "first_files": 4},
        {"own_text_bytes": 1_000, "first_text_bytes": 1_001},
        {"first_files": 0},
    ],
)
def test_the_first_limits_are_within_the_own_ones_and_these_below_the_shared_ones(
    limits: dict[str, int],
) -> None:
    with pytest.raises(ValueError, match="below"):
        ShardLimits(**limits)


async def test_a_failed_transaction_leaves_no_index_behind(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    owner_id = await owner(uow)
    with pytest.raises(RuntimeError):
        async with uow.transaction() as repos:
            await repos.files.add(make_file(owner_id, "plan.txt"), "secret plan")
            raise RuntimeError("the upload failed after indexing")
    assert not any(name.startswith("file_shard_") for name in tables(db))
    assert shards(db) == []
    assert shard_of(db, owner_id) is None
    async with uow.transaction() as repos:
        await repos.files.add(make_file(owner_id, "plan.txt"), "secret plan")
    assert "file_shard_1" in tables(db)
    assert await found(db, owner_id, "secret") == ["plan.txt"]
    assert_index_exact(db)


async def test_a_failed_upload_that_would_move_its_owner_changes_nothing(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    owner_id = await owner(uow)
    await store(db, owner_id, ("a.txt", "alpha"), ("b.txt", "beta"))
    before = (shards(db), shard_of(db, owner_id), tables(db))
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            repo = SqliteFileRepository(conn, shard_limits=SMALL)
            await repo.add(make_file(owner_id, "c.txt"), "gamma")  # past own_files: moves
            raise RuntimeError("the upload failed after the move")
    assert (shards(db), shard_of(db, owner_id), tables(db)) == before
    assert await found(db, owner_id, "alpha OR beta OR gamma") == ["a.txt", "b.txt"]
    assert_index_exact(db)


async def test_unsearchable_files_stay_out_of_the_index(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    owner_id = await owner(uow)
    binary = make_file(owner_id, "budget.png", searchable=False)
    async with uow.transaction() as repos:
        await repos.files.add(binary, None)
        assert await repos.files.rename(owner_id, binary.id, "budget2.png", NOW) is not None
    # No searchable file yet: no shard, and a search is simply empty.
    assert shard_of(db, owner_id) is None
    assert await found(db, owner_id, "budget2") == []
    async with uow.transaction() as repos:
        assert await repos.files.delete(owner_id, binary.id) is not None
        assert await repos.files.usage(owner_id) == (0, 0)
    assert shards(db) == []


async def test_another_owner_id_finds_nothing(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    owner_id = await owner(uow)
    file = make_file(owner_id, "mine.txt")
    async with uow.transaction() as repos:
        await repos.files.add(file, "words")
    stranger = new_id()
    async with uow.transaction() as repos:
        assert await repos.files.get(stranger, file.id) is None
        assert await repos.files.rename(stranger, file.id, "x.txt", NOW) is None
        assert await repos.files.delete(stranger, file.id) is None
        assert await repos.files.list(stranger, limit=10) == []
        assert await repos.files.get(owner_id, file.id) == file
    assert await found(db, stranger, "words") == []


async def test_owners_in_one_shard_each_find_only_their_own_files(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    owners = [await owner(uow, f"user{i}") for i in range(6)]
    for i, owner_id in enumerate(owners):
        # "common" in everyone's text and names; one word of their own.
        await store(
            db,
            owner_id,
            (f"common {i}.txt", f"common words of owner{i}"),
            limits=ShardLimits(),
        )
    assert {shard_of(db, owner_id) for owner_id in owners} == {1}
    assert [row[:4] for row in shards(db)] == [(1, "shared", None, 6)]
    for i, owner_id in enumerate(owners):
        assert await found(db, owner_id, "common") == [f"common {i}.txt"]
        assert await found(db, owner_id, "words OR owner0 OR owner1") == [f"common {i}.txt"]
        assert await found(db, owner_id, f"owner{(i + 1) % 6}") == []
        # Another owner's token, as a word or aimed at the token column.
        other = file_index.owner_token(owners[(i + 1) % 6])
        for trick in (
            other,
            f"otok:{other}",
            f'otok:"{other}"',
            f"{{otok}}: {other}",
            f"{{otok name body}}: {other}",
            f"name:{other} OR body:{other}",
            "otok:common",
            f"common OR {other}",
        ):
            names = await found(db, owner_id, trick) if parse_query(trick) else []
            assert set(names) <= {f"common {i}.txt"}, trick
        # One's own token is no word of one's files either.
        assert await found(db, owner_id, file_index.owner_token(owner_id)) == []
    # The index alone (the repository also checks the owner of each hit)
    # answers with the owner's documents only, so pages are right too.
    async with db.read() as conn:
        for owner_id in owners:
            hits = await file_index.search(
                conn, owner_id, '"common"', marks=("[", "]"), limit=10, offset=0
            )
            mine = await conn.execute_fetchall(
                "SELECT doc_id FROM files WHERE owner_id = ?", (owner_id,)
            )
            assert [hit["doc_id"] for hit in hits] == [row[0] for row in mine]
    assert_index_exact(db)


async def test_a_full_shard_takes_no_newcomers_and_a_new_one_is_created(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    alice, bob, carol = [await owner(uow, name) for name in ("alice", "bob", "carol")]
    await store(db, alice, ("a1.txt", "apple"), ("a2.txt", "apricot"))
    await store(db, bob, ("b1.txt", "banana"), ("b2.txt", "blueberry"))
    assert [row[:4] for row in shards(db)] == [(1, "shared", None, 4)]
    await store(db, carol, ("c1.txt", "cherry"))
    assert [row[:4] for row in shards(db)] == [(1, "shared", None, 4), (2, "shared", None, 1)]
    assert (shard_of(db, alice), shard_of(db, bob), shard_of(db, carol)) == (1, 1, 2)
    assert await found(db, carol, "cherry OR apple") == ["c1.txt"]
    assert await found(db, alice, "cherry OR apple OR apricot") == ["a1.txt", "a2.txt"]
    assert_index_exact(db)


async def test_an_owner_growing_in_a_full_shard_moves_to_one_with_room(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    alice, bob, carol = [await owner(uow, name) for name in ("alice", "bob", "carol")]
    await store(db, alice, ("a1.txt", "apple"))
    await store(db, bob, ("b1.txt", "banana"), ("b2.txt", "blueberry"))
    await store(db, carol, ("c1.txt", "cherry"))
    assert [row[3] for row in shards(db)] == [4]
    # Alice's second file would take shard 1 past 4 files: she moves to a
    # new shared shard (2 files is within own_files), with both files.
    await store(db, alice, ("a2.txt", "apricot"))
    assert [row[:4] for row in shards(db)] == [(1, "shared", None, 3), (2, "shared", None, 2)]
    assert shard_of(db, alice) == 2
    assert await found(db, alice, "apple OR apricot") == ["a1.txt", "a2.txt"]
    assert await found(db, bob, "banana OR blueberry OR apple") == ["b1.txt", "b2.txt"]
    assert await found(db, carol, "cherry OR apple") == ["c1.txt"]
    assert_index_exact(db)


async def test_a_big_owner_moves_to_a_shard_of_their_own(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    alice, bob = await owner(uow, "alice"), await owner(uow, "bob")
    await store(db, alice, ("a1.txt", "apple pie"), ("a2.txt", "apple juice"))
    await store(db, bob, ("b1.txt", "apple tree"))
    assert [row[:4] for row in shards(db)] == [(1, "shared", None, 3)]
    # The third file is past own_files (2): Alice gets shard 2 of her own,
    # in the same transaction, and her old entries leave shard 1.
    await store(db, alice, ("a3.txt", "apple cake"), ("a4.txt", "apple crumble"))
    assert [row[:4] for row in shards(db)] == [(1, "shared", None, 1), (2, "own", alice, 4)]
    assert shard_of(db, alice) == 2
    assert await found(db, alice, "apple") == ["a1.txt", "a2.txt", "a3.txt", "a4.txt"]
    assert await found(db, alice, "pie OR juice OR tree") == ["a1.txt", "a2.txt"]
    assert await found(db, bob, "apple") == ["b1.txt"]
    # In her own shard, the query needs no token and still cannot reach it.
    assert await found(db, alice, f"otok:{file_index.owner_token(alice)}") == []
    assert await found(db, alice, file_index.owner_token(alice)) == []
    # More files stay there; newcomers go to the shared shard.
    await store(db, alice, *[(f"more{i}.txt", "apple") for i in range(5)])
    carol = await owner(uow, "carol")
    await store(db, carol, ("c1.txt", "apple"))
    assert shard_of(db, carol) == 1
    assert [row[:4] for row in shards(db)] == [(1, "shared", None, 2), (2, "own", alice, 9)]
    assert await found(db, bob, "apple") == ["b1.txt"]
    assert await found(db, carol, "apple") == ["c1.txt"]
    assert_index_exact(db)


def sized(name: str, word: str, size: int) -> tuple[str, str]:
    """A file whose name and text are ``size`` bytes: the word, then dots
    (which the tokenizer skips)."""
    return name, word + "." * (size - len(name) - len(word))


async def test_a_search_that_read_the_shard_before_a_move_looks_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shard is read, then searched, in two statements: a move that
    # commits in between is simulated by an answer from before the move.
    uow = SqliteUnitOfWork(db)
    alice = await owner(uow)
    await store(db, alice, ("a1.txt", "apple"), ("a2.txt", "apple"))
    await store(db, alice, ("a3.txt", "apple"))  # past own_files: shard 2
    assert shard_of(db, alice) == 2
    looked_up = file_index._shard_of
    answers: list[object] = []
    stale = [(1, "shared")]  # answered once

    async def before_the_move(conn: aiosqlite.Connection, owner_id: str) -> object:
        answer = stale.pop() if stale else await looked_up(conn, owner_id)
        answers.append(answer)
        return answer

    monkeypatch.setattr(file_index, "_shard_of", before_the_move)
    assert await found(db, alice, "apple") == ["a1.txt", "a2.txt", "a3.txt"]
    assert answers == [(1, "shared"), (2, "own")]
    # Nothing found and no move: one look-up more, then the empty answer.
    answers.clear()
    assert await found(db, alice, "banana") == []
    assert answers == [(2, "own"), (2, "own")]


async def test_text_bytes_count_as_well_as_files(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    alice, bob, carol, dave = [await owner(uow, n) for n in ("alice", "bob", "carol", "dave")]
    limits = ShardLimits(
        files=100,
        text_bytes=1_000,
        own_files=50,
        own_text_bytes=400,
        first_files=1,
        first_text_bytes=100,
    )

    def room(owner_id: str) -> tuple[int, int]:
        conn = sqlite3.connect(db.path)
        try:
            return conn.execute(
                "SELECT reserved_files, reserved_bytes FROM file_search_owners WHERE owner_id = ?",
                (owner_id,),
            ).fetchone()
        finally:
            conn.close()

    # Room in bytes is 100 doubled until the text fits, at most 400.
    await store(db, alice, sized("a.txt", "apple", 245), limits=limits)
    await store(db, bob, sized("b.txt", "banana", 150), limits=limits)
    await store(db, carol, sized("c.txt", "cherry", 390), limits=limits)
    assert (room(alice), room(bob), room(carol)) == ((1, 400), (1, 200), (1, 400))
    assert [row[3:] for row in shards(db)] == [(3, 785)]
    # Alice past 400 bytes of her own: a shard of her own; her room is freed.
    await store(db, alice, sized("a2.txt", "apricot", 246), limits=limits)
    assert [row[1:] for row in shards(db)] == [("shared", None, 2, 540), ("own", alice, 2, 491)]
    # Bob outgrows his room, which doubles in place (600 + 200 <= 1,000).
    await store(db, bob, sized("b2.txt", "blueberry", 100), limits=limits)
    assert (shard_of(db, bob), room(bob)) == (1, (2, 400))
    # Dave's 400 bytes of room no longer fit into shard 1: a new shard.
    await store(db, dave, sized("d.txt", "date", 300), limits=limits)
    assert shard_of(db, dave) == 3
    # His room in bytes holds 350, his room in files doubles in place.
    await store(db, bob, sized("b3.txt", "blackberry", 100), limits=limits)
    assert (shard_of(db, bob), room(bob)) == (1, (4, 400))
    assert await found(db, alice, "apple OR apricot OR banana") == ["a.txt", "a2.txt"]
    assert await found(db, bob, "banana OR blueberry OR blackberry OR apple") == [
        "b.txt",
        "b2.txt",
        "b3.txt",
    ]
    assert await found(db, carol, "cherry OR banana") == ["c.txt"]
    assert await found(db, dave, "date OR cherry") == ["d.txt"]
    assert_index_exact(db)


async def test_owners_growing_together_stay_within_the_limits_and_rarely_move(
    db: Database,
) -> None:
    uow = SqliteUnitOfWork(db)
    limits = ShardLimits(
        files=16,
        text_bytes=1_000_000,
        own_files=8,
        own_text_bytes=500_000,
        first_files=1,
        first_text_bytes=1_000,
    )
    owners = [await owner(uow, f"user{i}") for i in range(12)]
    # Everyone uploads in turn; owner i stops at i + 1 files (the last ones
    # past own_files get their own shard).
    placements: dict[str, list[int | None]] = {owner_id: [] for owner_id in owners}
    for turn in range(12):
        for i, owner_id in enumerate(owners):
            if turn <= i:
                await store(db, owner_id, (f"f{turn}.txt", f"word{i}"), limits=limits)
                placements[owner_id].append(shard_of(db, owner_id))
                conn = sqlite3.connect(db.path)
                try:
                    over = conn.execute(
                        "SELECT id FROM search_shards WHERE kind = 'shared' "
                        "AND (file_count > ? OR reserved_files > ? OR file_count > reserved_files)",
                        (limits.files, limits.files),
                    ).fetchall()
                finally:
                    conn.close()
                assert over == []
    for i, owner_id in enumerate(owners):
        moves = sum(a != b for a, b in itertools.pairwise(placements[owner_id]))
        # Room 1, 2, 4, 8 files: at most three moves in shared shards, then
        # one to their own.
        assert moves <= 4, (i, placements[owner_id])
        names = [f"f{turn}.txt" for turn in range(i + 1)]
        assert await found(db, owner_id, f"word{i} OR word{(i + 1) % 12}") == sorted(names)
    assert_index_exact(db)


async def test_renames_and_deletions_keep_every_shard_exact(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    alice, bob = await owner(uow, "alice"), await owner(uow, "bob")
    [alpha, beta] = await store(db, alice, ("alpha.txt", "zebra crossing"), ("beta.txt", "lion"))
    [gamma] = await store(db, bob, ("gamma.txt", "zebra stripes"))
    async with uow.transaction() as repos:
        assert await repos.files.rename(alice, alpha.id, "omega notes.md", NOW) is not None
    assert await found(db, alice, "alpha") == []
    assert await found(db, alice, "omega") == ["omega notes.md"]
    assert await found(db, alice, "zebra") == ["omega notes.md"]
    assert await found(db, bob, "zebra OR omega") == ["gamma.txt"]
    assert_index_exact(db)
    async with uow.transaction() as repos:
        assert await repos.files.delete(alice, alpha.id) is not None
    assert await found(db, alice, "zebra OR omega OR crossing") == []
    assert await found(db, alice, "lion") == ["beta.txt"]
    assert await found(db, bob, "zebra") == ["gamma.txt"]
    assert [row[3] for row in shards(db)] == [2]
    assert_index_exact(db)
    # The same after a move: entries are removed from the shard they are in.
    await store(db, alice, ("c.txt", "cat"), ("d.txt", "dog"))  # past own_files
    assert shard_of(db, alice) == 2
    async with uow.transaction() as repos:
        assert await repos.files.rename(alice, beta.id, "tiger.txt", NOW) is not None
        assert await repos.files.delete(bob, gamma.id) is not None
    assert await found(db, alice, "lion") == ["tiger.txt"]
    assert await found(db, alice, "beta") == []
    assert await found(db, bob, "zebra") == []
    assert [row[3] for row in shards(db)] == [0, 3]
    assert_index_exact(db)


async def test_drop_takes_an_owner_out_of_the_index(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    alice, bob, carol = [await owner(uow, name) for name in ("alice", "bob", "carol")]
    await store(db, alice, ("a.txt", "apple"))
    await store(db, bob, ("b.txt", "banana"))
    await store(db, carol, *[(f"c{i}.txt", "cherry") for i in range(3)])  # own shard 2
    async with db.write() as conn:
        await file_index.drop(conn, alice)
        await file_index.drop(conn, carol)
        await conn.execute("DELETE FROM files WHERE owner_id IN (?, ?)", (alice, carol))
    assert [row[:4] for row in shards(db)] == [(1, "shared", None, 1)]
    assert "file_shard_2" not in tables(db)
    assert (shard_of(db, alice), shard_of(db, carol)) == (None, None)
    assert await found(db, bob, "banana OR apple") == ["b.txt"]
    assert_index_exact(db)


async def test_rebuild_repairs_the_shards_and_their_counts(db: Database) -> None:
    uow = SqliteUnitOfWork(db)
    alice, bob = await owner(uow, "alice"), await owner(uow, "bob")
    await store(db, alice, ("a.txt", "apple"))
    await store(db, bob, *[(f"b{i}.txt", f"banana {i}") for i in range(3)])
    conn = sqlite3.connect(db.path)
    try:  # damage: an emptied shard, a missing one, wrong counts
        conn.execute("INSERT INTO file_shard_1 (file_shard_1) VALUES ('delete-all')")
        conn.execute("DROP TABLE file_shard_2")
        conn.execute("UPDATE search_shards SET file_count = 9, text_bytes = 9")
        conn.execute("UPDATE file_search_owners SET file_count = 7")
        conn.commit()
    finally:
        conn.close()
    assert await found(db, alice, "apple") == []
    reports: list[tuple[int, int]] = []
    async with db.write() as conn:
        indexed = await file_index.rebuild(conn, lambda done, total: reports.append((done, total)))
    assert indexed == 4
    assert reports[0] == (0, 4) and reports[-1] == (4, 4)
    assert await found(db, alice, "apple") == ["a.txt"]
    assert await found(db, bob, "banana") == ["b0.txt", "b1.txt", "b2.txt"]
    assert_index_exact(db)
