"""Query-string parameters, checked like bodies are, each declared once: the
object that reads a parameter is also what the OpenAPI document shows of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gortc.entities.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class QueryParam:
    """One query-string parameter as the OpenAPI document describes it."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Limit:
    """A page size from 1 to ``maximum``; ``default`` when absent."""

    default: int
    maximum: int
    description: str = "Page size"

    def read(self, request: web.Request) -> int:
        raw = request.query.get("limit")
        if raw is None:
            return self.default
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.maximum:
            raise InvalidInput(
                f"limit must be a whole number from 1 to {self.maximum}", code="invalid_limit"
            )
        return int(raw)

    @property
    def parameter(self) -> QueryParam:
        return QueryParam(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": self.maximum, "default": self.default},
            f"{self.description} (1–{self.maximum}, default {self.default})",
        )


def limit_param(request: web.Request, default: int = 50, maximum: int = 200) -> int:
    return Limit(default, maximum).read(request)


# Seqs are SQLite integers; 18 digits keep any seq in range.
SEQ_DIGITS = 18


@dataclass(frozen=True, slots=True)
class Seq:
    """A message seq (a cursor of a history page); absent or empty: none."""

    name: str
    description: str

    def read(self, request: web.Request) -> int | None:
        raw = request.query.get(self.name)
        if raw is None or raw == "":
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > SEQ_DIGITS:
            raise InvalidInput(
                f"{self.name} must be a message seq (a whole number)", code="invalid_cursor"
            )
        return int(raw)

    @property
    def parameter(self) -> QueryParam:
        seq = {"type": "integer", "minimum": 0, "maximum": 10**SEQ_DIGITS - 1}
        # Empty means "not given", as if it were absent.
        return QueryParam(self.name, {"anyOf": [seq, {"const": ""}]}, self.description)


def seq_param(request: web.Request, name: str) -> int | None:
    return Seq(name, "").read(request)


_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
ID_PATTERN = f"^{_ID.pattern}$"


@dataclass(frozen=True, slots=True)
class IdCursor:
    """An id-shaped cursor (the next_cursor of an earlier page)."""

    name: str
    description: str = "The next_cursor of the previous page"

    def read(self, request: web.Request) -> str | None:
        raw = request.query.get(self.name)
        if raw is None or raw == "":
            return None
        if not _ID.fullmatch(raw):
            raise InvalidInput(
                f"{self.name} must be the next_cursor of a page", code="invalid_cursor"
            )
        return raw

    @property
    def parameter(self) -> QueryParam:
        # Empty means "the first page", as if it were absent.
        schema = {"anyOf": [{"type": "string", "pattern": ID_PATTERN}, {"const": ""}]}
        return QueryParam(self.name, schema, self.description)


def id_param(request: web.Request, name: str) -> str | None:
    return IdCursor(name).read(request)


def text_parameter(
    name: str, description: str, *, max_length: int, required: bool = False
) -> QueryParam:
    """A free-text parameter; a use case checks it against the same bound.
    ``required``: absent or blank (only what str.strip() removes) is refused."""
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if required:
        schema["pattern"] = r"\S"
    return QueryParam(name, schema, description, required)
