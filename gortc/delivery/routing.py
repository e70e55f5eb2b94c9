"""The API's route table: each route declared once, with its request and
response models, so the router and the OpenAPI document cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from gortc.delivery.queries import QueryParam

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    status: int = 200
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    auth: bool = True
    # Other bodies than JSON: e.g. {"multipart/form-data": {...schema...}}.
    request_content: dict[str, object] | None = None
    response_content_type: str | None = None
    errors: tuple[int, ...] = ()
    # QueryParam (bounds included), or the bare (name, JSON type, description).
    query: tuple[QueryParam | tuple[str, str, str], ...] = ()
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def add_routes(app: web.Application, routes: list[ApiRoute]) -> None:
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
