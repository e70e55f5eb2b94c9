"""Bodies of the group, message and WebSocket APIs, declared once: REST
answers, WebSocket events and the OpenAPI document all come from these."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, model_validator

from gortc.delivery.schemas import Request, Timestamp
from gortc.entities.groups import Group, Invitation, MemberView, Message, MyGroup, Role
from gortc.usecases.groups import UserRef as UserReference


class MessageView(BaseModel):
    id: str
    group_id: str
    sender_id: str | None
    body: str
    created_at: Timestamp
    seq: int
    edited_at: Timestamp | None
    file_ids: list[str]

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
        )


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
    """A group as the caller sees it: with their role and unread count."""

    role: Literal["owner", "admin", "member"]
    read_seq: int
    unread: int
    peer: str | None = Field(None, description="The other user of a direct conversation")

    @classmethod
    def of_mine(cls, mine: MyGroup) -> GroupView:
        return cls(
            **GroupInfo.of(mine.group).model_dump(),
            role=mine.role.value,
            read_seq=mine.read_seq,
            unread=mine.unread,
            peer=mine.peer_id,
        )


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


class InvitationView(BaseModel):
    id: str
    group_id: str
    group_name: str
    inviter_id: str | None
    created_at: Timestamp

    @classmethod
    def of(cls, invitation: Invitation) -> InvitationView:
        return cls(
            id=invitation.id,
            group_id=invitation.group_id,
            group_name=invitation.group_name,
            inviter_id=invitation.inviter_id,
            created_at=invitation.created_at,
        )


class GroupList(BaseModel):
    items: list[GroupView]
    next_cursor: str | None


class MemberList(BaseModel):
    items: list[MemberOut]


class InvitationList(BaseModel):
    items: list[InvitationView]


class MessagePage(BaseModel):
    items: list[MessageView]
    next_cursor: str | None = Field(description="Pass as ?before= for older messages")


# -- requests -----------------------------------------------------------------

UserRef = Annotated[str, Field(min_length=1, max_length=64)]


class CreateGroup(Request):
    name: str = Field(max_length=400)


class RenameGroup(Request):
    name: str = Field(max_length=400)


class InviteMember(Request):
    """Someone named by exactly one of user_id or username."""

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


_BODY: Any = Field(max_length=20_000, description="1–4,000 characters")
_FILE_IDS: Any = Field(default_factory=list, max_length=20)


class PostMessage(Request):
    body: str = _BODY
    file_ids: list[Annotated[str, Field(max_length=64)]] = _FILE_IDS


class EditMessage(Request):
    body: str = _BODY


# Seqs are SQLite integers: anything past this is no message anyone has.
MAX_SEQ = 2**62


class MarkRead(Request):
    seq: int = Field(ge=0, le=MAX_SEQ)


# -- WebSocket frames from clients ------------------------------------------

ClientId = Annotated[str, Field(max_length=100)]
Id = Annotated[str, Field(min_length=1, max_length=64)]


class SendFrame(Request):
    type: Literal["message.send"]
    group_id: Id
    body: str = _BODY
    client_id: ClientId | None = None
    file_ids: list[Annotated[str, Field(max_length=64)]] = _FILE_IDS


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
    type: Literal["sync"]
    group_id: Id
    after_seq: int = Field(ge=0, le=MAX_SEQ)
    client_id: ClientId | None = None


class TypingFrame(Request):
    type: Literal["typing"]
    group_id: Id
    client_id: ClientId | None = None


class ReadFrame(Request):
    type: Literal["read"]
    group_id: Id
    seq: int = Field(ge=0, le=MAX_SEQ)
    client_id: ClientId | None = None


ClientFrame = Annotated[
    SendFrame | EditFrame | DeleteFrame | SyncFrame | TypingFrame | ReadFrame,
    Field(discriminator="type"),
]


class ClientFrameEnvelope(BaseModel):
    frame: ClientFrame
