"""The OpenAPI 3.1 document, built from the route table and the body models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gortc import __version__
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import ErrorBody

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
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_parameters(route.path)
        ]
        parameters += [
            {"name": name, "in": "query", "schema": {"type": kind}, "description": text}
            for name, kind, text in route.query
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
        if route.request is not None:
            errors |= {400, 413, 415}
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


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
