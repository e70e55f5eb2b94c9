"""Sign-ins, the tokens they hand out, and other short-lived secrets."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class SessionKind(enum.StrEnum):
    TOKEN = "token"  # an API client holding a refresh token family
    COOKIE = "cookie"  # a browser holding an encrypted session cookie


class OneTimePurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    kind: SessionKind
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    user_agent: str = ""
    ip: str = ""

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: str
    session_id: str
    access_jti: str
    access_expires_at: datetime
    created_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: str
    session_id: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class OneTimeToken:
    token_hash: str
    user_id: str
    purpose: OneTimePurpose
    email: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Invite:
    id: str
    code_hash: str
    created_by: str | None
    note: str
    created_at: datetime
    expires_at: datetime
    used_by: str | None
    used_at: datetime | None
