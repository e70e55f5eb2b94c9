"""Slow clients (slowloris): request bodies that stop arriving.

aiohttp already closes a connection whose request head is not complete
within its ``keepalive_timeout`` of opening or of the previous answer (the
``server.header_timeout_seconds`` setting, given to the runner in
``cli.py``), but once a handler reads the body, nothing bounds the wait for
the next byte: a client announcing a large body and sending one byte a
minute would hold the handler, and its connection, for ever. This guard
watches the body's byte count with one timer per request and, when no byte
came for ``server.body_timeout_seconds``, makes the handler's pending (or
next) read fail; the client gets a 408 and the connection is closed.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Middleware

from gortc.delivery.errors import error_response
from gortc.delivery.routing import Handler


class BodyStalled(TimeoutError):
    """Raised by a body read when the client stopped sending. A TimeoutError,
    so that aiohttp's lingering read after the answer treats it as the end
    of the body, and a handler catching ConnectionError does not mistake it
    for a disconnect."""


class _Watch:
    """One request's body: fails its reads once it makes no progress."""

    def __init__(self, request: web.Request, timeout: float) -> None:
        self._content = request.content
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._seen = self._content.total_bytes
        self.stalled = False
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(timeout, self._check)

    def _check(self) -> None:
        self._timer = None
        content = self._content
        if content.is_eof():
            return  # every byte is in: nothing left to wait for
        if content.total_bytes != self._seen:
            self._seen = content.total_bytes
            self._timer = self._loop.call_later(self._timeout, self._check)
            return
        self.stalled = True
        content.set_exception(BodyStalled(f"no request body byte for {self._timeout:g} s"))

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def stalled_body_guard(timeout: float) -> Middleware:
    """Bounds the wait for each next byte of a request body (see the module)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)  # most requests: no timer at all
        watch = _Watch(request, timeout)
        try:
            return await handler(request)
        except BodyStalled:
            response = error_response(
                408,
                "request_timeout",
                f"the request body stopped arriving (nothing for {timeout:g} s)",
            )
            # The rest of the body will not come: the connection cannot
            # carry another request.
            response.force_close()
            return response
        finally:
            watch.cancel()

    return guard
