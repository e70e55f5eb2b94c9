"""Recognising images by their content, never by what the client claims."""

from __future__ import annotations


def sniff_image_type(data: bytes) -> str | None:
    """The media type of a PNG, JPEG or WebP image, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
