"""Groups (and direct conversations), their members, invitations, messages."""

from __future__ import annotations

import enum
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from gortc.entities.errors import InvalidInput
from gortc.entities.files import FileSummary
from gortc.entities.reactions import Reaction

GROUP_NAME_MAX_LENGTH = 100
MESSAGE_MAX_LENGTH = 4000
# A reply shows this much of the message it answers.
QUOTE_MAX_LENGTH = 200


class GroupKind(enum.StrEnum):
    GROUP = "group"
    DIRECT = "direct"  # exactly two members, made by the first message


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    kind: GroupKind
    owner_id: str | None
    created_at: datetime
    last_seq: int = 0
    # The group's change counter: every creation, edit and deletion of one
    # of its messages takes the next value (see Message.change).
    last_change: int = 0


@dataclass(frozen=True, slots=True)
class Member:
    group_id: str
    user_id: str
    role: Role
    joined_at: datetime
    read_seq: int = 0


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member with the names people see."""

    member: Member
    username: str
    display_name: str


@dataclass(frozen=True, slots=True)
class MyGroup:
    """A group as one of its members sees it in their list."""

    group: Group
    role: Role
    read_seq: int
    unread: int
    peer_id: str | None = None  # the other user, for a direct conversation
    # Unread messages of others that mention the member (see mentions()).
    unread_mentions: int = 0


@dataclass(frozen=True, slots=True)
class Invitation:
    id: str
    group_id: str
    user_id: str  # the invitee
    inviter_id: str | None
    created_at: datetime
    group_name: str = ""


@dataclass(frozen=True, slots=True)
class Quote:
    """What a reply shows of the message it answers, read when the reply is
    shown: its current body, cut to QUOTE_MAX_LENGTH characters, or nothing
    (and ``deleted``) once that message was deleted."""

    id: str
    sender_id: str | None
    body: str
    deleted: bool

    @classmethod
    def of(cls, message_id: str, sender_id: str | None, body: str, deleted: bool) -> Quote:
        return cls(
            id=message_id,
            sender_id=sender_id,
            body="" if deleted else body[:QUOTE_MAX_LENGTH],
            deleted=deleted,
        )


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    group_id: str
    seq: int
    sender_id: str | None
    body: str
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    file_ids: tuple[str, ...] = ()
    # The sender's own id for it, if one was given: sending again with the
    # same one gives back this message instead of a second one.
    client_id: str | None = None
    # Numbers from the group's change counter: of the latest change to the
    # message (its creation, last edit or deletion), and of its creation.
    # A client that knows every change up to N catches up by asking for the
    # messages whose ``change`` is above N.
    change: int = 0
    created_change: int = 0
    # The attached files that still exist, in the order of ``file_ids``; an
    # id of file_ids without one here was deleted by its owner.
    files: tuple[FileSummary, ...] = ()
    # The message this one answers (same group), as it is now.
    reply_to: Quote | None = None
    # Emojis people put on it, in the order each was first used.
    reactions: tuple[Reaction, ...] = ()

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message before it is stored and numbered."""

    id: str
    group_id: str
    sender_id: str
    body: str
    created_at: datetime
    file_ids: tuple[str, ...] = ()
    client_id: str | None = None
    # A message of the same group, not deleted (checked when it is stored).
    reply_to_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """What storing a draft gave. ``is_new`` is False when the draft's
    client_id named a message its sender had already stored in that group:
    ``message`` is then that earlier message, as it is now."""

    message: Message
    is_new: bool


# ASCII letters only, as SQLite's lower() folds them: the repository's
# search for candidates and this rule agree on every text.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def mentions(body: str, username: str) -> bool:
    """Whether ``body`` mentions the user: ``@username`` as a whole word,
    in any case of its ASCII letters. Whole word: no letter, digit, ``_``,
    ``.``, ``-`` or ``@`` right before the ``@`` (so ``bob@alice.org`` is an
    address, not a mention), and right after the name neither a letter,
    digit, ``_`` or ``-``, nor a ``.`` followed by one of those (``@alice.``
    ends a sentence; ``@alice.smith`` is someone else)."""
    pattern = rf"(?<![\w.@-])@{re.escape(username)}(?![\w-]|\.[\w-])"
    return re.search(pattern, body.translate(_ASCII_LOWER)) is not None


def mention_counts(bodies: Iterable[tuple[str, str]], username: str) -> dict[str, int]:
    """How many of the (group id, body) pairs mention the user, per group."""
    counts: dict[str, int] = {}
    for group_id, body in bodies:
        if mentions(body, username):
            counts[group_id] = counts.get(group_id, 0) + 1
    return counts


def with_quotes(
    messages: Sequence[Message], reply_to_ids: Sequence[str | None], quotes: dict[str, Quote]
) -> list[Message]:
    """The messages with the quote of what each answers (``quotes`` by id; a
    message no longer there is shown as deleted). A deleted reply shows
    nothing, its quote included."""
    return [
        replace(message, reply_to=quotes.get(reply_to_id) or Quote.of(reply_to_id, None, "", True))
        if reply_to_id is not None and not message.is_deleted
        else message
        for message, reply_to_id in zip(messages, reply_to_ids, strict=True)
    ]


def quoted_ids(messages: Sequence[Message], reply_to_ids: Sequence[str | None]) -> list[str]:
    """The ids ``with_quotes`` needs quotes of, each once."""
    return sorted(
        {
            reply_to_id
            for message, reply_to_id in zip(messages, reply_to_ids, strict=True)
            if reply_to_id is not None and not message.is_deleted
        }
    )


def invalid_reply() -> InvalidInput:
    return InvalidInput(
        "reply_to must be a message of this conversation that exists and is not deleted",
        code="invalid_reply",
    )


def direct_key(user_a: str, user_b: str) -> str:
    """The one key of the direct conversation between two users."""
    first, second = sorted((user_a, user_b))
    return f"{first}:{second}"


def normalize_group_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise InvalidInput("the group needs a name", code="invalid_group_name")
    if len(name) > GROUP_NAME_MAX_LENGTH:
        raise InvalidInput(
            f"a group name is at most {GROUP_NAME_MAX_LENGTH} characters",
            code="invalid_group_name",
        )
    if any(not ch.isprintable() for ch in name):
        raise InvalidInput("the group name contains control characters", code="invalid_group_name")
    return name


# C0 and C1 controls but tab and newline, and lone surrogates (which JSON's
# \uD800 escapes can smuggle in, and which are not encodable as UTF-8).
# (As regular-expression text, which the API's models and its OpenAPI
# document use too; surrogates cannot travel in UTF-8 at all.)
FORBIDDEN_IN_BODY = r"\x00-\x08\x0b-\x1f\x7f-\x9f"
_FORBIDDEN_IN_BODY = re.compile(f"[{FORBIDDEN_IN_BODY}\ud800-\udfff]")


def check_message_body(body: str, *, with_files: bool = False) -> str:
    """1–4,000 characters; newline and tab are the only control characters.
    A message that carries files may have no text (a picture on its own)."""
    if not body.strip() and not with_files:
        raise InvalidInput("the message is empty", code="invalid_body_text")
    if len(body) > MESSAGE_MAX_LENGTH:
        raise InvalidInput(
            f"a message is at most {MESSAGE_MAX_LENGTH} characters", code="invalid_body_text"
        )
    if _FORBIDDEN_IN_BODY.search(body):
        raise InvalidInput(
            "the message contains control characters or invalid UTF-8",
            code="invalid_body_text",
        )
    return body
