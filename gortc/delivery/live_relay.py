"""Relaying a live room from the instance that ingests it.

With several instances behind one public name, a viewer reaches any of
them, but a stream's HLS is written, and its WebRTC viewers are served, by
the instance that ingests it. The instance the viewer reached admits them
as it would for a room of its own (delivery/live.py, live_webrtc.py), then
asks the ingesting one, at the ``instance_url`` its registry entry carries,
with a viewer token it mints for that viewer (every instance shares the
secret that signs them): the same public routes, no internal one.

An ingesting instance that does not answer is a 503 ``stream_unreachable``
after a couple of seconds, never a 500, until its room drops off the
registry (``live.room_ttl_seconds``) and the answer becomes 404 ``not_live``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from gortc.entities.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from gortc.media.hls_playlist import without_query_parameter
from gortc.usecases.viewer_tokens import QUERY_PARAMETER

log = logging.getLogger(__name__)

# Set on every relayed request: the instance asked answers from what it has
# and never relays again, so two instances whose registry entries point at
# each other (a wrong instance_url) cannot bounce a request between them.
RELAYED_HEADER = "X-Gortc-Relayed"
# With a relayed playlist fetch: how many viewers the relaying instance has
# of the room, signed (LiveService.viewers_report), so that the ingesting
# instance's count, the room's `viewers`, includes them.
VIEWERS_HEADER = "X-Gortc-Viewers"
# Instances are on one network: one that takes longer than this to accept
# a connection is as good as gone for a live viewer.
CONNECT_SECONDS = 2.0
# A playlist or an SDP answer is made in well under this.
ANSWER_SECONDS = 5.0
# Between two chunks of a segment (a segment itself may take longer).
READ_SECONDS = 5.0
_CHUNK = 64 * 1024
# Segments relayed lately, for this instance's other viewers: a segment's
# name is unique to its publish (seg_<publish id>_<n>), so a kept one is
# never stale, and players fetch it within a few seconds of each other.
# The memory bound holds a few segments of a few streams (a 6 Mb/s stream's
# 2 s segment is 1.5 MB).
SEGMENT_CACHE_BYTES = 64 * 1024 * 1024
SEGMENT_CACHE_SECONDS = 30.0
# A bigger one (over ~60 Mb/s at 2 s segments) is streamed to each viewer.
SEGMENT_KEPT_MAX_BYTES = SEGMENT_CACHE_BYTES // 4
# The segment headers worth passing on.
_KEPT_HEADERS = ("Content-Type", "Cache-Control", "Last-Modified", "ETag")
_PASSED_HEADERS = (*_KEPT_HEADERS, "Content-Length")
# A segment's body and headers.
_Kept = tuple[bytes, dict[str, str]]


@dataclass
class _Fetch:
    started: float
    task: asyncio.Task[str]


class LiveRelay:
    """The HTTP client side of the relay: one connection pool for the
    application (``close`` on shutdown), and short caches of playlists and
    segments."""

    def __init__(self, *, playlist_seconds: float) -> None:
        # Every viewer of a room reloads its playlist about once a segment;
        # relayed one by one, N viewers here would cost the ingesting
        # instance N fetches a segment. One fetch serves them all for
        # playlist_seconds (a fraction of a segment, so a new segment shows
        # up at most that much later than on the ingesting instance), and
        # viewers who ask while it is in flight wait for it rather than
        # starting their own.
        self._playlist_seconds = playlist_seconds
        self._playlists: dict[tuple[str, str, str], _Fetch] = {}
        self._segments = _SegmentCache(SEGMENT_CACHE_BYTES, SEGMENT_CACHE_SECONDS)
        self._segment_fetches: dict[tuple[str, str, str], asyncio.Task[_Kept | None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: a ClientSession belongs to the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_SECONDS),
                # No pool limit: one connection per request in flight to the
                # ingesting instance (at most one per viewer here; playlists
                # share theirs), rather than viewers past the 100th (aiohttp's
                # default) queueing behind others' segment downloads.
                connector=aiohttp.TCPConnector(limit=0),
                # Never keeps or sends cookies: the viewer token is the credential.
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={RELAYED_HEADER: "1"},
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        for fetch in self._playlists.values():
            fetch.task.cancel()
        self._playlists.clear()
        for task in list(self._segment_fetches.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    # -- HLS ---------------------------------------------------------------------

    async def playlist(
        self, instance: str, room_id: str, name: str, token: str | None, viewers_report: str
    ) -> str:
        """The room's playlist ``name`` as the ingesting instance has it,
        with no viewer token in its URIs (the caller adds the viewer's)."""
        key = (instance, room_id, name)
        now = time.monotonic()
        fetch = self._playlists.get(key)
        if fetch is None or now - fetch.started > self._playlist_seconds:
            for old in [k for k, f in self._playlists.items() if now - f.started > 10.0]:
                del self._playlists[old]
            task = asyncio.create_task(
                self._fetch_playlist(instance, room_id, name, token, viewers_report)
            )
            # (A failure is kept as long as a success: a dead instance is not
            # asked again by every viewer at once.)
            task.add_done_callback(_consume_exception)
            fetch = _Fetch(now, task)
            self._playlists[key] = fetch
        # Shielded: a viewer who hangs up does not cancel the others' fetch.
        return await asyncio.shield(fetch.task)

    async def _fetch_playlist(
        self, instance: str, room_id: str, name: str, token: str | None, viewers_report: str
    ) -> str:
        url = _hls_url(instance, room_id, name)
        try:
            async with self._client().get(
                url,
                params=_token_query(token),
                headers={VIEWERS_HEADER: viewers_report},
                timeout=aiohttp.ClientTimeout(total=ANSWER_SECONDS, sock_connect=CONNECT_SECONDS),
            ) as upstream:
                body = await upstream.read()
                if upstream.status != 200:
                    raise _refusal(upstream.status, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(instance, exc) from None
        return without_query_parameter(body.decode("utf-8", errors="replace"), QUERY_PARAMETER)

    async def segment(
        self, request: web.Request, instance: str, room_id: str, name: str, token: str | None
    ) -> web.StreamResponse:
        """A segment from the ingesting instance. Fetched once for all of
        this instance's viewers (every player of the room asks for each
        segment, within a second or so of the others: at the start of a
        segment, hundreds at once), kept a while, and answered from memory;
        one too big to keep is streamed through to each viewer instead."""
        key = (instance, room_id, name)
        kept = self._segments.get(key)
        if kept is None:
            fetch = self._segment_fetches.get(key)
            if fetch is None:
                fetch = asyncio.create_task(self._fetch_segment(key, token))
                fetch.add_done_callback(_consume_exception)
                self._segment_fetches[key] = fetch

                def forget(done: asyncio.Task[_Kept | None]) -> None:
                    if self._segment_fetches.get(key) is done:
                        del self._segment_fetches[key]

                fetch.add_done_callback(forget)
            # Shielded: a viewer who hangs up does not cancel the others' fetch.
            kept = await asyncio.shield(fetch)
        if kept is None:
            return await self._stream_segment(request, instance, room_id, name, token)
        body, headers = kept
        return web.Response(body=body, headers=headers)

    async def _fetch_segment(self, key: tuple[str, str, str], token: str | None) -> _Kept | None:
        """The whole segment (and keeps it), or None when it is too big to
        keep or of unknown size."""
        instance, room_id, name = key
        try:
            async with self._client().get(
                _hls_url(instance, room_id, name),
                params=_token_query(token),
                timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_SECONDS, sock_read=READ_SECONDS),
            ) as upstream:
                if upstream.status != 200:
                    raise _refusal(upstream.status, await upstream.read())
                size = upstream.content_length
                if size is None or size > SEGMENT_KEPT_MAX_BYTES:
                    return None
                body = await upstream.read()
                # (Not Content-Length: set again from the body when sent.)
                headers = {h: upstream.headers[h] for h in _KEPT_HEADERS if h in upstream.headers}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(instance, exc) from None
        self._segments.put(key, body, headers)
        return body, headers

    async def _stream_segment(
        self, request: web.Request, instance: str, room_id: str, name: str, token: str | None
    ) -> web.StreamResponse:
        """Streams a segment from the ingesting instance to the viewer as
        it arrives."""
        url = _hls_url(instance, room_id, name)
        try:
            upstream = await self._client().get(
                url,
                params=_token_query(token),
                timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_SECONDS, sock_read=READ_SECONDS),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(instance, exc) from None
        async with upstream:
            if upstream.status != 200:
                try:
                    body = await upstream.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise _unreachable(instance, exc) from None
                raise _refusal(upstream.status, body)
            headers = {h: upstream.headers[h] for h in _PASSED_HEADERS if h in upstream.headers}
            response = web.StreamResponse(headers=headers)
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_chunked(_CHUNK):
                    await response.write(chunk)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Too late for an error answer: cut the connection, so the
                # player sees a short segment rather than a whole one.
                log.warning("relaying %s from %s broke off: %s", name, instance, exc)
                response.force_close()
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write_eof()
            return response

    # -- WHEP and WHIP ------------------------------------------------------------------

    async def webrtc(
        self,
        instance: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        stream_key: str | None = None,
        body: bytes | None = None,
    ) -> web.Response:
        """A WHEP request (the offer, or ending a session) made to the
        ingesting instance for a viewer (``token``: a viewer token of
        theirs), or a WHIP publisher's DELETE (``stream_key``: the key it
        presented, which the ingesting instance checks); the answer as it
        came, with its Location (a path, the same on every instance)."""
        headers = {"Content-Type": "application/sdp"} if body is not None else {}
        if stream_key is not None:
            headers["Authorization"] = f"Bearer {stream_key}"
        try:
            async with self._client().request(
                method,
                instance + path,
                params=_token_query(token),
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=ANSWER_SECONDS, sock_connect=CONNECT_SECONDS),
            ) as upstream:
                answer = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(instance, exc) from None
        if upstream.status >= 500:
            raise _refusal(upstream.status, answer)
        passed = {
            h: upstream.headers[h] for h in ("Content-Type", "Location") if h in upstream.headers
        }
        return web.Response(status=upstream.status, body=answer, headers=passed)


