"""Personal full-text search over HTTP: what finds what, in what order, with
which passage highlighted; any query answers 200; the index follows
renames and deletions; pages by cursor."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gortc.config import Config
from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START
from tests.conftest import bearer, login, register, sqlite_only
from tests.e2e.file_client import names_found, search, search_raw, upload

CORPUS = [
    ("budget-2024.txt", "The quarterly budget for the design team. Travel costs rose."),
    ("meeting notes.md", "Notes: we discussed the budget briefly. Next meeting on Monday."),
    ("recipes.txt", "Crème brûlée and café au lait. Quarterly potluck at noon."),
    ("travel.csv", "city,cost\nZürich,1200\nParis,900\n"),
    ("draft budget.txt", "First draft, do not share."),
    ("server.log", "ERROR disk full\nWARN quarterly log rotation\n"),
    ("naïve.txt", "A résumé of the naïve approach."),
    ("photo.png", "\x00binary budget quarterly"),
]

# (query, the names expected, as a set: bm25 order is tested separately)
CASES = [
    ("budget", {"budget-2024.txt", "meeting notes.md", "draft budget.txt"}),
    ("BUDGET", {"budget-2024.txt", "meeting notes.md", "draft budget.txt"}),
    ("quarterly budget", {"budget-2024.txt"}),
    ("quarterly AND budget", {"budget-2024.txt"}),
    ('"quarterly budget"', {"budget-2024.txt"}),
    ('"budget quarterly"', set()),
    ("budg*", {"budget-2024.txt", "meeting notes.md", "draft budget.txt"}),
    ("br*", {"recipes.txt", "meeting notes.md"}),  # brûlée, briefly
    ("creme brulee", {"recipes.txt"}),
    ("Crème Brûlée", {"recipes.txt"}),
    ("zurich", {"travel.csv"}),
    ("naive resume", {"naïve.txt"}),
    ("cafe OR zurich", {"recipes.txt", "travel.csv"}),
    ("budget -draft", {"budget-2024.txt", "meeting notes.md"}),
    ("budget NOT draft", {"budget-2024.txt", "meeting notes.md"}),
    ('budget -"do not share"', {"budget-2024.txt", "meeting notes.md"}),
    ("name:budget", {"budget-2024.txt", "draft budget.txt"}),
    ("body:budget", {"budget-2024.txt", "meeting notes.md"}),
    ("(error OR warn) quarterly", {"server.log"}),
    ("quarterly (potluck OR rotation)", {"recipes.txt", "server.log"}),
    ("csv", {"travel.csv"}),
    ("2024", {"budget-2024.txt"}),
    ("1200", {"travel.csv"}),
    ("binary", set()),  # binary content is not indexed
    ("nonexistent", set()),
]


async def alice_with_corpus(client: TestClient) -> dict[str, Any]:
    await register(client, "alice")
    alice = await login(client, "alice")
    await upload(client, alice, *[(name, text.encode()) for name, text in CORPUS])
    return alice


async def test_search_cases(client: TestClient) -> None:
    alice = await alice_with_corpus(client)
    wrong = {}
    for q, expected in CASES:
        found = await names_found(client, alice, q)
        if set(found) != expected or len(found) != len(expected):
            wrong[q] = sorted(found)
    assert wrong == {}


async def test_a_name_match_ranks_above_a_text_match(client: TestClient) -> None:
    await register(client, "alice")
    alice = await login(client, "alice")
    await upload(
        client,
        alice,
        ("fruit.txt", b"kiwi kiwi kiwi, more kiwi, and a kiwi again"),
        ("kiwi.txt", b"a note about fruit"),
        ("other.txt", b"nothing to see"),
    )
    result = await search(client, alice, "kiwi")
    assert [item["file"]["name"] for item in result["items"]] == ["kiwi.txt", "fruit.txt"]
    scores = [item["score"] for item in result["items"]]
    assert scores[0] > scores[1] > 0


async def test_hits_mark_the_matches_with_private_use_characters(client: TestClient) -> None:
    alice = await alice_with_corpus(client)
    [hit] = (await search(client, alice, "quarterly budget"))["items"]
    assert hit["name_highlight"] == f"{HIGHLIGHT_START}budget{HIGHLIGHT_END}-2024.txt"
    assert f"{HIGHLIGHT_START}quarterly{HIGHLIGHT_END}" in hit["snippet"]
    assert f"{HIGHLIGHT_START}budget{HIGHLIGHT_END}" in hit["snippet"]
    assert "<" not in hit["snippet"]
    assert set(hit["file"]) >= {"id", "name", "size", "updated_at", "content_type"}
    # Markers a file contains are not taken for highlights.
    await upload(client, alice, ("tricky.txt", f"{HIGHLIGHT_START}zebra{HIGHLIGHT_END}".encode()))
    [tricky] = (await search(client, alice, "zebra"))["items"]
    assert tricky["snippet"].count(HIGHLIGHT_START) == 1
    assert tricky["snippet"] == f"\ufffd{HIGHLIGHT_START}zebra{HIGHLIGHT_END}\ufffd"


HOSTILE = [
    '"',
    '""',
    '"""',
    "'",
    "*",
    "**",
    "*budget",
    "bud*get*",
    "NEAR(",
    "NEAR(budget quarterly, 2)",
    "NEAR/2",
    "name:",
    "body:",
    "name:*",
    "rowid:1",
    "rank:1",
    "{name body}: budget",
    "^",
    "^budget",
    "((((",
    "))))",
    "(budget OR",
    "budget OR)",
    "AND",
    "OR",
    "NOT",
    "AND OR NOT",
    "budget AND",
    "- - -",
    "-",
    "-budget",
    "😀",
    "👨‍👩‍👧 🎉",
    "'; DROP TABLE files; --",
    "1 OR 1=1",
    '" OR ""="',
    'budget" OR rowid > 0 --',
    "file_index_01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "file_shard_1",
    "otok:budget",
    "{otok}: budget",
    "{otok name body}: budget",
    "otok : u01arz3ndektsv4rrffq69g5fav",
    "budget otok:*",
    "MATCH budget",
    "bm25(",
    "highlight(files, 0, '<b>', '</b>')",
    "a:b:c::",
    "[budget]",
    "$budget",
    "\\",
    '\\"',
    "+budget",
    "budget|travel",
    "~budget",
    "%",
    "_",
    "x" * 500,
    "budget " * 71,
    "(" * 250,
    "é" * 499,
    "\u202e budget",
    "\uffff\ufffe",
    "\ue000budget\ue001",
    # Long chains of each operator: nested NOTs once overflowed FTS5's parser.
    "budget " + "-a " * 160,
    "budget " + "NOT b " * 80,
    "a OR " * 90 + "budget",
    " ".join(f"w{i}*" for i in range(95)),
    "(budget " * 8 + ")" * 8 + " -x" * 100,
]

