"""Search as the repositories promise it, on both backends (FTS5 on SQLite;
tsvector, GIN and pg_trgm on PostgreSQL): files, messages and people find
the same things, highlight them alike, and never cross an owner's or a
group's bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START, StoredFile
from gortc.entities.groups import Group, GroupKind, Member, NewMessage, Role
from gortc.entities.ids import new_id
from gortc.entities.message_search import SearchOrder
from gortc.entities.name_search import fold
from gortc.entities.query_syntax import parse_query
from gortc.usecases.ports import UnitOfWork
from tests.integration.backends import Backend
from tests.integration.test_repositories import make_user

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)
SHA = "a" * 64
S, E = HIGHLIGHT_START, HIGHLIGHT_END


@pytest.fixture
def uow(backend: Backend) -> UnitOfWork:
    return backend.uow


async def person(uow: UnitOfWork, username: str, display_name: str = "") -> str:
    user = replace(make_user(username), display_name=display_name or username.title())
    async with uow.transaction() as repos:
        await repos.users.add(user)
        if not await repos.blobs.is_referenced(SHA):
            await repos.blobs.acquire(SHA, 3)
    return user.id


def a_file(owner_id: str, name: str, *, searchable: bool = True) -> StoredFile:
    return StoredFile(
        id=new_id(),
        owner_id=owner_id,
        name=name,
        size=3,
        content_type="text/plain; charset=utf-8",
        sha256=SHA,
        searchable=searchable,
        not_searchable_reason=None if searchable else "binary",
        index_truncated=False,
        created_at=NOW,
        updated_at=NOW,
    )


async def store_files(uow: UnitOfWork, owner_id: str, *files: tuple[str, str]) -> list[str]:
    stored = [a_file(owner_id, name) for name, _ in files]
    async with uow.transaction() as repos:
        await repos.files.add_many(
            [(file, text) for file, (_, text) in zip(stored, files, strict=True)]
        )
    return [file.id for file in stored]


async def find_files(uow: UnitOfWork, owner_id: str, text: str) -> list[str]:
    query = parse_query(text)
    assert query is not None
    async with uow.reading() as repos:
        hits = await repos.files.search(owner_id, query, limit=50, offset=0)
    return [hit.file.name for hit in hits]


# -- files ---------------------------------------------------------------------


async def test_the_query_language_means_the_same_on_both_backends(uow: UnitOfWork) -> None:
    alice = await person(uow, "alice")
    await store_files(
        uow,
        alice,
        ("report.txt", "the annual budget report for the board"),
        ("notes.txt", "budget draft, not final"),
        ("Café menu.txt", "espresso and croissants"),
        ("e-mail.txt", "write an e-mail to the bank"),
        ("budget.txt", "numbers only"),
    )
    assert sorted(await find_files(uow, alice, "budget")) == [
        "budget.txt",
        "notes.txt",
        "report.txt",
    ]
    assert await find_files(uow, alice, '"annual budget"') == ["report.txt"]
    assert await find_files(uow, alice, '"budget annual"') == []
    assert sorted(await find_files(uow, alice, "budget -draft")) == ["budget.txt", "report.txt"]
    assert sorted(await find_files(uow, alice, "espresso OR bank")) == [
        "Café menu.txt",
        "e-mail.txt",
    ]
    assert await find_files(uow, alice, "croiss*") == ["Café menu.txt"]
    assert await find_files(uow, alice, "cafe") == ["Café menu.txt"]  # accents folded
    assert await find_files(uow, alice, "CROISSANTS") == ["Café menu.txt"]  # case folded
    assert await find_files(uow, alice, "name:budget") == ["budget.txt"]
    assert sorted(await find_files(uow, alice, "body:budget")) == ["notes.txt", "report.txt"]
    assert await find_files(uow, alice, "e-mail") == ["e-mail.txt"]
    assert await find_files(uow, alice, "budgets") == []  # no stemming: the words typed


async def test_no_owner_finds_another_owners_files(uow: UnitOfWork) -> None:
    alice = await person(uow, "alice")
    bob = await person(uow, "bob")
    await store_files(uow, alice, ("secret.txt", "the launch code is purple"))
    await store_files(uow, bob, ("mine.txt", "nothing purple here"))
    assert await find_files(uow, bob, "launch") == []
    assert await find_files(uow, bob, "purple") == ["mine.txt"]
    assert await find_files(uow, alice, "purple") == ["secret.txt"]


async def test_hits_carry_highlighted_names_and_passages(uow: UnitOfWork) -> None:
    alice = await person(uow, "alice")
    words = " ".join(f"word{n}" for n in range(60))
    await store_files(uow, alice, ("Budget plan.txt", f"{words} budget {words}"))
    query = parse_query("budget")
    assert query is not None
    async with uow.reading() as repos:
        [hit] = await repos.files.search(alice, query, limit=10, offset=0)
    assert hit.name_highlight == f"{S}Budget{E} plan.txt"
    assert f"{S}budget{E}" in hit.snippet
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert len(hit.snippet) < 400  # a passage, not the text
    assert hit.score == 1.0


async def test_files_page_by_offset_and_leave_the_index_when_renamed_or_deleted(
    uow: UnitOfWork,
) -> None:
    alice = await person(uow, "alice")
    ids = await store_files(uow, alice, *((f"doc{n}.txt", "shared words") for n in range(5)))
    query = parse_query("shared")
    assert query is not None
    async with uow.reading() as repos:
        first = await repos.files.search(alice, query, limit=3, offset=0)
        rest = await repos.files.search(alice, query, limit=3, offset=3)
    assert len(first) == 3 and len(rest) == 2
    assert {hit.file.id for hit in first + rest} == set(ids)

    async with uow.transaction() as repos:
        assert await repos.files.rename(alice, ids[0], "renamed.txt", NOW) is not None
        assert await repos.files.delete(alice, ids[1]) is not None
        assert await repos.files.usage(alice) == (12, 4)
    assert "renamed.txt" in await find_files(uow, alice, "renamed")
    assert await find_files(uow, alice, "doc1") == []
    assert len(await find_files(uow, alice, "shared")) == 4


async def test_unsearchable_files_are_listed_but_never_found(uow: UnitOfWork) -> None:
    alice = await person(uow, "alice")
    hidden = a_file(alice, "photo budget.jpg", searchable=False)
    async with uow.transaction() as repos:
        await repos.files.add(hidden, None)
        listed = await repos.files.list(alice, limit=10)
    assert [file.id for file in listed] == [hidden.id]
    assert await find_files(uow, alice, "budget") == []


# -- messages --------------------------------------------------------------------


async def conversation(uow: UnitOfWork, *members: str) -> str:
    group = Group(id=new_id(), name="team", kind=GroupKind.GROUP, owner_id=None, created_at=NOW)
    async with uow.transaction() as repos:
        await repos.groups.add(group)
        for user_id in members:
            await repos.members.add(Member(group.id, user_id, Role.MEMBER, NOW))
    return group.id


async def test_message_search_stays_in_ones_groups_and_pages_newest_first(
    backend: Backend, uow: UnitOfWork
) -> None:
    alice = await person(uow, "alice")
    bob = await person(uow, "bob")
    ours = await conversation(uow, alice, bob)
    bobs = await conversation(uow, bob)
    store = backend.new_message_store()
    try:
        for n in range(5):
            await store.add(NewMessage(new_id(), ours, bob, f"deploy number {n}", NOW))
        await store.add(NewMessage(new_id(), bobs, bob, "deploy in private", NOW))
    finally:
        await store.close()
    query = parse_query("deploy")
    assert query is not None

    async with uow.reading() as repos:
        first = await repos.messages.search(
            alice, query, group_id=None, order=SearchOrder.NEWEST, below=None, offset=0, limit=3
        )
        rest = await repos.messages.search(
            alice,
            query,
            group_id=None,
            order=SearchOrder.NEWEST,
            below=first[-1].position,
            offset=0,
            limit=3,
        )
        bobs_hits = await repos.messages.search(
            bob, query, group_id=bobs, order=SearchOrder.RELEVANCE, below=None, offset=0, limit=9
        )
    bodies = [hit.message.body for hit in first + rest]
    assert bodies == [f"deploy number {n}" for n in (4, 3, 2, 1, 0)]  # never bob's private one
    assert first[0].snippet == f"{S}deploy{E} number 4"
    assert [hit.message.body for hit in bobs_hits] == ["deploy in private"]


async def test_an_edited_or_deleted_message_is_found_as_it_is_now(
    backend: Backend, uow: UnitOfWork
) -> None:
    alice = await person(uow, "alice")
    group_id = await conversation(uow, alice)
    store = backend.new_message_store()
    try:
        first = (await store.add(NewMessage(new_id(), group_id, alice, "old words", NOW))).message
        second = (await store.add(NewMessage(new_id(), group_id, alice, "gone words", NOW))).message
    finally:
        await store.close()
    async with uow.transaction() as repos:
        await repos.messages.update(replace(first, body="new text", edited_at=NOW))
        await repos.messages.update(replace(second, body="", deleted_at=NOW))

    async def found(text: str) -> list[str]:
        query = parse_query(text)
        assert query is not None
        async with uow.reading() as repos:
            hits = await repos.messages.search(
                alice,
                query,
                group_id=None,
                order=SearchOrder.NEWEST,
                below=None,
                offset=0,
                limit=9,
            )
        return [hit.message.body for hit in hits]

    assert await found("old") == []
    assert await found("new") == ["new text"]
    assert await found("gone") == []


# -- people ----------------------------------------------------------------------


async def test_people_are_found_by_prefix_part_and_typo_and_disabled_ones_never(
    uow: UnitOfWork,
) -> None:
    await person(uow, "alice", "Alice Liddell")
    await person(uow, "zoe", "Zoë Washburne")
    gone = await person(uow, "mallory", "Mallory Malicious")
    async with uow.transaction() as repos:
        user = await repos.users.get(gone)
        assert user is not None
        await repos.users.update(replace(user, disabled_at=NOW))

    async def candidates(text: str) -> set[str]:
        async with uow.reading() as repos:
            users = await repos.users.search_candidates(fold(text), enough=20)
        return {user.username for user in users}

    assert "alice" in await candidates("al")  # a username's start
    assert "alice" in await candidates("lid")  # part of the display name
    assert "zoe" in await candidates("washb")
    assert "alice" in await candidates("alcie")  # letters swapped
    assert "zoe" in await candidates("zoë")
    assert "mallory" not in await candidates("mallory")
    assert "mallory" not in await candidates("malicious")
