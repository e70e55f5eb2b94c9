"""Live streaming: stream keys and the live rooms they open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gortc.entities.errors import Conflict, InvalidInput

TITLE_MAX = 140


@dataclass(frozen=True, slots=True)
class StreamKeyRecord:
    """What is stored of a user's stream key: never the key itself."""

    user_id: str
    nonce: str
    title: str
    created_at: datetime
    public: bool = False  # anyone may play the room, signed in or not


@dataclass(frozen=True, slots=True)
class LiveRoom:
    """A stream being published now. Its id is its streamer's user id: one
    room per streamer, at the same address every time."""

    id: str
    user_id: str
    username: str
    title: str
    started_at: datetime
    viewers: int = 0
    instance: str = ""  # which server instance ingests it (with Redis)


def clean_title(title: str) -> str:
    cleaned = " ".join(title.split())
    if len(cleaned) > TITLE_MAX:
        raise InvalidInput(f"a title has at most {TITLE_MAX} characters", code="invalid_title")
    return cleaned


def already_live() -> Conflict:
    return Conflict("this stream key is already publishing", code="already_live")