# q exactly as it arrives in a URL: NUL, broken UTF-8, surrogates encoded.
HOSTILE_ENCODED = ["%00", "budget%00", "%ED%A0%80", "%FF%FE", "%C0%AF", "%22%00%22", "a%0Ab"]


async def test_hostile_queries_all_answer_200(client: TestClient) -> None:
    assert len(HOSTILE) + len(HOSTILE_ENCODED) >= 30
    alice = await alice_with_corpus(client)
    refused = {}
    for q in HOSTILE:
        response = await client.get("/api/v1/files/search", params={"q": q}, headers=bearer(alice))
        if response.status != 200:
            refused[q] = (response.status, await response.text())
    for encoded in HOSTILE_ENCODED:
        if (status := await search_raw(client, alice, encoded)) != 200:
            refused[encoded] = (status, "")
    assert refused == {}
    # The queries above that still mean something find what they should.
    budget = {"budget-2024.txt", "meeting notes.md", "draft budget.txt"}
    assert set(await names_found(client, alice, "(budget OR")) == budget
    assert set(await names_found(client, alice, "^budget")) == budget
    assert await names_found(client, alice, "NEAR(budget quarterly, 2)") == []  # "near" is a word
    assert await names_found(client, alice, "-budget") == []


@pytest.mark.parametrize(
    ("q", "code"), [("", "missing_query"), ("   ", "missing_query"), ("x" * 501, "query_too_long")]
)
async def test_an_empty_or_overlong_query_is_a_400(client: TestClient, q: str, code: str) -> None:
    await register(client, "alice")
    alice = await login(client, "alice")
    response = await client.get("/api/v1/files/search", params={"q": q}, headers=bearer(alice))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == code
    no_q = await client.get("/api/v1/files/search", headers=bearer(alice))
    assert no_q.status == 400


