"""Request ids, the access log, error mapping and response hardening."""

from __future__ import annotations

import logging
import re
import secrets
import time

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gortc.delivery.allowed_methods import allowed_methods
from gortc.delivery.errors import domain_error_response, error_response, http_error_response
from gortc.delivery.keys import REQUEST_ID
from gortc.delivery.proxies import client_address
from gortc.delivery.routing import Handler
from gortc.entities.errors import DomainError
from gortc.logs import enter_request, leave_request

access_log = logging.getLogger("gortc.access")
log = logging.getLogger("gortc.http")

REQUEST_ID_HEADER = "X-Request-Id"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives the request an id (the client's, if sane), which every line
    logged while handling it carries, and logs one access line for it."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _CLIENT_REQUEST_ID.fullmatch(offered) else secrets.token_hex(8)
    request[REQUEST_ID] = request_id
    context = enter_request(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        # The path as sent (still percent-encoded: a %0A cannot start a
        # forged log line) and never the query string, which may carry
        # credentials: ?access_token=, a viewer token ?vt=, a signature.
        path = request.rel_url.raw_path
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        # Behind one of server.trusted_proxies: the forwarded client.
        client = client_address(request) or "-"
        access_log.info(
            "%s %s %d %.1fms client=%s",
            request.method,
            path,
            status,
            duration_ms,
            client,
            extra={
                "method": request.method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "client": client,
                "request_id": request_id,
            },
        )
        leave_request(context)


@web.middleware
async def error_mapping(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes the API's JSON error body. Client mistakes get
    their 4xx; anything unexpected is a generic 500 and a logged traceback."""
    try:
        return await handler(request)
    except DomainError as exc:
        return domain_error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 405:
            methods = allowed_methods(request.app.router, request.rel_url.path_safe)
            if methods:
                exc.headers["Allow"] = ",".join(methods)
        return http_error_response(exc)
    except HttpProcessingError as exc:
        # A body the client garbled (e.g. a broken multipart): its fault.
        if not 400 <= exc.code < 500:
            raise
        return error_response(
            exc.code, "malformed_request", f"the request is malformed: {exc.message}"
        )
    except Exception:
        request_id = request.get(REQUEST_ID, "-")
        log.exception(
            "unexpected error on %s %s",
            request.method,
            request.rel_url.raw_path,
            extra={"request_id": request_id},
        )
        return error_response(
            500,
            "internal_error",
            f"something went wrong on the server; quote request id {request_id}",
        )


# For every answer that does not set its own (all but the web client's
# page): JSON, media, files and scripts need no permission to run or load
# anything, should a browser ever render one as a page, and no answer of
# ours may be framed by another site (clickjacking).
STRICT_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


async def harden_response(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: headers every answer carries (errors, files,
    media, the WebSocket upgrade and the web client alike)."""
    response.headers.setdefault("Content-Security-Policy", STRICT_CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for old browsers
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if REQUEST_ID_HEADER not in response.headers and REQUEST_ID in request:
        response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
