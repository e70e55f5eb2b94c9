"""The OpenAPI 3.1 document, built from the route table and the body models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gortc import __version__
from gortc.delivery.auth import SAFE_METHODS
from gortc.delivery.queries import QueryParam
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import ErrorBody
from gortc.usecases.live import ROOM_ID_PATTERN

# Path parameters the server checks before looking anything up (400 when
# malformed); the others are looked up as they are (404 when unknown).
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "room_id": {"type": "string", "pattern": f"^{ROOM_ID_PATTERN.pattern}$"},
}

_REF = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "Malformed or invalid input",
    401: "Missing or bad credentials",
    403: "Not allowed",
    404: "Not found, or not visible to the caller",
    409: "Conflicts with what exists",
    413: "Too large",
    415: "Wrong media type",
    429: "Rate limited; see Retry-After",
    503: "A dependency is unavailable",
}


def build_openapi(routes: list[ApiRoute]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": _REF.format(model=model.__name__)}

    error_ref = ref(ErrorBody)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.handler.__name__,
            "summary": route.summary,
            "tags": [route.tag],
            "responses": {},
        }
        if route.description:
            operation["description"] = route.description
        path_names = _path_parameters(route.path)
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": path_schema(name)}
            for name in path_names
        ]
        queries = [_query_param(query) for query in route.query]
        parameters += [
            {
                "name": query.name,
                "in": "query",
                "required": query.required,
                "schema": query.schema,
                "description": query.description,
            }
            for query in queries
        ]
        if parameters:
            operation["parameters"] = parameters
        if route.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(route.request)}},
            }
        elif route.request_content is not None:
            operation["requestBody"] = {"required": True, "content": route.request_content}
        success: dict[str, Any] = {"description": route.summary}
        if route.response is not None:
            success["content"] = {"application/json": {"schema": ref(route.response)}}
        elif route.response_content_type is not None:
            success["content"] = {
                route.response_content_type: {"schema": {"type": "string", "format": "binary"}}
            }
        operation["responses"][str(route.status)] = success
        errors = set(route.errors) | ({401} if route.auth else set())
        # A change signed in by cookie must come from this server's origin
        # (403 cross_site_request, auth.py).
        if route.auth and route.method not in SAFE_METHODS:
            errors.add(403)
        # What a path names may not exist (or not be the caller's to see).
        if path_names:
            errors.add(404)
        if route.request is not None:
            errors |= {400, 413, 415}
        # A parameter with bounds is refused with a 400 when out of them.
        if any(len(query.schema) > 1 or "type" not in query.schema for query in queries):
            errors.add(400)
        if any(name in PATH_PARAMETERS for name in path_names):
            errors.add(400)
        for status in sorted(errors):
            operation["responses"][str(status)] = {
                "description": _ERROR_TEXT.get(status, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        if route.auth:
            operation["security"] = [{"bearer": []}, {"cookie": []}]
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gortc API",
            "version": __version__,
            "description": "Self-hosted real-time communication server.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "gortc_session"},
            },
        },
    }


def _query_param(query: QueryParam | tuple[str, str, str]) -> QueryParam:
    if isinstance(query, QueryParam):
        return query
    name, kind, description = query
    return QueryParam(name, {"type": kind}, description)


def path_schema(name: str) -> dict[str, Any]:
    return PATH_PARAMETERS.get(name, {"type": "string"})


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
