"""Bodies of the group, message and WebSocket APIs, declared once: REST
answers, WebSocket events and the OpenAPI document all come from these."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from gortc.delivery.schemas import Request, Timestamp
from gortc.entities.files import FileSummary
from gortc.entities.groups import (
    FORBIDDEN_IN_BODY,
    GROUP_NAME_MAX_LENGTH,
    MESSAGE_MAX_LENGTH,
    QUOTE_MAX_LENGTH,
    Group,
    GroupKind,
    Invitation,
    MemberView,
    Message,
    MyGroup,
    Quote,
    Role,
)
from gortc.entities.reactions import Reaction
from gortc.entities.rights import Action, allowed_actions
from gortc.entities.timestamps import to_text
from gortc.usecases.groups import ListedGroup, ListedMember
from gortc.usecases.groups import UserRef as UserReference


class AttachedFileView(BaseModel):
    """A file a message carries, as much as a client needs to show it."""

    id: str
    name: str
    size: int = Field(description="Bytes")
    content_type: str

    @classmethod
    def of(cls, file: FileSummary) -> AttachedFileView:
        return cls(id=file.id, name=file.name, size=file.size, content_type=file.content_type)


class ReactionView(BaseModel):
    """One emoji on a message: how many put it there, and who, in order."""

    emoji: str
    count: int
    user_ids: list[str]

    @classmethod
    def of(cls, reaction: Reaction) -> ReactionView:
        return cls(emoji=reaction.emoji, count=reaction.count, user_ids=list(reaction.user_ids))


class QuoteView(BaseModel):
    """What a reply shows of the message it answers, as that message is now."""

    id: str
    sender_id: str | None
    body: str = Field(
        description=f"Its body, cut to {QUOTE_MAX_LENGTH} characters; empty once it was deleted"
    )
    deleted: bool

    @classmethod
    def of(cls, quote: Quote) -> QuoteView:
        return cls(id=quote.id, sender_id=quote.sender_id, body=quote.body, deleted=quote.deleted)


class MessageView(BaseModel):
    id: str
    group_id: str
    sender_id: str | None
    body: str
    created_at: Timestamp
    seq: int
    edited_at: Timestamp | None
    file_ids: list[str]
    client_id: str | None = Field(
        description="The id its sender gave it (message.send, POST … client_id), if any"
    )
    change: int = Field(
        description="The group's change number of the message's latest change "
        "(creation, edit or deletion); see sync after_change"
    )
    files: list[AttachedFileView] = Field(
        description="The attached files that still exist, in the order of file_ids "
        "(an id without an entry here was deleted by its owner); the group's members "
        "may read them: GET /api/v1/files/{id} and /content"
    )
    reply_to: QuoteView | None = Field(
        description="The message (of the same group) this one answers, if it is a reply"
    )
    reactions: list[ReactionView] = Field(
        description="Emojis on the message, each where it was first used, with its "
        "users in the order they came; PUT/DELETE …/reactions/{emoji}"
    )

    @classmethod
    def of(cls, message: Message) -> MessageView:
        return cls(
            id=message.id,
            group_id=message.group_id,
            sender_id=message.sender_id,
            body=message.body,
            created_at=message.created_at,
            seq=message.seq,
            edited_at=message.edited_at,
            file_ids=list(message.file_ids),
            client_id=message.client_id,
            change=message.change,
            files=[AttachedFileView.of(file) for file in message.files],
            reply_to=None if message.reply_to is None else QuoteView.of(message.reply_to),
            reactions=[ReactionView.of(reaction) for reaction in message.reactions],
        )


def message_json(message: Message) -> dict[str, Any]:
    """``MessageView.of(message).model_dump(mode="json")``, without pydantic:
    every message sent is encoded twice (its event and its ack), and building
    and dumping the model cost more than storing it. A test keeps the two the same."""
    edited_at = message.edited_at
    return {
        "id": message.id,
        "group_id": message.group_id,
        "sender_id": message.sender_id,
        "body": message.body,
        "created_at": to_text(message.created_at),
        "seq": message.seq,
        "edited_at": None if edited_at is None else to_text(edited_at),
        "file_ids": list(message.file_ids),
        "client_id": message.client_id,
        "change": message.change,
        "files": [
            {"id": file.id, "name": file.name, "size": file.size, "content_type": file.content_type}
            for file in message.files
        ],
        "reply_to": None
        if (quote := message.reply_to) is None
        else {
            "id": quote.id,
            "sender_id": quote.sender_id,
            "body": quote.body,
            "deleted": quote.deleted,
        },
        "reactions": [
            {
                "emoji": reaction.emoji,
                "count": len(reaction.user_ids),
                "user_ids": list(reaction.user_ids),
            }
            for reaction in message.reactions
        ],
    }


class GroupInfo(BaseModel):
    """A group as everyone in it sees it."""

    id: str
    name: str
    kind: Literal["group", "direct"]
    owner_id: str | None
    created_at: Timestamp
    last_seq: int

    @classmethod
    def of(cls, group: Group) -> GroupInfo:
        return cls(
            id=group.id,
            name=group.name,
            kind=group.kind.value,
            owner_id=group.owner_id,
            created_at=group.created_at,
            last_seq=group.last_seq,
        )


class GroupView(GroupInfo):
    """A group as the caller sees it: with their role, what it lets them do,
    and their unread count."""

    role: Literal["owner", "admin", "member"]
    permissions: list[Action] = Field(
        description="Every action the caller's role may take in this group, sorted: "
        "the server's rights table applied, so clients need no copy of it"
    )
    read_seq: int
    unread: int
    unread_mentions: int = Field(
        description="Unread messages of others (after read_seq, not deleted) that "
        "mention @<your username> as a whole word, case-insensitive; counted among the "
        "group's newest 1,000 messages"
    )
    peer: str | None = Field(None, description="The other user of a direct conversation")

    @classmethod
    def of_mine(cls, mine: MyGroup) -> GroupView:
        return cls(
            **GroupInfo.of(mine.group).model_dump(),
            role=mine.role.value,
            permissions=list(
                allowed_actions(mine.role, direct=mine.group.kind is GroupKind.DIRECT)
            ),
            read_seq=mine.read_seq,
            unread=mine.unread,
            unread_mentions=mine.unread_mentions,
            peer=mine.peer_id,
        )


class ListedGroupView(GroupView):
    """A group in GET /api/v1/groups."""

    peer_online: bool | None = Field(
        None, description="Whether the peer of a direct conversation is connected now"
    )

    @classmethod
    def of_listed(cls, listed: ListedGroup) -> ListedGroupView:
        return cls(**GroupView.of_mine(listed.mine).model_dump(), peer_online=listed.peer_online)


class MemberOut(BaseModel):
    user_id: str
    username: str
    display_name: str
    role: Literal["owner", "admin", "member"]
    joined_at: Timestamp

    @classmethod
    def of(cls, view: MemberView) -> MemberOut:
        return cls(
            user_id=view.member.user_id,
            username=view.username,
            display_name=view.display_name,
            role=view.member.role.value,
            joined_at=view.member.joined_at,
        )


class ListedMemberOut(MemberOut):
    """A member in GET /api/v1/groups/{group_id}/members."""

    online: bool = Field(description="Connected now (on any instance)")

    @classmethod
    def of_listed(cls, listed: ListedMember) -> ListedMemberOut:
        return cls(**MemberOut.of(listed.view).model_dump(), online=listed.online)


class InvitationView(BaseModel):
    id: str
    group_id: str
    group_name: str
    user_id: str = Field(description="The invitee")
    inviter_id: str | None
    created_at: Timestamp

    @classmethod
    def of(cls, invitation: Invitation) -> InvitationView:
        return cls(
            id=invitation.id,
            group_id=invitation.group_id,
            group_name=invitation.group_name,
            user_id=invitation.user_id,
            inviter_id=invitation.inviter_id,
            created_at=invitation.created_at,
        )


class GroupList(BaseModel):
    items: list[ListedGroupView]
    next_cursor: str | None


class MemberList(BaseModel):
    items: list[ListedMemberOut]


class InvitationList(BaseModel):
    items: list[InvitationView]


class MessagePage(BaseModel):
    """A page of history, newest first, whichever way it was asked for."""

    items: list[MessageView]
    next_cursor: str | None = Field(
        description="Pass as ?before= for the page of older messages; null when there are none"
    )
    newer_cursor: str | None = Field(
        description="Pass as ?after= for the page of newer messages; null when the page "
        "holds the newest message (new ones then arrive as message.created)",
    )


# -- requests -----------------------------------------------------------------

UserRef = Annotated[str, Field(min_length=1, max_length=64)]


# Something besides white space (what the group's name keeps of it); the
# domain also refuses control and other unprintable characters.
_GROUP_NAME: Any = Field(max_length=GROUP_NAME_MAX_LENGTH, pattern=r"\S")


class CreateGroup(Request):
    name: str = _GROUP_NAME

    error_codes: ClassVar[dict[str, str]] = {"name": "invalid_group_name"}


class RenameGroup(Request):
    name: str = _GROUP_NAME

    error_codes: ClassVar[dict[str, str]] = {"name": "invalid_group_name"}


class InviteMember(Request):
    """Someone named by exactly one of user_id or username."""

    # What _one_user checks, for the OpenAPI document.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("user_id", "username")
            ]
        }
    )

    user_id: UserRef | None = None
    username: UserRef | None = None

    @model_validator(mode="after")
    def _one_user(self) -> Self:
        if (self.user_id is None) == (self.username is None):
            raise ValueError("give exactly one of user_id or username")
        return self

    @property
    def target(self) -> UserReference:
        return UserReference(user_id=self.user_id, username=self.username)


class AddMember(InviteMember):
    role: Literal["admin", "member"] = "member"


class ChangeRole(Request):
    role: Literal["admin", "member"]

    @property
    def as_role(self) -> Role:
        return Role(self.role)


class TransferOwnership(Request):
    user_id: UserRef


_BODY: Any = Field(
    max_length=20_000, description="1–4,000 characters; may be empty when the message carries files"
)
_FILE_IDS: Any = Field(default_factory=list, max_length=20)
ClientId = Annotated[str, Field(max_length=100)]
_REPLY_TO: Any = Field(
    None,
    min_length=1,
    max_length=64,
    description="The id of the message this one answers: one of the same conversation, "
    "not deleted (400 invalid_reply otherwise; nothing is stored)",
)


# A REST message's text: its bounds in the model (WebSocket frames keep
# theirs in the domain, which answers invalid_body_text in an error frame).
_TEXT: Any = Field(
    max_length=MESSAGE_MAX_LENGTH,
    # No control characters but tab and newline.
    pattern=f"^[^{FORBIDDEN_IN_BODY}]*$",
    description=f"At most {MESSAGE_MAX_LENGTH} characters, not only white space unless the "
    "message carries files; no control characters but tab and newline",
)
_TEXT_CODES = {"body": "invalid_body_text"}


class PostMessage(Request):
    body: str = _TEXT
    file_ids: list[Annotated[str, Field(max_length=64)]] = _FILE_IDS
    client_id: ClientId | None = Field(
        None,
        description="Your own id for this message (at most 100 characters). Posting "
        "again with one you already used in this conversation stores nothing new and "
        "answers with the message stored the first time, as it is now.",
    )
    reply_to: str | None = _REPLY_TO

    error_codes: ClassVar[dict[str, str]] = _TEXT_CODES
    # Text, or files (what check_message_body allows), for the OpenAPI document.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"body": {"pattern": r"\S"}}},
                {"required": ["file_ids"], "properties": {"file_ids": {"minItems": 1}}},
            ]
        }
    )


class EditMessage(Request):
    body: str = _TEXT

    error_codes: ClassVar[dict[str, str]] = _TEXT_CODES


# Seqs are SQLite integers: anything past this is no message anyone has.
MAX_SEQ = 2**62


class MarkRead(Request):
    seq: StrictInt = Field(ge=0, le=MAX_SEQ)


# -- WebSocket frames from clients ------------------------------------------

Id = Annotated[str, Field(min_length=1, max_length=64)]


class SendFrame(Request):
    type: Literal["message.send"]
    group_id: Id
    body: str = _BODY
    client_id: ClientId | None = None
    file_ids: list[Annotated[str, Field(max_length=64)]] = _FILE_IDS
    reply_to: str | None = _REPLY_TO


class EditFrame(Request):
    type: Literal["message.edit"]
    group_id: Id
    message_id: Id
    body: str = _BODY
    client_id: ClientId | None = None


class DeleteFrame(Request):
    type: Literal["message.delete"]
    group_id: Id
    message_id: Id
    client_id: ClientId | None = None


class SyncFrame(Request):
    """By seq (``after_seq``, the original form) or by change
    (``after_change``, which also replays edits and deletions of older
    messages); with both, ``after_change`` decides."""

    type: Literal["sync"]
    group_id: Id
    after_seq: int | None = Field(None, ge=0, le=MAX_SEQ)
    after_change: int | None = Field(None, ge=0, le=MAX_SEQ)
    client_id: ClientId | None = None

    @model_validator(mode="after")
    def _a_starting_point(self) -> Self:
        if self.after_seq is None and self.after_change is None:
            raise ValueError("give after_seq or after_change")
        return self


class TypingFrame(Request):
    type: Literal["typing"]
    group_id: Id
    client_id: ClientId | None = None


class ReadFrame(Request):
    type: Literal["read"]
    group_id: Id
    seq: int = Field(ge=0, le=MAX_SEQ)
    client_id: ClientId | None = None
