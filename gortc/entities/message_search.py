"""Searching messages: the orders offered, a hit, and the page cursor."""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from dataclasses import dataclass

from gortc.entities.errors import InvalidInput
from gortc.entities.groups import Message

# As for file search: enough for any real search, and it bounds the work
# one request can ask of the index (longer is a 400).
QUERY_MAX_LENGTH = 500
# Deeper than this, a page by relevance is not worth computing: bm25 must
# rank every match before it can skip that many.
MAX_RELEVANCE_OFFSET = 10_000


class SearchOrder(enum.StrEnum):
    # Newest first is the default: it is stable from page to page (new
    # messages do not shift later pages) and cheap (the index is read
    # backwards and stops after one page). Relevance scores every match.
    NEWEST = "newest"
    RELEVANCE = "relevance"


@dataclass(frozen=True, slots=True)
class MessageHit:
    message: Message
    # The passage around the matches, each match between HIGHLIGHT_START and
    # HIGHLIGHT_END (entities/files.py): the same markers as file search.
    snippet: str
    score: float  # relevance (bm25, negated): higher is better
    position: int  # where the hit is in its order, for the next page's cursor


@dataclass(frozen=True, slots=True)
class SearchCursor:
    """Where the next page starts: below a position of the index (newest
    first) or after a number of hits (by relevance). Opaque to clients:
    base64url of the number and a fingerprint of the search it belongs to
    (query, group, order), so a cursor cannot be used with another search,
    the same way as file search's."""

    value: int

    def encode(self, search: str) -> str:
        raw = f"{self.value}.{_fingerprint(search)}".encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, cursor: str, search: str) -> SearchCursor:
        """Raises InvalidInput for anything but a cursor of this search."""
        refused = InvalidInput(
            "cursor must be the next_cursor of the same search (q, group_id and sort)",
            code="invalid_cursor",
        )
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise refused from None
        value, _, fingerprint = raw.partition(".")
        if not value.isdigit() or len(value) > 18 or fingerprint != _fingerprint(search):
            raise refused
        return cls(int(value))


def search_identity(text: str, group_id: str | None, order: SearchOrder) -> str:
    """What a cursor is bound to."""
    return f"{order.value}\n{group_id or ''}\n{text}"


def _fingerprint(search: str) -> str:
    return hashlib.sha256(search.encode("utf-8", "surrogatepass")).hexdigest()[:16]
