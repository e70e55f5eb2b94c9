"""What ``GET /metrics`` shows: one Prometheus registry per application.

Request counts and latencies, messages stored and their commit latency are
counted as they happen (a few additions per request or message). Everything
else (connections, queues, calls, process) is read from the objects that
already keep it, when Prometheus scrapes: nothing is added to hot paths for
figures nobody asks for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from gortc.entities.groups import NewMessage, StoredMessage
from gortc.hub.hub import Hub
from gortc.usecases.ports import MessageStore

# Seconds: from a fast SQLite commit (~1 ms) to a request that is too slow.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SfuCounts(Protocol):
    """The figures the SFU keeps (gortc.media.sfu.SfuFigures)."""

    @property
    def participants(self) -> int: ...
    @property
    def frames_received(self) -> int: ...
    @property
    def frames_forwarded(self) -> int: ...
    @property
    def keyframe_requests(self) -> int: ...


class Metrics:
    """The registry of one application and the metrics counted as they happen."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # CPU seconds, resident memory, open fds, start time (from /proc).
        ProcessCollector(registry=self.registry)
        self.http_requests = Counter(
            "gortc_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "gortc_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method "
            "(WebSocket upgrades are not timed: they last as long as the socket).",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.messages_stored = Counter(
            "gortc_messages_stored",
            "New messages committed to the database (a retried send counts once).",
            registry=self.registry,
        )
        self.message_commit_seconds = Histogram(
            "gortc_message_commit_seconds",
            "Time from a message handed to the store to its commit (group commit included).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.search_seconds = Histogram(
            "gortc_search_duration_seconds",
            "Time to answer a successful search, by what was searched (messages, files, people).",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._live = _LiveFigures()
        self.registry.register(self._live)
        self.registry.register(_TaskCollector())

    def observe_request(self, route: str, method: str, status: int, seconds: float | None) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        if seconds is not None:
            self.http_seconds.labels(route, method).observe(seconds)

    def watch_hub(self, hub: Hub) -> None:
        self.registry.register(_HubCollector(hub))

    def watch_sfu(self, figures: Callable[[], SfuCounts]) -> None:
        self.registry.register(_SfuCollector(figures))

    def observe_search(self, kind: str, seconds: float) -> None:
        self.search_seconds.labels(kind).observe(seconds)

    def watch_segment_lag(self, playlist_ages: Callable[[], list[float]]) -> None:
        """``playlist_ages``: seconds since each local stream's playlist last
        changed (read at scrape time)."""
        self.registry.register(_SegmentLagCollector(playlist_ages))

    def set_live(self, rooms: int, viewers: int) -> None:
        """The live figures, read by the scrape itself (the registry of
        rooms may be remote, and collectors cannot wait)."""
        self._live.rooms = rooms
        self._live.viewers = viewers

    def measure(self, store: MessageStore) -> MessageStore:
        return MeasuredMessageStore(store, self.messages_stored, self.message_commit_seconds)


class MeasuredMessageStore:
    """A MessageStore that counts what it stores and times each commit."""

    def __init__(self, inner: MessageStore, stored: Counter, seconds: Histogram) -> None:
        self._inner = inner
        self._stored = stored
        self._seconds = seconds

    async def add(self, draft: NewMessage) -> StoredMessage:
        started = time.perf_counter()
        result = await self._inner.add(draft)
        self._seconds.observe(time.perf_counter() - started)
        if result.is_new:
            self._stored.inc()
        return result

    async def close(self) -> None:
        await self._inner.close()


class _HubCollector(Collector):
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        connections = self._hub.connections()
        queued = [connection.queued for connection in connections]
        yield GaugeMetricFamily(
            "gortc_websocket_connections", "WebSocket connections open.", value=len(connections)
        )
        yield GaugeMetricFamily(
            "gortc_websocket_queued_frames",
            "Outgoing frames waiting for slow clients, all connections together.",
            value=sum(queued),
        )
        yield GaugeMetricFamily(
            "gortc_websocket_queued_frames_max",
            "The longest outgoing queue of one connection, frames.",
            value=max(queued, default=0),
        )
        yield CounterMetricFamily(
            "gortc_websocket_evictions",
            "Connections closed for reading too slowly (4008), since start.",
            value=self._hub.evictions,
        )


class _SfuCollector(Collector):
    def __init__(self, figures: Callable[[], SfuCounts]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        figures = self._figures()
        yield GaugeMetricFamily(
            "gortc_sfu_participants",
            "Call participants on this instance.",
            value=figures.participants,
        )
        yield CounterMetricFamily(
            "gortc_sfu_frames_received",
            "Media frames received from call publishers, since start.",
            value=figures.frames_received,
        )
        yield CounterMetricFamily(
            "gortc_sfu_frames_forwarded",
            "Media frames forwarded to call subscribers (one per subscriber), since start.",
            value=figures.frames_forwarded,
        )
        yield CounterMetricFamily(
            "gortc_sfu_keyframe_requests",
            "Keyframe requests (PLI) sent to call publishers, since start.",
            value=figures.keyframe_requests,
        )


class _TaskCollector(Collector):
    """Tasks alive on the event loop: a number that keeps climbing under a
    steady load is a leak (a task per connection or call never ended)."""

    def collect(self) -> Iterator[Metric]:
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped from outside the loop: nothing to count
            return
        yield GaugeMetricFamily(
            "gortc_asyncio_tasks", "Tasks alive on the event loop.", value=tasks
        )


class _LiveFigures(Collector):
    def __init__(self) -> None:
        self.rooms = 0
        self.viewers = 0

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("gortc_live_streams", "Live streams on the air.", value=self.rooms)
        yield GaugeMetricFamily(
            "gortc_live_viewers",
            "Viewers of the live streams (counted every few seconds).",
            value=self.viewers,
        )


class _SegmentLagCollector(Collector):
    def __init__(self, playlist_ages: Callable[[], list[float]]) -> None:
        self._playlist_ages = playlist_ages

    def collect(self) -> Iterator[Metric]:
        # The stalest stream is the one an operator must hear about; a
        # healthy one stays near one segment's length.
        yield GaugeMetricFamily(
            "gortc_live_segment_lag_seconds",
            "Seconds since the least recently updated playlist of the streams "
            "ingested here last changed (about one segment's length when all is "
            "well; 0 with no stream).",
            value=max(self._playlist_ages(), default=0.0),
        )
