"""Viewer tokens: what lets a plain HLS player (VLC, ffplay, a ``<video>``
tag) that sends no headers and no cookies play a live room.

A token names a room's viewer and the sign-in it was made for, and when it
expires; an HMAC under a key of its own (see ``adapters/hmac_signer.py``)
covers those and the room, so it is good for that room only. It travels in
the query (``?vt=``) of the room's ``hls_url`` and, written in by the server
on every playlist fetch, of every URI the playlist lists. It is never the
access token: a URL ends up in player histories, logs and shared links, and
a leaked viewer token lets one watch one room for minutes, not act as the
user. Whoever checks a token also checks that its sign-in still lives
(``LiveService.admit_viewer``), so signing out ends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from gortc.entities.errors import Unauthenticated
from gortc.usecases.ports import Clock, Signer

QUERY_PARAMETER = "vt"
# Changing what is signed changes this, so older tokens stop matching.
_VERSION = "gortc live viewer v1"
_ID = r"[A-Za-z0-9_-]{1,64}"
_TOKEN = re.compile(rf"({_ID})\.({_ID})\.([0-9]{{1,15}})\.([A-Za-z0-9_-]{{20,100}})")


@dataclass(frozen=True, slots=True)
class ViewerClaim:
    """What a token with a good signature says."""

    user_id: str
    session_id: str
    expires_at: datetime
    signature: str  # the token's own id (the rest is in the clear)


class ViewerTokens:
    """Makes and checks viewer tokens (no I/O: the sign-in is checked by
    the caller). ``verify`` raises Unauthenticated ``invalid_viewer_token``
    for a token that is not one we made for this room; the caller decides
    what an expired one may still do (``ViewerClaim.expires_at``)."""

    def __init__(self, signer: Signer, clock: Clock, lifetime_seconds: int = 600) -> None:
        self._signer = signer
        self._clock = clock
        self._lifetime = lifetime_seconds
        # Expiries are rounded up to a step, so the token a playlist carries
        # stays the same from one fetch to the next (its URIs do not change
        # under the player, and caches can keep them) while always having
        # at least lifetime - step to run.
        self._step = max(1, lifetime_seconds // 4)

    @property
    def lifetime_seconds(self) -> int:
        return self._lifetime

    def mint(self, room_id: str, user_id: str, session_id: str) -> str:
        now = int(self._clock.now().timestamp())
        expires = (now + self._lifetime - self._step) // self._step * self._step + self._step
        return self.token(room_id, user_id, session_id, expires)

    def token(self, room_id: str, user_id: str, session_id: str, expires: int) -> str:
        """The token for these values (also how tests make expired ones)."""
        signature = self._signer.sign(_fields(room_id, user_id, session_id, str(expires)))
        return f"{user_id}.{session_id}.{expires}.{signature}"

    def verify(self, room_id: str, token: str) -> ViewerClaim:
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise _invalid()
        user_id, session_id, expires, signature = match.groups()
        if not self._signer.verify(_fields(room_id, user_id, session_id, expires), signature):
            raise _invalid()
        return ViewerClaim(
            user_id=user_id,
            session_id=session_id,
            expires_at=datetime.fromtimestamp(int(expires), UTC),
            signature=signature,
        )

    def expired(self, claim: ViewerClaim) -> bool:
        return claim.expires_at <= self._clock.now()


def _fields(room_id: str, user_id: str, session_id: str, expires: str) -> list[str]:
    return [_VERSION, room_id, user_id, session_id, expires]


def _invalid() -> Unauthenticated:
    return Unauthenticated(
        "this viewer token is not valid for this live room: use the room's hls_url "
        "exactly as GET /api/v1/live gives it",
        code="invalid_viewer_token",
    )


def viewer_token_expired() -> Unauthenticated:
    return Unauthenticated(
        "this viewer token has expired: get the room's hls_url again from GET /api/v1/live",
        code="viewer_token_expired",
    )
