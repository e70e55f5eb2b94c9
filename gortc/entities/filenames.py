"""File names as clients send them, made safe to store, show and download.

A name never reaches the filesystem (blobs are named by their SHA-256), so
these rules protect the people who see and download it: no directories, no
control or direction-changing characters, nothing a desktop refuses to save.
"""

from __future__ import annotations

import re
import unicodedata

from gortc.entities.files import HIGHLIGHT_END, HIGHLIGHT_START

UNTITLED = "untitled"
MAX_NAME_BYTES = 255  # what common filesystems take, in UTF-8
# An extension this long or shorter is kept when a long name is shortened.
_MAX_KEPT_EXTENSION = 16

_PATH_SEPARATORS = re.compile(r"[/\\]")
# Not allowed in Windows file names; a download named with them fails there.
_WINDOWS_UNSAFE = str.maketrans(dict.fromkeys('<>:"|?*', "_"))
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{digit}" for digit in range(1, 10)]
    + [f"lpt{digit}" for digit in range(1, 10)]
)
# Bidirectional controls make "gpj.exe" look like "exe.jpg"; the two
# highlight markers would be taken for highlights in search hits.
_DROPPED = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    + HIGHLIGHT_START
    + HIGHLIGHT_END
)


def sanitize_filename(raw: str | None) -> str:
    """A safe file name from what the client sent: the last path component,
    NFC, without control characters, at most 255 bytes of UTF-8, never
    empty (``untitled``), never a reserved device name of Windows."""
    if not raw:
        return UNTITLED
    name = _PATH_SEPARATORS.split(unicodedata.normalize("NFC", raw))[-1]
    name = "".join(_clean(char) for char in name)
    name = name.translate(_WINDOWS_UNSAFE)
    # Windows drops trailing dots and spaces; "." and ".." are not names.
    name = name.strip(" ").rstrip(". ")
    if not name:
        return UNTITLED
    if name.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
        name = "_" + name
    return _shorten(name)


def _clean(char: str) -> str:
    if char in _DROPPED:
        return ""
    category = unicodedata.category(char)
    if category in ("Zl", "Zp") or char in "\t\n\r\v\f":
        return " "
    if category in ("Cc", "Cs"):  # controls; lone surrogates from a bad decode
        return ""
    return char


def _shorten(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > _MAX_KEPT_EXTENSION:
        stem, extension = name, ""
    tail = f".{extension}" if extension else ""
    room = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    # Cut on a byte boundary; "ignore" drops the character cut in half.
    cut = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore").rstrip(". ")
    return (cut or UNTITLED) + tail
