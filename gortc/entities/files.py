"""Files of the personal file store and the hits of a search among them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Around the matched words in a search hit's name and snippet. Private-use
# characters cannot be markup, so a client that renders hits as text is safe
# whatever a file contains; the indexed text never holds them (they are
# replaced when a file is indexed), so every one in a hit is a marker.
HIGHLIGHT_START = "\ue000"
HIGHLIGHT_END = "\ue001"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file of one owner. ``sha256`` names its bytes in the blob store;
    several files (of anyone) may share them."""

    id: str
    owner_id: str
    name: str
    size: int
    content_type: str
    sha256: str
    searchable: bool  # its name and text are in the owner's search index
    not_searchable_reason: str | None  # a sentence, when not searchable
    index_truncated: bool  # only the start of a long text is searchable
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FileSummary:
    """What a message shows of a file attached to it, for rendering."""

    id: str
    name: str
    size: int
    content_type: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    file: StoredFile
    score: float  # higher is better
    name_highlight: str  # the name, matched words between the markers
    snippet: str  # a passage of the text, matched words between the markers
