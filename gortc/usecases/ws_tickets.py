"""WebSocket tickets: what lets a browser open the real-time connection on
another instance of the deployment than the one that served its page.

The web client's credential is its session cookie, which an instance at
another host name (server.instance_url, where a call it hosts is
signalled) never receives, and which the page cannot read (HttpOnly). So
the page asks its own server for a ticket (POST /api/v1/ws/tickets) and
opens ``wss://that-instance/api/v1/ws?ticket=…``.

A ticket names the sign-in it was made for (user, session and, for a
bearer sign-in, its access token's jti) and when it expires; an HMAC
under a key of its own (see ``adapters/hmac_signer.py``) covers those, so
every instance sharing the server's secret can check it, and it can never
be taken for an access token, a viewer token or a signed URL. It is good
for one thing only, opening one WebSocket, once, within a minute (it
travels in a URL, which proxies may log: a logged ticket is a used one);
the caller also checks that its sign-in still lives (``AccountService
.check_still_signed_in``), so signing out ends it at once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from gortc.entities.errors import Unauthenticated
from gortc.usecases.ports import Clock, Signer

QUERY_PARAMETER = "ticket"
# Opening a socket takes a moment; a minute covers a slow network and
# keeps a ticket that leaked (into a proxy's log) nearly worthless.
DEFAULT_LIFETIME_SECONDS = 60
# Changing what is signed changes this, so older tickets stop matching.
_VERSION = "gortc websocket ticket v1"
_ID = r"[A-Za-z0-9_-]{1,64}"
# user . session . jti ("-" for a cookie sign-in) . expiry . nonce . signature
_TICKET = re.compile(
    rf"({_ID})\.({_ID})\.({_ID})\.([0-9]{{1,15}})\.([A-Za-z0-9_-]{{16,64}})"
    rf"\.([A-Za-z0-9_-]{{20,100}})"
)
_NO_JTI = "-"


class UsedTickets(Protocol):
    """Remembers the tickets used, until they expire, wherever they were
    used (with several instances: in Redis)."""

    async def first_use(self, ticket_id: str, expires_at: int) -> bool:
        """True the first time ``ticket_id`` is presented; False after."""
        ...


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket as handed out, and what it is good for."""

    ticket: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TicketClaim:
    """What a ticket with a good signature, not yet expired, says."""

    user_id: str
    session_id: str
    jti: str | None  # the access token it was made with; None for a cookie


class WebSocketTickets:
    """Makes and checks tickets (no I/O: the sign-in is checked by the
    caller). ``verify`` raises Unauthenticated for a ticket we did not
    make, or one that has expired."""

    def __init__(
        self,
        signer: Signer,
        clock: Clock,
        used: UsedTickets,
        lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
    ) -> None:
        self._signer = signer
        self._clock = clock
        self._used = used
        self._lifetime = lifetime_seconds

    def mint(self, user_id: str, session_id: str, jti: str | None) -> Ticket:
        expires = int(self._clock.now().timestamp()) + self._lifetime
        return Ticket(
            self.ticket(user_id, session_id, jti, expires), datetime.fromtimestamp(expires, UTC)
        )

    def ticket(self, user_id: str, session_id: str, jti: str | None, expires: int) -> str:
        """A new ticket for these values (also how tests make expired ones).
        The nonce makes each one different, so each is used once."""
        jti_field = jti or _NO_JTI
        nonce = secrets.token_urlsafe(16)
        fields = _fields(user_id, session_id, jti_field, str(expires), nonce)
        return f"{user_id}.{session_id}.{jti_field}.{expires}.{nonce}.{self._signer.sign(fields)}"

    async def redeem(self, ticket: str) -> TicketClaim:
        """What a good ticket says, the first time it is presented; raises
        Unauthenticated otherwise."""
        claim, nonce, expires = self._verify(ticket)
        if not await self._used.first_use(nonce, expires):
            raise Unauthenticated(
                "this ticket was used already: ask POST /api/v1/ws/tickets for a new one "
                "for every WebSocket",
                code="ticket_used",
            )
        return claim

    def _verify(self, ticket: str) -> tuple[TicketClaim, str, int]:
        match = _TICKET.fullmatch(ticket)
        if match is None:
            raise _invalid()
        user_id, session_id, jti, expires, nonce, signature = match.groups()
        if not self._signer.verify(_fields(user_id, session_id, jti, expires, nonce), signature):
            raise _invalid()
        if int(expires) <= self._clock.now().timestamp():
            raise Unauthenticated(
                "this ticket has expired: ask POST /api/v1/ws/tickets for a new one just "
                "before opening the WebSocket",
                code="ticket_expired",
            )
        claim = TicketClaim(user_id, session_id, None if jti == _NO_JTI else jti)
        return claim, nonce, int(expires)


def _fields(user_id: str, session_id: str, jti: str, expires: str, nonce: str) -> list[str]:
    return [_VERSION, user_id, session_id, jti, expires, nonce]


def _invalid() -> Unauthenticated:
    return Unauthenticated(
        "this is not a WebSocket ticket of this server: use the ticket of "
        "POST /api/v1/ws/tickets exactly as it is",
        code="invalid_ticket",
    )
