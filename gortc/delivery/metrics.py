"""GET /metrics, and the middleware that counts and times every request."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time

from aiohttp import hdrs, web
from prometheus_client.exposition import choose_encoder

from gortc.delivery.keys import CONFIG, LIVE, METRICS
from gortc.delivery.routing import ApiRoute, Handler

# The route label of requests no route matched (404s, 405s): one series
# for all of them, whatever paths scanners try.
UNMATCHED = "unmatched"
# The status of a request whose client went away before its answer (nginx's).
CLIENT_GONE = 499
# Set by note_upgrade. A list, shared by the clones of the request that
# middlewares make (their state is a shallow copy).
_UPGRADED = web.RequestKey("upgraded", list[bool])
# The searches an operator watches by name (gortc_search_duration_seconds),
# by route template: the whole answer, as the person searching waits for it.
SEARCH_ROUTES = {
    "/api/v1/messages/search": "messages",
    "/api/v1/files/search": "files",
    "/api/v1/users/search": "people",
}


def may_scrape(client: str | None, authorization: str, token: str) -> bool:
    """Loopback clients may; others only with ``Bearer <metrics.token>``
    (never when the token is empty)."""
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(client or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket's IPv4 client
    return address.is_loopback


def route_of(request: web.Request) -> str:
    """The route template a request matched (``/api/v1/groups/{group_id}``)."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


@web.middleware
async def measure_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts each request by route template, method and status, and times it."""
    started = time.perf_counter()
    status = 500
    upgraded: list[bool] = []
    request[_UPGRADED] = upgraded
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        # A WebSocket's request lasts as long as the socket (and aiohttp
        # cancels it when the client goes): counted as its upgrade, untimed.
        if upgraded:
            status = 101
        timed = status not in (101, CLIENT_GONE)
        seconds = time.perf_counter() - started if timed else None
        route = route_of(request)
        figures = request.app[METRICS]
        figures.observe_request(route, request.method, status, seconds)
        search = SEARCH_ROUTES.get(route)
        if search is not None and status == 200 and seconds is not None:
            figures.observe_search(search, seconds)


async def note_upgrade(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: marks the requests that became WebSockets."""
    if response.status == 101 and _UPGRADED in request:
        request[_UPGRADED].append(True)


async def metrics(request: web.Request) -> web.Response:
    token = request.app[CONFIG].metrics.token
    if not may_scrape(request.remote, request.headers.get(hdrs.AUTHORIZATION, ""), token):
        raise web.HTTPNotFound()
    figures = request.app[METRICS]
    rooms = await request.app[LIVE].rooms()
    figures.set_live(len(rooms), sum(room.viewers for room in rooms))
    encode, content_type = choose_encoder(request.headers.get(hdrs.ACCEPT, ""))
    response = web.Response(body=encode(figures.registry))
    response.headers[hdrs.CONTENT_TYPE] = content_type
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    return response


ROUTES = [
    ApiRoute(
        "GET",
        "/metrics",
        metrics,
        "The server's figures for Prometheus",
        "system",
        auth=False,
        errors=(404,),
        response_content_type="text/plain",
        description="Prometheus text format. Answers clients on loopback, and others that "
        "send `Authorization: Bearer <metrics.token>`; 404 to everyone else.",
    ),
]