async def test_pages_of_results_by_cursor(client: TestClient) -> None:
    await register(client, "alice")
    alice = await login(client, "alice")
    await upload(client, alice, *[(f"note {i}.txt", f"common word {i}".encode()) for i in range(7)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = await search(client, alice, "common", **params)
        seen += [item["file"]["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7

    first = await search(client, alice, "common", limit="3")
    other_query = await client.get(
        "/api/v1/files/search",
        params={"q": "word", "cursor": first["next_cursor"]},
        headers=bearer(alice),
    )
    assert other_query.status == 400
    assert (await other_query.json())["error"]["code"] == "invalid_cursor"
    for garbage in ("x", "!!!", "MTAwMDAwMDAwMDAwMDAuYQ", "Li4u"):
        response = await client.get(
            "/api/v1/files/search",
            params={"q": "common", "cursor": garbage},
            headers=bearer(alice),
        )
        assert response.status == 400, garbage


def index_terms(config: Config, owner_id: str) -> set[str]:
    """The terms of the owner's entries in their FTS5 search shard, read from
    the index itself: the documents that carry the owner's token, then
    every name and body term of those documents."""
    conn = sqlite3.connect(config.database_path)
    try:
        row = conn.execute(
            "SELECT shard_id FROM file_search_owners WHERE owner_id = ?", (owner_id,)
        ).fetchone()
        if row is None:
            return set()
        conn.execute(
            f"CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, file_shard_{int(row[0])}, "
            "'instance')"
        )
        instances = conn.execute("SELECT term, doc, col FROM temp.terms").fetchall()
        token = f"u{owner_id.lower()}"
        docs = {doc for term, doc, col in instances if col == "otok" and term == token}
        return {term for term, doc, col in instances if doc in docs and col != "otok"}
    finally:
        conn.close()


@sqlite_only
async def test_the_index_follows_renames_and_deletions(client: TestClient, config: Config) -> None:
    user = await register(client, "alice")
    alice = await login(client, "alice")
    [file] = await upload(client, alice, ("alpha.txt", b"zebra crossing"))
    assert {"alpha", "txt", "zebra", "crossing"} <= index_terms(config, user["id"])

    response = await client.patch(
        f"/api/v1/files/{file['id']}", json={"name": "omega.md"}, headers=bearer(alice)
    )
    assert response.status == 200
    assert await names_found(client, alice, "alpha") == []
    assert await names_found(client, alice, "omega") == ["omega.md"]
    assert await names_found(client, alice, "zebra") == ["omega.md"]
    terms = index_terms(config, user["id"])
    assert "alpha" not in terms
    assert {"omega", "md", "zebra"} <= terms

    await client.delete(f"/api/v1/files/{file['id']}", headers=bearer(alice))
    assert await names_found(client, alice, "zebra OR omega") == []
    assert index_terms(config, user["id"]) == set()


@sqlite_only
async def test_owners_sharing_a_search_shard_find_only_their_own_files(
    client: TestClient, config: Config
) -> None:
    alice_user = await register(client, "alice")
    bob_user = await register(client, "bob")
    alice = await login(client, "alice")
    bob = await login(client, "bob")
    await upload(client, alice, ("a.txt", b"shared word apple"))
    await upload(client, bob, ("b.txt", b"shared word banana"))
    assert await names_found(client, alice, "shared") == ["a.txt"]
    assert await names_found(client, bob, "shared") == ["b.txt"]
    assert await names_found(client, alice, "banana") == []
    # Naming the owner-token column, or Bob's token, finds nothing of his.
    bob_token = f"u{bob_user['id'].lower()}"
    for q in (f"otok:{bob_token}", f"{{otok}}: {bob_token}", bob_token, f'otok:"{bob_token}"'):
        assert await names_found(client, alice, q) == [], q
    assert "banana" not in index_terms(config, alice_user["id"])
    assert "apple" not in index_terms(config, bob_user["id"])
    conn = sqlite3.connect(config.database_path)
    try:
        shards = conn.execute("SELECT DISTINCT shard_id FROM file_search_owners").fetchall()
    finally:
        conn.close()
    assert len(shards) == 1


async def test_scores_reveal_nothing_about_other_peoples_files(client: TestClient) -> None:
    # Alice and Bob share a search shard; bm25 would weigh "kiwi" by how
    # many of the shard's files (Bob's too) contain it.
    await register(client, "alice")
    await register(client, "bob")
    alice = await login(client, "alice")
    bob = await login(client, "bob")
    await upload(client, alice, ("fruit.txt", b"kiwi and mango"), ("list.txt", b"kiwi kiwi"))
    before = await search(client, alice, "kiwi")

    await upload(client, bob, *[(f"k{i}.txt", b"kiwi " * (i + 1)) for i in range(30)])
    after = await search(client, alice, "kiwi")

    assert [item["score"] for item in before["items"]] == [1.0, 0.5]
    assert after["items"] == before["items"]
