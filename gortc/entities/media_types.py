"""The media type a stored file is served with, chosen by the server.

The type a client claims is never used: a file it calls ``text/html`` could
run script on our origin if a browser ever rendered it. Text is served as
plain text (or a passive text type) with its charset; other content gets a
passive type by its extension or ``application/octet-stream``. Every
download is also an attachment with ``nosniff`` (see the delivery layer).
"""

from __future__ import annotations

from gortc.entities.text_content import TextVerdict, extension_of

_TEXT_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".json": "application/json",
}

# Types a browser shows but cannot run code from (no SVG, HTML or XML here).
_BINARY_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tar": "application/x-tar",
    ".7z": "application/x-7z-compressed",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
}

OCTET_STREAM = "application/octet-stream"


def media_type_for(name: str, verdict: TextVerdict) -> str:
    extension = extension_of(name)
    if verdict.charset is not None:
        return f"{_TEXT_TYPES.get(extension, 'text/plain')}; charset={verdict.charset}"
    return _BINARY_TYPES.get(extension, OCTET_STREAM)
