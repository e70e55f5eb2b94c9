"""How gortc's log lines look: plain text for people, or one JSON object
per line for log collectors (``server.log_format``).

Either way, a line written while a request is being handled names that
request: its id (the one answered in ``X-Request-Id``) is kept in a context
variable that the request middleware sets, so every logger of every layer
gets it without passing it around. A WebSocket is one long request: the
lines its frames cause carry the id of its upgrade request. Tasks started
while handling a request inherit the id (asyncio copies the context).

The JSON formatter is our own (a few lines over the standard library)
rather than python-json-logger: we need exactly these field names, the id
from the context, and nothing else, and one dependency fewer is one fewer
thing to keep in the single binary.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from aiohttp.http_exceptions import HttpProcessingError

LogFormat = Literal["text", "json"]

_request_id: ContextVar[str | None] = ContextVar("gortc_request_id", default=None)

# What every LogRecord has; anything else on a record came in ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "rid",  # TextFormatter's
    "taskName",
}


def enter_request(request_id: str) -> Token[str | None]:
    """Lines logged from now on in this context name ``request_id``."""
    return _request_id.set(request_id)


def leave_request(token: Token[str | None]) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id``: the one passed in ``extra=``,
    else the request being handled, else None."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True


class MalformedRequestFilter(logging.Filter):
    """On aiohttp's server logger: a request too garbled to parse (which
    aiohttp answers 400 itself) is logged as one INFO line naming the
    client and the kind of error, instead of an ERROR with a traceback
    whose message quotes the offending bytes: those may be the request's
    ``Authorization`` header or a query with a token in it, and anyone can
    send garbage, so it is the client's mistake, not the server's error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= error.code < 500:
            said = record.getMessage()  # "Error handling request from <client>"
            record.msg = "%s: a malformed request (%s), answered %d; its bytes are not logged"
            record.args = (said, type(error).__name__, error.code)
            record.exc_info = None
            record.exc_text = None
            record.levelno = min(record.levelno, logging.INFO)
            record.levelname = logging.getLevelName(record.levelno)
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger rid=<id>: message`` (rid only during a request).
    The id goes before the message: the message's end stays where tools
    look for it, and a multi-line message (a mail, a traceback) has it on
    its first line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.rid = f" rid={request_id}" if request_id else ""
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger,
    message, request_id during a request, exception text when there is
    one, and the fields a call passed in ``extra=``. ASCII only, so a
    line can never be split or garbled by what a message contains."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class _GortcHandler(logging.StreamHandler):
    """Ours, to be replaced when logging is set up again (and nobody else's)."""


def configure_logging(level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """One handler on the root logger, writing to stderr (or ``stream``)."""
    handler = _GortcHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _GortcHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(known, MalformedRequestFilter) for known in server.filters):
        server.addFilter(MalformedRequestFilter())
    # Libraries' warnings become log lines of logger "py.warnings": in the
    # log's format (a JSON log stays all JSON), with the request's id.
    logging.captureWarnings(True)
