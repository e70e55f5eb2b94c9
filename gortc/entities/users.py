"""Users and the rules their names, addresses and passwords follow."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gortc.entities.errors import InvalidInput

USERNAME_PATTERN = re.compile(r"[a-z0-9_.-]{3,32}")
# White space around a username or an email address is dropped (what
# str.strip() drops of it; the API's models allow ASCII's).
_AROUND = "[ \\t\\r\\n]*"
# What a client may send (usernames are case-insensitive), for the API's models.
USERNAME_INPUT_PATTERN = f"^{_AROUND}{USERNAME_PATTERN.pattern.replace('a-z', 'A-Za-z')}{_AROUND}$"
# Deliberately simple: one @, a dot in the domain, no spaces. Deliverability
# is proven by the verification mail, not by a regular expression.
EMAIL_PATTERN = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
EMAIL_INPUT_PATTERN = f"^{_AROUND}{EMAIL_PATTERN.pattern}{_AROUND}$"
EMAIL_MAX_LENGTH = 254
PASSWORD_MIN_LENGTH = 8
# bcrypt reads only the first 72 bytes; longer passwords would silently
# collide, so they are refused instead.
PASSWORD_MAX_BYTES = 72
DISPLAY_NAME_MAX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    email: str
    display_name: str
    password_hash: str
    is_admin: bool
    email_verified: bool
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    avatar_sha256: str | None = None
    avatar_type: str | None = None

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None


def normalize_username(raw: str) -> str:
    """Lower-case and check a username; raises InvalidInput naming the rule."""
    username = raw.strip().lower()
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(
            "username must be 3 to 32 characters of a-z, 0-9, '_', '.' or '-'",
            code="invalid_username",
        )
    return username


def normalize_email(raw: str) -> str:
    email = raw.strip()
    if len(email) > EMAIL_MAX_LENGTH or not EMAIL_PATTERN.fullmatch(email):
        raise InvalidInput("email is not a valid address", code="invalid_email")
    local, _, domain = email.rpartition("@")
    # Domains are case-insensitive; the local part is kept as typed.
    return f"{local}@{domain.lower()}"


def check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(
            f"password must be at least {PASSWORD_MIN_LENGTH} characters",
            code="weak_password",
        )
    if len(password.encode("utf-8")) > PASSWORD_MAX_BYTES:
        raise InvalidInput(
            f"password must be at most {PASSWORD_MAX_BYTES} bytes", code="invalid_password"
        )


def normalize_display_name(raw: str) -> str:
    name = " ".join(raw.split())
    if len(name) > DISPLAY_NAME_MAX_LENGTH:
        raise InvalidInput(
            f"display name must be at most {DISPLAY_NAME_MAX_LENGTH} characters",
            code="invalid_display_name",
        )
    if any(not ch.isprintable() for ch in name):
        raise InvalidInput("display name contains control characters", code="invalid_display_name")
    return name
