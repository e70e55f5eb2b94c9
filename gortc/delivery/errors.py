"""Domain errors and HTTP errors to the API's JSON error body."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from gortc.entities.calls import HostedElsewhere
from gortc.entities.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)

STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    HostedElsewhere: 421,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    RateLimited: 429,
    Unavailable: 503,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def status_of(error: DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 400


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    response = web.Response(
        text=json.dumps({"error": body}),
        status=status,
        content_type="application/json",
        headers=headers,
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gortc"'
    return response


def domain_error_response(error: DomainError) -> web.Response:
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return error_response(
        status_of(error), error.code, error.message, details=error.details, headers=headers
    )


def http_error_response(error: web.HTTPException) -> web.Response:
    code = _HTTP_CODES.get(error.status, "http_error")
    message = {
        404: "there is nothing at this address",
        405: f"{error.status} method not allowed here",
        413: "the request body is too large",
    }.get(error.status, error.reason)
    headers = {}
    if "Allow" in error.headers:
        headers["Allow"] = error.headers["Allow"]
    return error_response(error.status, code, message, headers=headers)
