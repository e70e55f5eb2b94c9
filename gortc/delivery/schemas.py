"""Request and response bodies, declared once: they validate input, shape
output and are the schemas of the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from gortc.entities.sessions import Invite
from gortc.entities.timestamps import to_text
from gortc.entities.users import (
    DISPLAY_NAME_MAX_LENGTH,
    EMAIL_INPUT_PATTERN,
    EMAIL_MAX_LENGTH,
    PASSWORD_MAX_BYTES,
    PASSWORD_MIN_LENGTH,
    USERNAME_INPUT_PATTERN,
    User,
)

Timestamp = Annotated[
    datetime,
    PlainSerializer(to_text, return_type=str),
    Field(json_schema_extra={"format": "date-time"}),
]


class Request(BaseModel):
    """Unknown fields are refused, so a misspelt field is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    # A field's bounds are declared here once: pydantic checks them and the
    # OpenAPI document shows them. A field that breaks its bound gets the code
    # its domain rule has (by field name, or "field/pydantic error type").
    error_codes: ClassVar[dict[str, str]] = {}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable snake_case identifier of the problem.")
    message: str = Field(description="A sentence for people.")
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# -- accounts ---------------------------------------------------------------


Email = Annotated[str, Field(max_length=EMAIL_MAX_LENGTH, pattern=EMAIL_INPUT_PATTERN)]
# bcrypt's limit is in bytes: at most 72 characters, and at most 72 bytes of UTF-8.
Password = Annotated[
    str,
    Field(
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_BYTES,
        description=f"{PASSWORD_MIN_LENGTH} characters or more, at most "
        f"{PASSWORD_MAX_BYTES} bytes of UTF-8",
    ),
]
_EMAIL_CODES = {"email": "invalid_email"}


def _password_codes(field: str) -> dict[str, str]:
    return {field: "invalid_password", f"{field}/string_too_short": "weak_password"}


class RegisterRequest(Request):
    username: str = Field(
        pattern=USERNAME_INPUT_PATTERN, description="3–32 of a-z 0-9 _ . - (case-insensitive)"
    )
    email: Email
    password: Password
    invite_code: str | None = Field(
        None, max_length=256, description="Required when sign-up is by invitation"
    )

    error_codes: ClassVar[dict[str, str]] = {
        "username": "invalid_username",
        **_EMAIL_CODES,
        **_password_codes("password"),
    }


class LoginRequest(Request):
    login: str = Field(max_length=254, description="Username or email")
    password: str = Field(max_length=1024)


class RefreshRequest(Request):
    refresh_token: str = Field(max_length=256)


class TokenRequest(Request):
    token: str = Field(max_length=256)


class PasswordResetRequest(Request):
    email: Email

    error_codes: ClassVar[dict[str, str]] = _EMAIL_CODES


class PasswordResetConfirm(Request):
    token: str = Field(max_length=256)
    password: Password

    error_codes: ClassVar[dict[str, str]] = _password_codes("password")


class ProfileUpdate(Request):
    display_name: str | None = Field(None, max_length=DISPLAY_NAME_MAX_LENGTH)
    email: Email | None = None
    current_password: str | None = Field(
        None, max_length=1024, description="Needed to change the email"
    )

    error_codes: ClassVar[dict[str, str]] = {"display_name": "invalid_display_name", **_EMAIL_CODES}


class PasswordChange(Request):
    current_password: str = Field(max_length=1024)
    new_password: Password

    error_codes: ClassVar[dict[str, str]] = _password_codes("new_password")


class UserPublic(BaseModel):
    """What any signed-in user may see of another."""

    id: str
    username: str
    display_name: str
    avatar_url: str | None
    created_at: Timestamp

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(**_public_fields(user))


class UserSelf(UserPublic):
    """What a user sees of themself."""

    email: str
    email_verified: bool
    is_admin: bool

    @classmethod
    def of(cls, user: User) -> UserSelf:
        return cls(
            **_public_fields(user),
            email=user.email,
            email_verified=user.email_verified,
            is_admin=user.is_admin,
        )


def _public_fields(user: User) -> dict[str, Any]:
    avatar = (
        f"/api/v1/users/{user.id}/avatar?v={user.avatar_sha256[:12]}"
        if user.avatar_sha256
        else None
    )
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": avatar,
        "created_at": user.created_at,
    }


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name
    expires_in: int = Field(description="Seconds until the access token expires")
    user: UserSelf


class InviteRequest(Request):
    note: str = Field("", max_length=200, description="Who the invite is for")


class InviteView(BaseModel):
    id: str
    note: str
    created_by: str | None
    created_at: Timestamp
    expires_at: Timestamp
    used_by: str | None
    used_at: Timestamp | None

    @classmethod
    def of(cls, invite: Invite) -> InviteView:
        return cls(
            id=invite.id,
            note=invite.note,
            created_by=invite.created_by,
            created_at=invite.created_at,
            expires_at=invite.expires_at,
            used_by=invite.used_by,
            used_at=invite.used_at,
        )


class NewInviteView(InviteView):
    code: str = Field(description="Shown once: give it to the person invited")


class InviteList(BaseModel):
    items: list[InviteView]
    next_cursor: str | None = None


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
    version: str
