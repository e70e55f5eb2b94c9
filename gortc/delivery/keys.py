"""Every object the application holds, under one typed key each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gortc.adapters.metrics import Metrics
from gortc.config import Config
from gortc.delivery.live_relay import LiveRelay
from gortc.delivery.routing import ApiRoute
from gortc.hub.hub import Hub
from gortc.usecases.accounts import AccountService
from gortc.usecases.admin import AdminService
from gortc.usecases.calls import CallService
from gortc.usecases.chat import ChatService
from gortc.usecases.direct_uploads import DirectUploadService
from gortc.usecases.files import FileService
from gortc.usecases.groups import GroupService
from gortc.usecases.live import LiveService
from gortc.usecases.ports import MediaRouter
from gortc.usecases.search import SearchService
from gortc.usecases.signed_urls import SignedUrlService
from gortc.usecases.ws_tickets import WebSocketTickets

CONFIG = web.AppKey("config", Config)
ACCOUNTS = web.AppKey("accounts", AccountService)
ADMIN = web.AppKey("admin", AdminService)
GROUPS = web.AppKey("groups", GroupService)
CHAT = web.AppKey("chat", ChatService)
CALLS = web.AppKey("calls", CallService)
MEDIA_ROUTER = web.AppKey("media_router", MediaRouter)
LIVE = web.AppKey("live", LiveService)
# Fetches rooms ingested by other instances (with several instances).
LIVE_RELAY = web.AppKey("live_relay", LiveRelay)
# The RTMP ingest, once it listens (its port, for tests and /healthz).
RTMP_SERVER = web.AppKey("rtmp_server", object)
FILES = web.AppKey("files", FileService)
SIGNED_URLS = web.AppKey("signed_urls", SignedUrlService)
DIRECT_UPLOADS = web.AppKey("direct_uploads", DirectUploadService)
SEARCH = web.AppKey("search", SearchService)
HUB = web.AppKey("hub", Hub)
# Tickets that open the WebSocket on any instance (usecases/ws_tickets.py).
WS_TICKETS = web.AppKey("ws_tickets", WebSocketTickets)
# The application's Prometheus registry and the metrics counted as they happen.
METRICS = web.AppKey("metrics", Metrics)
API_ROUTES = web.AppKey("api_routes", list[ApiRoute])
REQUEST_ID = web.RequestKey("request_id", str)
OPENAPI_JSON = web.AppKey("openapi_json", bytes)
# name -> probe answering a short status, raising when the component is down
HEALTH_PROBES = web.AppKey("health_probes", dict[str, Callable[[], Awaitable[str]]])