class _SegmentCache:
    """Whole segments, the oldest dropped first past ``max_bytes`` or
    ``max_seconds``."""

    def __init__(self, max_bytes: int, max_seconds: float) -> None:
        self._max_bytes = max_bytes
        self._max_seconds = max_seconds
        self._bytes = 0
        # key -> (when kept, body, headers), oldest first
        self._kept: OrderedDict[tuple[str, str, str], tuple[float, bytes, dict[str, str]]] = (
            OrderedDict()
        )

    def get(self, key: tuple[str, str, str]) -> tuple[bytes, dict[str, str]] | None:
        self._drop_old()
        entry = self._kept.get(key)
        return None if entry is None else (entry[1], entry[2])

    def put(self, key: tuple[str, str, str], body: bytes, headers: dict[str, str]) -> None:
        if key in self._kept:
            return  # two viewers fetched it at once: the first copy stays
        self._kept[key] = (time.monotonic(), body, headers)
        self._bytes += len(body)
        self._drop_old()

    def _drop_old(self) -> None:
        cutoff = time.monotonic() - self._max_seconds
        while self._kept:
            key, (kept_at, body, _) = next(iter(self._kept.items()))
            if kept_at >= cutoff and self._bytes <= self._max_bytes:
                return
            del self._kept[key]
            self._bytes -= len(body)


