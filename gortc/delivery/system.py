"""Health, the OpenAPI document, and the web client's files."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gortc import __version__
from gortc.delivery.keys import HEALTH_PROBES, OPENAPI_JSON
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import Health

# In a checkout this is a link to the top-level static/; installed, a copy.
STATIC_ROOT = Path(__file__).resolve().parent.parent / "static"
# The client is all our own files: nothing inline, nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def healthz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    healthy = True
    for name, probe in request.app[HEALTH_PROBES].items():
        try:
            detail = await probe()
        except Exception as exc:  # a probe that fails is the finding, not a crash
            detail, healthy = f"failing: {exc}", False
        checks[name] = detail
    body = Health(status="ok" if healthy else "degraded", checks=checks, version=__version__)
    return web.Response(
        text=body.model_dump_json(),
        status=200 if healthy else 503,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_JSON], content_type="application/json")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC_ROOT / "index.html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )


ROUTES = [
    ApiRoute(
        "GET",
        "/healthz",
        healthz,
        "Is the server well",
        "system",
        response=Health,
        auth=False,
        errors=(503,),
    ),
    ApiRoute(
        "GET",
        "/api/openapi.json",
        openapi_document,
        "This document",
        "system",
        auth=False,
        response_content_type="application/json",
    ),
]
