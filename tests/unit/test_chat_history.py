"""ChatService.history through fakes: which messages each kind of page
holds, and whether it says more lie on either side."""

from __future__ import annotations

import pytest

from gortc.entities.errors import InvalidInput
from gortc.usecases.chat import HistoryPage
from tests.unit.fakes import Chat, make_chat

GROUP = "g-team"


def seqs(page: HistoryPage) -> tuple[list[int], bool, bool]:
    return [m.seq for m in page.messages], page.more_older, page.more_newer


@pytest.fixture
async def ten() -> Chat:
    chat = make_chat(GROUP)
    for n in range(1, 11):
        await chat.service.send("ann", GROUP, f"m{n}")
    return chat


async def test_pages_of_each_kind(ten: Chat) -> None:
    history = ten.service.history
    assert seqs(await history("ben", GROUP, limit=4)) == ([10, 9, 8, 7], True, False)
    assert seqs(await history("ben", GROUP, limit=4, before_seq=3)) == ([2, 1], False, True)
    assert seqs(await history("ben", GROUP, limit=3, after_seq=4)) == ([7, 6, 5], True, True)
    assert seqs(await history("ben", GROUP, limit=3, after_seq=8)) == ([10, 9], True, False)
    assert seqs(await history("ben", GROUP, limit=4, around_seq=5)) == ([7, 6, 5, 4], True, True)
    assert seqs(await history("ben", GROUP, limit=5, around_seq=5)) == (
        [7, 6, 5, 4, 3],
        True,
        True,
    )
    # Near the ends the other side fills the page.
    assert seqs(await history("ben", GROUP, limit=4, around_seq=10)) == (
        [10, 9, 8, 7],
        True,
        False,
    )
    assert seqs(await history("ben", GROUP, limit=4, around_seq=1)) == ([4, 3, 2, 1], False, True)
    assert seqs(await history("ben", GROUP, limit=1, around_seq=5)) == ([5], True, True)


async def test_deleted_messages_are_not_counted_on_either_side(ten: Chat) -> None:
    for message in list(ten.uow.tables.messages.values()):
        if message.seq in (9, 10):
            await ten.service.delete("ann", GROUP, message.id)
    page = await ten.service.history("ben", GROUP, limit=2, around_seq=8)
    assert seqs(page) == ([8, 7], True, False)


async def test_one_starting_point_at_most(ten: Chat) -> None:
    with pytest.raises(InvalidInput) as refused:
        await ten.service.history("ben", GROUP, limit=4, before_seq=5, around_seq=3)
    assert refused.value.code == "invalid_cursor"
