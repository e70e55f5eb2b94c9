"""The hand-written wire form of a message must stay what the declared
schema (MessageView, also in the OpenAPI document) says clients get."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gortc.delivery.chat_schemas import MessageView, message_json
from gortc.entities.files import FileSummary
from gortc.entities.groups import Message, Quote
from gortc.entities.reactions import Reaction

CREATED = datetime(2026, 11, 21, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "message",
    [
        Message(id="01A", group_id="G", seq=1, sender_id="U", body="hi", created_at=CREATED),
        Message(
            id="01B",
            group_id="G",
            seq=2,
            sender_id=None,
            body="fixed ünïcode \U0001f600\nline",
            created_at=CREATED.astimezone(timezone(timedelta(hours=5))),
            edited_at=CREATED + timedelta(minutes=3),
            file_ids=("F1", "F2"),
            client_id="c-42",
            change=7,
            created_change=2,
            files=(FileSummary("F2", "plan ü.txt", 12, "text/plain; charset=utf-8"),),
        ),
        Message(
            id="01C",
            group_id="G",
            seq=3,
            sender_id="U",
            body="agreed",
            created_at=CREATED,
            change=9,
            reply_to=Quote.of("01B", None, "fixed ünïcode", deleted=False),
            reactions=(Reaction("👍🏽", ("U", "V")), Reaction("❤️", ("V",))),
        ),
        Message(
            id="01D",
            group_id="G",
            seq=4,
            sender_id="V",
            body="and this",
            created_at=CREATED,
            reply_to=Quote.of("01A", "U", "hi", deleted=True),
        ),
    ],
)
def test_message_json_matches_the_declared_schema(message: Message) -> None:
    assert message_json(message) == MessageView.of(message).model_dump(mode="json")
    assert set(message_json(message)) == set(MessageView.model_fields)
