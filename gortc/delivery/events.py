"""Domain events as WebSocket JSON: each encoded once, for every recipient."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from gortc.delivery.chat_schemas import (
    GroupInfo,
    GroupView,
    InvitationView,
    MemberOut,
    message_json,
)
from gortc.entities.calls import CallParticipant
from gortc.entities.events import (
    CallChanged,
    Event,
    GroupJoined,
    GroupLeft,
    GroupUpdated,
    InvitationCreated,
    InvitationDeclined,
    InvitationPending,
    LiveChatPosted,
    LiveEnded,
    LiveStarted,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    MessageCreated,
    MessageDeleted,
    MessageUpdated,
    MyGroupUpdated,
    PresenceChanged,
    ReadMarkerMoved,
    UserTyping,
)
from gortc.entities.live import LiveRoom
from gortc.entities.timestamps import to_text


def event_body(event: Event) -> dict[str, Any]:
    match event:
        case MessageCreated(message=message):
            return {
                "type": "message.created",
                "message": message_json(message),
            }
        case MessageUpdated(message=message):
            return {
                "type": "message.updated",
                "message": message_json(message),
            }
        case MessageDeleted(group_id=group_id, message_id=message_id, seq=seq, change=change):
            return {
                "type": "message.deleted",
                "group_id": group_id,
                "message_id": message_id,
                "seq": seq,
                "change": change,
            }
        case GroupJoined(group=mine):
            return {
                "type": "group.joined",
                "group": GroupView.of_mine(mine).model_dump(mode="json"),
            }
        case GroupUpdated(group=group):
            return {"type": "group.updated", "group": GroupInfo.of(group).model_dump(mode="json")}
        case MyGroupUpdated(group=mine):
            return {
                "type": "group.updated",
                "group": GroupView.of_mine(mine).model_dump(mode="json"),
            }
        case GroupLeft(group_id=group_id):
            return {"type": "group.left", "group_id": group_id}
        case MemberJoined(member=view):
            return {
                "type": "member.joined",
                "group_id": view.member.group_id,
                "member": MemberOut.of(view).model_dump(mode="json"),
            }
        case MemberUpdated(member=view):
            return {
                "type": "member.updated",
                "group_id": view.member.group_id,
                "member": MemberOut.of(view).model_dump(mode="json"),
            }
        case MemberLeft(group_id=group_id, user_id=user_id):
            return {"type": "member.left", "group_id": group_id, "user_id": user_id}
        case InvitationCreated(invitation=invitation):
            return {
                "type": "invitation.created",
                "invitation": InvitationView.of(invitation).model_dump(mode="json"),
            }
        case InvitationPending(invitation=invitation):
            return {
                "type": "invitation.pending",
                "invitation": InvitationView.of(invitation).model_dump(mode="json"),
            }
        case InvitationDeclined(group_id=group_id, invitation_id=invitation_id, user_id=user_id):
            return {
                "type": "invitation.declined",
                "group_id": group_id,
                "invitation_id": invitation_id,
                "user_id": user_id,
            }
        case UserTyping(group_id=group_id, user_id=user_id):
            return {"type": "typing", "group_id": group_id, "user_id": user_id}
        case ReadMarkerMoved(group_id=group_id, seq=seq):
            return {"type": "read.updated", "group_id": group_id, "seq": seq}
        case PresenceChanged(group_id=group_id, online=online, offline=offline):
            return {
                "type": "presence",
                "group_id": group_id,
                "online": list(online),
                "offline": list(offline),
            }
        case CallChanged(group_id=group_id, participants=participants):
            return {
                "type": "call.participants",
                "group_id": group_id,
                "participants": [participant_json(p) for p in participants],
            }
        case LiveStarted(room=room, hls_base=base):
            return {"type": "live.started", "room": live_room_json(room, base)}
        case LiveEnded(room_id=room_id, reason=reason):
            return {"type": "live.ended", "room_id": room_id, "reason": reason}
        case LiveChatPosted():
            return {
                "type": "live.chat",
                "room_id": event.room_id,
                "user_id": event.user_id,
                "username": event.username,
                "body": event.body,
                "sent_at": to_text(event.sent_at),
                "client_id": event.client_id,
            }
    raise TypeError(f"no wire form for {type(event).__name__}")


def participant_json(participant: CallParticipant) -> dict[str, Any]:
    return {
        "user_id": participant.user_id,
        "audio_muted": participant.audio_muted,
        "video_muted": participant.video_muted,
        "screen_sharing": participant.screen_sharing,
    }


def live_room_json(room: LiveRoom, hls_base: str) -> dict[str, Any]:
    """The room as clients see it; its hls_url on ``hls_base`` (a public
    URL of the server, never room.instance: an instance's own address is
    for the other instances)."""
    return {
        "id": room.id,
        "user_id": room.user_id,
        "username": room.username,
        "title": room.title,
        "started_at": to_text(room.started_at),
        "viewers": room.viewers,
        "hls_url": f"{hls_base}/live/{quote(room.id, safe='')}/index.m3u8",
    }


def encode_event(event: Event) -> bytes:
    return json.dumps(event_body(event), ensure_ascii=False, separators=(",", ":")).encode()


_CREATED_PREFIX = b'{"type":"message.created",'


def created_message_seq(payload: bytes) -> int | None:
    """The seq of an encoded message.created event; None for any other
    event (told by its first bytes, without parsing it)."""
    if not payload.startswith(_CREATED_PREFIX):
        return None
    seq = json.loads(payload)["message"]["seq"]
    return seq if isinstance(seq, int) else None


def encode_frame(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
