"""Rewriting an HLS playlist's URIs, so that a player which only follows
them (and sends no headers or cookies) carries a credential along."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode

# A quoted URI attribute of a tag (#EXT-X-MAP, #EXT-X-KEY, #EXT-X-MEDIA,
# #EXT-X-I-FRAME-STREAM-INF, ...): RFC 8216 section 4.2.
_URI_ATTRIBUTE = re.compile(r'(?<=[:,])URI="([^"\r\n]*)"')


def with_query_parameter(playlist: str, name: str, value: str) -> str:
    """The playlist with ``name=value`` added to the query of every URI it
    holds, the lines that name a segment or a playlist and the tags' URI
    attributes. URIs to elsewhere (with a scheme, or ``//host``) are left
    alone: the credential is for this server only."""
    parameter = f"{quote(name, safe='')}={quote(value, safe='')}"

    def add(path: str) -> str:
        separator = "&" if "?" in path else "?"
        return f"{path}{separator}{parameter}"

    return _rewrite(playlist, add)


def without_query_parameter(playlist: str, name: str) -> str:
    """The playlist with ``name`` taken out of the query of every URI of
    this server it holds: what is left is the same for every viewer (a
    relayed playlist is cached so, and given each viewer's own token)."""

    def drop(path: str) -> str:
        base, question, query = path.partition("?")
        if not question:
            return path
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != name]
        return f"{base}?{urlencode(kept)}" if kept else base

    return _rewrite(playlist, drop)


def _rewrite(playlist: str, change: Callable[[str], str]) -> str:
    """Every URI of this server in the playlist, its part before any
    ``#`` passed through ``change``."""

    def local(uri: str) -> str:
        if not uri or "://" in uri or uri.startswith("//") or uri.startswith("data:"):
            return uri
        path, hash_mark, fragment = uri.partition("#")
        return f"{change(path)}{hash_mark}{fragment}"

    lines = []
    for line in playlist.splitlines(keepends=True):
        text = line.rstrip("\r\n")
        ending = line[len(text) :]
        if text.startswith("#"):
            text = _URI_ATTRIBUTE.sub(lambda m: f'URI="{local(m.group(1))}"', text)
        elif text.strip():
            text = local(text.strip())
        lines.append(text + ending)
    return "".join(lines)