def _hls_url(instance: str, room_id: str, name: str) -> str:
    return f"{instance}/live/{quote(room_id, safe='')}/{quote(name, safe='')}"


def _token_query(token: str | None) -> dict[str, str]:
    return {QUERY_PARAMETER: token} if token is not None else {}


def _consume_exception(task: asyncio.Task[Any]) -> None:
    # Whoever awaited it got the error; this keeps asyncio from logging it
    # again when nobody did (every waiter gone).
    if not task.cancelled():
        task.exception()


def _unreachable(instance: str, exc: BaseException) -> Unavailable:
    log.warning("the instance ingesting a live room (%s) did not answer: %r", instance, exc)
    return Unavailable(
        "the server instance that ingests this stream is not answering; try again shortly",
        code="stream_unreachable",
    )


def _refusal(status: int, body: bytes) -> DomainError:
    """The ingesting instance's error answer, as the same error of ours
    (the viewer was admitted here, so it is rare: the stream ended between
    the registry's answer and the fetch, a segment left the playlist, a
    room made private while its token-free URL is played)."""
    code, message = "stream_unreachable", "the instance that ingests this stream failed"
    with contextlib.suppress(ValueError, LookupError, TypeError):
        error = json.loads(body)["error"]
        code, message = str(error["code"]), str(error["message"])
    kind = _SAME_ERROR.get(status)
    if kind is None:
        return Unavailable(message, code="stream_unreachable")
    return kind(message, code=code)


_SAME_ERROR: dict[int, type[DomainError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}
