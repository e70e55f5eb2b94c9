"""ChatService's reactions and replies, driven through fakes of its ports:
what is stored, what the group is told, and what is refused."""

from __future__ import annotations

import pytest

from gortc.entities.errors import Conflict, InvalidInput, NotFound
from gortc.entities.events import MessageDeleted
from gortc.entities.reactions import MAX_REACTIONS_PER_MESSAGE, Reaction
from tests.unit.fakes import Chat, make_chat

GROUP = "g-team"
OTHER = "g-other"


@pytest.fixture
def chat() -> Chat:
    return make_chat(GROUP, OTHER)


async def test_a_reaction_is_stored_told_once_and_takes_a_change(chat: Chat) -> None:
    message = await chat.service.send("ann", GROUP, "lunch?")
    chat.clock.advance(60)

    reacted = await chat.service.react("ben", GROUP, message.id, "👍")
    assert reacted.reactions == (Reaction("👍", ("ben",)),)
    assert reacted.change == message.change + 1
    assert reacted.edited_at is None
    assert chat.updates() == [reacted]

    # Idempotent: the same reaction again changes and tells nothing.
    assert await chat.service.react("ben", GROUP, message.id, "👍") == reacted
    assert chat.updates() == [reacted]

    removed = await chat.service.unreact("ben", GROUP, message.id, "👍")
    assert removed.reactions == () and removed.change == reacted.change + 1
    assert await chat.service.unreact("ben", GROUP, message.id, "👍") == removed
    assert chat.updates() == [reacted, removed]


async def test_the_twenty_first_emoji_is_refused_and_nothing_changes(chat: Chat) -> None:
    message = await chat.service.send("ann", GROUP, "vote")
    emojis = [chr(0x1F600 + n) for n in range(MAX_REACTIONS_PER_MESSAGE)]
    for emoji in emojis:
        await chat.service.react("ann", GROUP, message.id, emoji)
    told = len(chat.updates())

    with pytest.raises(Conflict) as refused:
        await chat.service.react("ben", GROUP, message.id, "🚀")
    assert refused.value.code == "too_many_reactions"
    assert len(chat.updates()) == told
    # An emoji already there is still welcome.
    joined = await chat.service.react("ben", GROUP, message.id, emojis[0])
    assert joined.reactions[0] == Reaction(emojis[0], ("ann", "ben"))


async def test_reactions_to_what_is_not_there_are_not_found(chat: Chat) -> None:
    message = await chat.service.send("ann", GROUP, "hi")
    chat.uow.tables.members.pop((GROUP, "ben"))
    with pytest.raises(NotFound) as outsider:
        await chat.service.react("ben", GROUP, message.id, "👍")
    assert outsider.value.code == "group_not_found"
    with pytest.raises(NotFound) as elsewhere:
        await chat.service.react("ann", OTHER, message.id, "👍")
    assert elsewhere.value.code == "message_not_found"

    await chat.service.react("ann", GROUP, message.id, "👍")
    await chat.service.delete("ann", GROUP, message.id)
    assert chat.uow.tables.reactions == []  # gone with the message
    with pytest.raises(NotFound) as deleted:
        await chat.service.unreact("ann", GROUP, message.id, "👍")
    assert deleted.value.code == "message_not_found"
    assert isinstance(chat.events.sent[-1][2], MessageDeleted)


async def test_a_bad_emoji_is_refused_before_anything_is_read(chat: Chat) -> None:
    message = await chat.service.send("ann", GROUP, "hi")
    committed = chat.uow.committed
    with pytest.raises(InvalidInput) as refused:
        await chat.service.react("ann", GROUP, message.id, "<b>")
    assert refused.value.code == "invalid_emoji"
    assert chat.uow.committed == committed and chat.uow.rolled_back == 0


async def test_a_reply_carries_the_quote_of_what_it_answers(chat: Chat) -> None:
    question = await chat.service.send("ann", GROUP, "x" * 250)
    reply = await chat.service.send("ben", GROUP, "yes", reply_to=question.id)
    assert chat.store.drafts[-1].reply_to_id == question.id
    assert reply.reply_to is not None
    assert (reply.reply_to.id, reply.reply_to.sender_id) == (question.id, "ann")
    assert reply.reply_to.body == "x" * 200 and not reply.reply_to.deleted


async def test_a_direct_reply_in_a_conversation_not_made_yet_makes_nothing(chat: Chat) -> None:
    stranger = await chat.service.send("ann", OTHER, "in another group")
    with pytest.raises(InvalidInput) as refused:
        await chat.service.send_direct("ann", "ben", "hi", reply_to=stranger.id)
    assert refused.value.code == "invalid_reply"
    assert chat.uow.tables.direct_keys == {}
    assert chat.store.drafts[-1].body == "in another group"  # nothing queued
