"""Query-string parameters, checked like bodies are."""

from __future__ import annotations

import re

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


_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def id_param(request: web.Request, name: str) -> str | None:
    """An id-shaped cursor (the next_cursor of an earlier page)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not _ID.fullmatch(raw):
        raise InvalidInput(f"{name} must be the next_cursor of a page", code="invalid_cursor")
    return raw
