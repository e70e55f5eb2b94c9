"""The one family of domain errors.

Use cases raise these; a single middleware in ``gortc.delivery`` maps each
kind to its HTTP status and the JSON error body of the API contract. The
``code`` is a stable snake_case identifier for clients, the message a
sentence for people.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(DomainError):
    """The request is malformed or breaks a rule about its values (400)."""

    code = "invalid_input"


class Unauthenticated(DomainError):
    """No valid credentials were presented (401)."""

    code = "unauthenticated"


class Forbidden(DomainError):
    """The caller is known but may not do this (403)."""

    code = "forbidden"


class NotFound(DomainError):
    """It does not exist, or the caller may not know that it does (404)."""

    code = "not_found"


class Conflict(DomainError):
    """It clashes with what exists, e.g. a taken username (409)."""

    code = "conflict"


class TooLarge(DomainError):
    """The payload is larger than allowed (413)."""

    code = "too_large"


class UnsupportedMediaType(DomainError):
    """The payload is not of an accepted type (415)."""

    code = "unsupported_media_type"


class RateLimited(DomainError):
    """Too many attempts; try again after ``retry_after`` seconds (429)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency the request needs is down (503)."""

    code = "unavailable"
