"""Reading and validating JSON request bodies, and writing JSON answers."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gortc.delivery.keys import CONFIG
from gortc.entities.errors import InvalidInput, TooLarge, UnsupportedMediaType

Model = TypeVar("Model", bound=BaseModel)


async def read_json(request: web.Request, model: type[Model]) -> Model:
    """The body parsed into ``model``, at most ``server.max_body_bytes`` long;
    InvalidInput, TooLarge or UnsupportedMediaType naming what is wrong."""
    max_bytes = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge(f"the request body is larger than {max_bytes} bytes")
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"send the body as application/json, not {request.content_type or 'nothing'}"
        )
    raw = await read_body(request, max_bytes)
    if len(raw) > max_bytes:
        raise TooLarge(f"the request body is larger than {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8", code="malformed_json") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="malformed_json",
        ) from None
    except RecursionError:
        # json.loads recurses per level of nesting: "[[[[...]]]]" a few
        # thousand deep exhausts the stack. A client's mistake, not a 500.
        raise InvalidInput("the body's JSON is nested too deeply", code="malformed_json") from None
    return validate(model, data)


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, or its first ``max_bytes + 1`` bytes when it is longer
    (the caller then answers 413): never more is held. One ``read(n)`` is not
    enough: it returns what has arrived so far, so a body split over several
    TCP segments (any body past one packet, on a real network) would be cut
    short and answered 400."""
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = await request.content.read(max_bytes + 1 - size)
        if not chunk:
            break  # the end of the body
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def validate(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_error(exc, model)
        raise InvalidInput(
            "; ".join(problem["message"] for problem in problems),
            code=_code_of(model, exc),
            details=problems,
        ) from None


# Errors of a bound the model declares (a length, a pattern, a range), as
# opposed to a wrong type or shape.
_BOUND_ERRORS = frozenset(
    {
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "too_short",
        "too_long",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
    }
)


def _code_of(model: type[BaseModel], exc: ValidationError) -> str:
    """The code the domain gives a field's rule (``invalid_username``...)
    when the model refused the field for that rule's bound; else invalid_body."""
    codes: dict[str, str] = getattr(model, "error_codes", {})
    for error in exc.errors(include_url=False):
        if error["type"] not in _BOUND_ERRORS or not error["loc"]:
            continue
        field = str(error["loc"][0])
        code = codes.get(f"{field}/{error['type']}") or codes.get(field)
        if code is not None:
            return code
    return "invalid_body"


def describe_validation_error(
    exc: ValidationError, model: type[BaseModel] | None = None
) -> list[dict[str, str]]:
    return [_describe(error, model) for error in exc.errors(include_url=False)]


def _describe(error: Any, model: type[BaseModel] | None) -> dict[str, str]:
    where = ".".join(str(part) for part in error["loc"]) or "body"
    kind = error["type"]
    if kind == "string_pattern_mismatch":
        # pydantic's own words quote the regular expression: not for people.
        # The field's description says the rule in words, where it has one.
        field = model.model_fields.get(str(error["loc"][0])) if model and error["loc"] else None
        rule = field.description if field is not None else None
        message = f"{where} must be {rule}" if rule else f"{where} has a form it may not have"
    elif kind == "missing":
        message = f"{where} is required"
    elif kind == "extra_forbidden":
        message = f"{where} is not a known field"
    elif kind == "model_type":
        message = "the body must be a JSON object"
    else:
        message = f"{where}: {error['msg']}"
    return {"field": where, "message": message, "type": kind}


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        body=model.model_dump_json().encode("utf-8"),
        status=status,
        content_type="application/json",
    )
