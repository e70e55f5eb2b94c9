"""Telling text from binary while an upload streams past, and keeping the
start of the text for the search index.

The content decides, not the name or the type the client claims: valid
UTF-8 (a byte-order mark allowed) without NUL bytes is text, and so is
UTF-16 that starts with its byte-order mark. Anything else is binary, except
that a file named like a text file (``.txt``, ``.csv`` …) that is not UTF-8
but has no NUL bytes is read as Windows-1252, the usual legacy encoding of
such files (it decodes Latin-1 text the same way).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START

# Names that say "text": only used to accept a legacy (non-UTF-8) encoding
# and to pick the media type; for UTF-8 the content alone decides.
_EXTENSIONS = """
    txt text md markdown csv tsv log json jsonl ndjson xml yaml yml ini conf cfg toml
    html htm rst tex bib srt vtt sql properties env py js ts css sh c h go rs java
"""
TEXT_EXTENSIONS = frozenset(f".{name}" for name in _EXTENSIONS.split())

_LEGACY = "windows-1252"
_NOT_TEXT = "the content is not text (it is not UTF-8 or UTF-16 text), so it is not searchable"
_HAS_NUL = "the content is not text (it contains NUL bytes), so it is not searchable"


def extension_of(name: str) -> str:
    """``.txt`` of ``notes.TXT``; empty when there is none."""
    stem, dot, extension = name.rpartition(".")
    return f".{extension.lower()}" if dot and stem else ""


@dataclass(frozen=True, slots=True)
class TextVerdict:
    """What an upload turned out to be."""

    charset: str | None  # how the bytes decode; None for binary
    text: str | None  # the start of the text to index; None for binary
    truncated: bool  # the file is longer than the text kept
    reason: str | None  # why it is binary

    @property
    def is_text(self) -> bool:
        return self.charset is not None


class TextSniffer:
    """Fed the chunks of one upload in order; ``verdict()`` at the end.

    Keeps at most ``keep_bytes`` of the raw bytes (what gets indexed) and
    checks the rest as it passes, so the memory it needs is bounded whatever
    the size of the file.
    """

    def __init__(self, *, keep_bytes: int, legacy_allowed: bool) -> None:
        self._keep_bytes = keep_bytes
        self._legacy_allowed = legacy_allowed
        self._kept = bytearray()
        self._size = 0
        self._pending = bytearray()  # the first bytes, until the BOM is known
        self._charset: str | None = None
        self._decoder: codecs.IncrementalDecoder | None = None
        self._reason: str | None = None

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if len(self._kept) < self._keep_bytes:
            self._kept += chunk[: self._keep_bytes - len(self._kept)]
        if self._reason is not None:
            return
        if self._charset is None:
            self._pending += chunk
            if len(self._pending) < 2:
                return
            self._start(bytes(self._pending))
            chunk = bytes(self._pending)
            self._pending.clear()
        self._check(chunk, final=False)

    def verdict(self) -> TextVerdict:
        if self._reason is None and self._charset is None:
            self._start(bytes(self._pending))
            self._check(bytes(self._pending), final=True)
        elif self._reason is None:
            self._check(b"", final=True)
        if self._reason is not None or self._charset is None:
            return TextVerdict(None, None, truncated=False, reason=self._reason or _NOT_TEXT)
        truncated = self._size > len(self._kept)
        text = _decode(bytes(self._kept), self._charset)
        # Every marker in a search hit must be one the index put there.
        text = text.replace(HIGHLIGHT_START, "\ufffd").replace(HIGHLIGHT_END, "\ufffd")
        return TextVerdict(self._charset, text, truncated=truncated, reason=None)

    def _start(self, head: bytes) -> None:
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self._charset = "utf-16"
        else:
            self._charset = "utf-8"
        self._decoder = codecs.getincrementaldecoder(self._charset)()

    def _check(self, chunk: bytes, *, final: bool) -> None:
        if self._charset == _LEGACY:
            if b"\x00" in chunk:
                self._reason = _HAS_NUL
            return
        if self._charset == "utf-8" and b"\x00" in chunk:
            self._reason = _HAS_NUL
            return
        assert self._decoder is not None
        try:
            decoded = self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            if self._charset == "utf-8" and self._legacy_allowed:
                self._charset = _LEGACY
                return
            self._reason = _NOT_TEXT
            return
        if "\x00" in decoded:  # UTF-16 spells NUL with two zero bytes
            self._reason = _HAS_NUL


def _decode(kept: bytes, charset: str) -> str:
    # The whole file decodes (checked as it streamed); only the cut at the
    # end of what was kept may split a character, which "ignore" drops.
    if charset == "utf-8":
        return kept.decode("utf-8-sig", errors="ignore")
    if charset == "utf-16":
        return kept[: len(kept) & ~1].decode("utf-16", errors="ignore")
    return kept.decode(charset, errors="replace")
