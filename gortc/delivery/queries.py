"""Query-string parameters, checked like bodies are."""

from __future__ import annotations

from aiohttp import web

from gortc.entities.errors import InvalidInput


def limit_param(request: web.Request, default: int = 50, maximum: int = 200) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise InvalidInput(
            f"limit must be a whole number from 1 to {maximum}", code="invalid_limit"
        )
    return int(raw)


def seq_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(f"{name} must be a message seq (a whole number)", code="invalid_cursor")
    return int(raw)


def text_param(request: web.Request, name: str, max_length: int = 64) -> str | None:
    raw = request.query.get(name)
    if raw is not None and len(raw) > max_length:
        raise InvalidInput(f"{name} is too long", code="invalid_cursor")
    return raw or None
