"""Message search over HTTP: what finds what, only in the caller's groups,
never a deleted message or an edited message's old text; any query answers
200; pages by cursor in both orders; snippets marked without markup."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from gortc.config import Config
from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START
from tests.conftest import bearer, login, register

SEARCH = "/api/v1/messages/search"


@dataclass(frozen=True)
class Person:
    id: str
    headers: dict[str, str]


async def sign_up(client: TestClient, username: str) -> Person:
    user = await register(client, username)
    return Person(user["id"], bearer(await login(client, username)))


async def new_group(client: TestClient, owner: Person, *members: Person) -> str:
    response = await client.post("/api/v1/groups", json={"name": "crew"}, headers=owner.headers)
    assert response.status == 201
    group_id: str = (await response.json())["id"]
    for member in members:
        added = await client.post(
            f"/api/v1/groups/{group_id}/members",
            json={"user_id": member.id},
            headers=owner.headers,
        )
        assert added.status == 201, await added.text()
    return group_id


async def post(client: TestClient, group_id: str, who: Person, body: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/groups/{group_id}/messages", json={"body": body}, headers=who.headers
    )
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def search(client: TestClient, who: Person, q: str, **params: str) -> dict[str, Any]:
    response = await client.get(SEARCH, params={"q": q, **params}, headers=who.headers)
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def bodies(client: TestClient, who: Person, q: str, **params: str) -> list[str]:
    return [item["message"]["body"] for item in (await search(client, who, q, **params))["items"]]


async def refusal(client: TestClient, who: Person, params: dict[str, str]) -> tuple[int, str]:
    response = await client.get(SEARCH, params=params, headers=who.headers)
    return response.status, (await response.json())["error"]["code"]


CORPUS = [
    "Meeting at the café tomorrow at 10",
    "The budget for 2024 is approved",
    "Budget draft attached, do not share",
    "lunch with the team on Friday",
    "Quarterly report: revenue is up",
    "A naïve question about the report",
    "reporting tools are broken again",
    "東京タワー visit next week",
    "party tonight 🎉 bring snacks",
    "<b>not bold</b> & friends",
    "tabs\tand\nnew lines",
]

# (query, the bodies expected, as a set: the order is tested separately)
CASES = [
    ("cafe", {CORPUS[0]}),
    ("CAFÉ", {CORPUS[0]}),
    ("budget", {CORPUS[1], CORPUS[2]}),
    ("BUDGET", {CORPUS[1], CORPUS[2]}),
    ("budget approved", {CORPUS[1]}),
    ("budget AND approved", {CORPUS[1]}),
    ('"budget for"', {CORPUS[1]}),
    ('"for budget"', set()),
    ("budget -draft", {CORPUS[1]}),
    ("budget NOT draft", {CORPUS[1]}),
    ('budget -"do not share"', {CORPUS[1]}),
    ("report", {CORPUS[4], CORPUS[5]}),  # no stemming: "reporting" is another word
    ("report*", {CORPUS[4], CORPUS[5], CORPUS[6]}),
    ("rep*", {CORPUS[4], CORPUS[5], CORPUS[6]}),
    ("naive question", {CORPUS[5]}),
    ("lunch OR revenue", {CORPUS[3], CORPUS[4]}),
    ("(lunch OR revenue) friday", {CORPUS[3]}),
    ("team lunch", {CORPUS[3]}),  # every word, in any order
    ('"team lunch"', set()),  # as a phrase, in this order
    ("2024", {CORPUS[1]}),
    ("東京タワー", {CORPUS[7]}),
    ("snacks 🎉", {CORPUS[8]}),  # the emoji is no word: dropped
    ("bold", {CORPUS[9]}),
    ("b", {CORPUS[9]}),  # a tag's letters are words like any other
    ("lines", {CORPUS[10]}),
    ("body:budget", {CORPUS[1], CORPUS[2]}),  # column filters mean nothing here
    ("name:budget", {CORPUS[1], CORPUS[2]}),
    ("nonexistent", set()),
]


async def test_search_cases(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    group_id = await new_group(client, alice)
    for body in CORPUS:
        await post(client, group_id, alice, body)
    failures = {}
    for q, expected in CASES:
        found = await bodies(client, alice, q)
        if set(found) != expected or len(found) != len(expected):
            failures[q] = (found, expected)
    assert failures == {}


async def test_newest_first_by_default_and_best_first_by_relevance(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    group_id = await new_group(client, alice)
    texts = [
        "budget budget budget",
        "one mention of the budget among many other words in a long message",
        "budget and plans",
    ]
    for body in texts:
        await post(client, group_id, alice, body)

    assert await bodies(client, alice, "budget") == texts[::-1]
    assert await bodies(client, alice, "budget", sort="newest") == texts[::-1]
    relevance = await search(client, alice, "budget", sort="relevance")
    assert [item["message"]["body"] for item in relevance["items"]] == [
        texts[0],
        texts[2],
        texts[1],
    ]
    scores = [item["score"] for item in relevance["items"]]
    assert scores == sorted(scores, reverse=True)


async def test_only_the_groups_of_the_caller_are_searched(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    bob = await sign_up(client, "bob")
    mallory = await sign_up(client, "mallory")
    shared = await new_group(client, alice, bob)
    private = await new_group(client, alice)
    await post(client, shared, alice, "secret plans for the launch")
    await post(client, private, alice, "secret diary entry")
    await post(client, shared, bob, "launch is on Monday")
    outsiders = await new_group(client, mallory)
    await post(client, outsiders, mallory, "secret stuff of mallory")

    assert set(await bodies(client, alice, "secret")) == {
        "secret plans for the launch",
        "secret diary entry",
    }
    assert await bodies(client, bob, "secret") == ["secret plans for the launch"]
    assert await bodies(client, mallory, "secret") == ["secret stuff of mallory"]
    assert await bodies(client, mallory, "launch OR plans OR diary") == []
    # A group named by id narrows the search; one the caller is not in is
    # a 404, as on every group route, and so is one that does not exist.
    assert await bodies(client, alice, "secret", group_id=private) == ["secret diary entry"]
    assert await refusal(client, bob, {"q": "secret", "group_id": private}) == (
        404,
        "group_not_found",
    )
    assert await refusal(client, mallory, {"q": "secret", "group_id": shared}) == (
        404,
        "group_not_found",
    )
    assert await refusal(client, bob, {"q": "x", "group_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}) == (
        404,
        "group_not_found",
    )

    # Leaving a group takes its messages out of the search at once.
    left = await client.delete(f"/api/v1/groups/{shared}/members/{bob.id}", headers=bob.headers)
    assert left.status == 204
    assert await bodies(client, bob, "secret OR launch") == []


async def test_direct_messages_are_found_by_both_people_only(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    bob = await sign_up(client, "bob")
    carol = await sign_up(client, "carol")
    response = await client.post(
        f"/api/v1/direct/{bob.id}/messages",
        json={"body": "psst, a surprise"},
        headers=alice.headers,
    )
    assert response.status == 201
    assert await bodies(client, alice, "surprise") == ["psst, a surprise"]
    assert await bodies(client, bob, "surprise") == ["psst, a surprise"]
    assert await bodies(client, carol, "surprise") == []


async def test_deleted_messages_never_match_and_edits_replace_the_old_text(
    client: TestClient, config: Config
) -> None:
    alice = await sign_up(client, "alice")
    bob = await sign_up(client, "bob")
    group_id = await new_group(client, alice, bob)
    kept = await post(client, group_id, alice, "the kiwi is ripe")
    edited = await post(client, group_id, bob, "see you at the harbour")
    deleted = await post(client, group_id, bob, "the kiwi password is hunter2")

    path = f"/api/v1/groups/{group_id}/messages"
    response = await client.patch(
        f"{path}/{edited['id']}", json={"body": "see you at the station"}, headers=bob.headers
    )
    assert response.status == 200
    response = await client.delete(f"{path}/{deleted['id']}", headers=alice.headers)
    assert response.status == 204

    assert await bodies(client, bob, "harbour") == []
    assert await bodies(client, bob, "station") == ["see you at the station"]
    assert await bodies(client, bob, "kiwi") == [kept["body"]]
    assert await bodies(client, bob, "hunter2 OR password") == []
    # Edited twice: only the latest text counts.
    response = await client.patch(
        f"{path}/{edited['id']}", json={"body": "see you at the airport"}, headers=bob.headers
    )
    assert response.status == 200
    assert await bodies(client, bob, "station OR harbour") == []
    [hit] = (await search(client, bob, "airport"))["items"]
    assert hit["message"]["edited_at"] is not None
    assert_index_consistent(config)


async def test_a_deleted_group_leaves_nothing_behind(client: TestClient, config: Config) -> None:
    alice = await sign_up(client, "alice")
    doomed = await new_group(client, alice)
    staying = await new_group(client, alice)
    await post(client, doomed, alice, "ephemeral words")
    await post(client, staying, alice, "lasting words")
    response = await client.delete(f"/api/v1/groups/{doomed}", headers=alice.headers)
    assert response.status == 204
    assert await bodies(client, alice, "words") == ["lasting words"]
    # A message stored after the deletion may take a freed rowid: it is
    # found for its own words only.
    await post(client, staying, alice, "fresh text")
    assert await bodies(client, alice, "ephemeral") == []
    assert await bodies(client, alice, "fresh") == ["fresh text"]
    assert_index_consistent(config)


def assert_index_consistent(config: Config) -> None:
    """FTS5's own check of the index against the messages table. (On
    PostgreSQL the search column is written with its row, in the same
    statement: there is no separate index to drift.)"""
    if config.database.url:
        return
    conn = sqlite3.connect(config.database_path)
    try:
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        conn.close()


async def test_snippets_mark_the_matches_with_private_use_characters(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    group_id = await new_group(client, alice)
    long_text = " ".join(["filler"] * 60 + ["needle"] + ["filler"] * 60)
    await post(client, group_id, alice, long_text)
    await post(client, group_id, alice, "<script>alert(1)</script> needle & <b>thread</b>")
    await post(client, group_id, alice, f"{HIGHLIGHT_START}fake{HIGHLIGHT_END} needle")

    items = {
        item["message"]["body"]: item for item in (await search(client, alice, "needle"))["items"]
    }
    # Long messages: a passage around the match, cut with ellipses.
    snippet = items[long_text]["snippet"]
    assert f"{HIGHLIGHT_START}needle{HIGHLIGHT_END}" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) < len(long_text) / 2
    # Markup stays text as it was typed: nothing is escaped or added.
    html = items["<script>alert(1)</script> needle & <b>thread</b>"]["snippet"]
    assert (
        html == f"<script>alert(1)</script> {HIGHLIGHT_START}needle{HIGHLIGHT_END} & <b>thread</b>"
    )
    # Markers typed into a message are not taken for highlights.
    fake = items[f"{HIGHLIGHT_START}fake{HIGHLIGHT_END} needle"]["snippet"]
    assert fake == f"\ufffdfake\ufffd {HIGHLIGHT_START}needle{HIGHLIGHT_END}"


@pytest.mark.parametrize("sort", ["newest", "relevance"])
async def test_pages_by_cursor(client: TestClient, sort: str) -> None:
    alice = await sign_up(client, "alice")
    group_id = await new_group(client, alice)
    for index in range(7):
        await post(client, group_id, alice, f"common word number {index}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3", "sort": sort} | ({"cursor": cursor} if cursor else {})
        page = await search(client, alice, "common", **params)
        seen += [item["message"]["body"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    if sort == "newest":
        assert seen == [f"common word number {index}" for index in reversed(range(7))]

    # A cursor belongs to its search: another query, order or group is refused.
    first = await search(client, alice, "common", limit="3", sort=sort)
    other_sort = "relevance" if sort == "newest" else "newest"
    for changed in ({"q": "word"}, {"sort": other_sort}, {"group_id": group_id}):
        params = {"q": "common", "sort": sort, "cursor": first["next_cursor"]} | changed
        assert await refusal(client, alice, params) == (400, "invalid_cursor"), changed
    for garbage in ("x", "!!!", "MTAwMDAwMDAwMDAwMDAuYQ", "Li4u", "-1", "n5"):
        params = {"q": "common", "sort": sort, "cursor": garbage}
        assert await refusal(client, alice, params) == (400, "invalid_cursor"), garbage


async def test_bad_parameters_are_400s(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    for params, code in [
        ({}, "missing_query"),
        ({"q": ""}, "missing_query"),
        ({"q": "   "}, "missing_query"),
        ({"q": "x" * 501}, "query_too_long"),
        ({"q": "x", "sort": "oldest"}, "invalid_sort"),
        ({"q": "x", "limit": "0"}, "invalid_limit"),
        ({"q": "x", "limit": "101"}, "invalid_limit"),
    ]:
        assert (await refusal(client, alice, params))[1] == code, params
    unauthenticated = await client.get(SEARCH, params={"q": "x"})
    assert unauthenticated.status == 401


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
    "NEAR(budget draft, 2)",
    "NEAR/2",
    "body:",
    "name:*",
    "group_id:01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "rowid:1",
    "rank:1",
    "messages_fts:budget",
    "{body}: budget",
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
    "-",
    "--",
    "-budget",
    "- budget",
    "budget " + "-x " * 150,  # a chain of exclusions (FTS5 nests NOT)
    "(" * 250 + "budget",
    "a OR " * 99 + "a",
    "🎉",
    "👨‍👩‍👧 🎉",
    "'; DROP TABLE messages; --",
    "1 OR 1=1",
    '" OR ""="',
    'budget" OR rowid > 0 --',
    "MATCH budget",
    "snippet(messages_fts, 0, '<b>', '</b>', '', 9)",
    "[budget]",
    "\\",
    '\\"',
    "+budget",
    "budget|draft",
    "~budget",
    "%",
    "_",
    "x" * 500,
    "é" * 500,
    "\u202e budget",
    "\uffff\ufffe",
    "\ue000budget\ue001",
    "\u0301\u0301",
]

# q exactly as it arrives in a URL: NUL, broken UTF-8, surrogates encoded.
HOSTILE_ENCODED = ["%00", "budget%00", "%ED%A0%80", "%FF%FE", "%C0%AF", "%22%00%22", "a%0Ab"]


async def test_hostile_queries_all_answer_200(client: TestClient) -> None:
    assert len(HOSTILE) + len(HOSTILE_ENCODED) >= 30
    alice = await sign_up(client, "alice")
    group_id = await new_group(client, alice)
    for body in ("budget draft", "the budget for 2024"):
        await post(client, group_id, alice, body)
    refused = {}
    for q in HOSTILE:
        for sort in ("newest", "relevance"):
            response = await client.get(
                SEARCH, params={"q": q, "sort": sort}, headers=alice.headers
            )
            if response.status != 200:
                refused[(q, sort)] = (response.status, await response.text())
    for encoded in HOSTILE_ENCODED:
        url = URL(f"{SEARCH}?q={encoded}", encoded=True)
        response = await client.get(url, headers=alice.headers)
        if response.status != 200:
            refused[(encoded, "raw")] = (response.status, await response.text())
    assert refused == {}
    # The queries above that still mean something find what they should.
    both = {"budget draft", "the budget for 2024"}
    assert set(await bodies(client, alice, "(budget OR")) == both
    assert set(await bodies(client, alice, "^budget")) == both
    assert await bodies(client, alice, "budget " + "-x " * 150) != []
    assert await bodies(client, alice, "budget -draft") == ["the budget for 2024"]
    assert await bodies(client, alice, "-budget") == []
