"""What the Redis-backed parts of the hub share: a client that never
retries behind our back, jittered backoff, readable outage reasons, and
cancellation that survives redis-py."""

from __future__ import annotations

import asyncio
import os
import random
import re

from redis.asyncio import Redis

_REDIS_PY_CONNECT_ERROR = re.compile(r"Error (-?\d+) connecting to ")


class Backoff:
    """Delays that double from ``first`` to ``cap``, each shortened by a random
    part of up to a half so that instances do not reconnect in lockstep."""

    def __init__(self, first: float, cap: float) -> None:
        self._first = first
        self._cap = cap
        self._attempts = 0

    def next_delay(self) -> float:
        delay = min(self._cap, self._first * 2 ** min(self._attempts, 32))
        self._attempts += 1
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)

    def reset(self) -> None:
        self._attempts = 0


def client_from_url(url: str) -> Redis:
    # from_url does not retry by itself (unlike Redis()), so a failure
    # reaches our own backoff at once; a short connect timeout keeps each
    # attempt at an unreachable host brief.
    return Redis.from_url(url, socket_connect_timeout=2.0, socket_keepalive=True)


def describe_failure(exc: BaseException) -> str:
    """The root cause in a few words ("Connection refused") rather than
    redis-py's "Error 111 connecting to host:port. Connect call failed (...)"."""
    cause: BaseException | None = exc
    for _ in range(8):  # a chain of causes may loop back on itself
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.errno is not None:
            return os.strerror(cause.errno) if cause.errno > 0 else str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    # When a reconnection fails while handling a lost connection, redis-py
    # keeps only its own message, which still carries the errno.
    text = str(exc)
    found = _REDIS_PY_CONNECT_ERROR.match(text)
    if found is not None and int(found[1]) > 0:
        return os.strerror(int(found[1]))
    return text or type(exc).__name__


def reraise_if_cancelled(exc: Exception) -> None:
    """redis-py turns a cancellation during a command into a connection
    error; treated as an outage, it would make the task retry forever
    instead of stopping. A failure while being cancelled is the cancellation."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc
