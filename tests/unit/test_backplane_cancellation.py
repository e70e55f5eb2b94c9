"""A backplane task must stop when cancelled, even inside a driver that turns
the cancellation into a connection error (as redis-py does)."""

from __future__ import annotations

import asyncio

import pytest

from gortc.hub.redis_support import reraise_if_cancelled


async def command_that_hides_cancellation() -> None:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        raise ConnectionError("connection closed by the cancelled command") from None


async def retry_loop(attempts: list[int], *, reraise: bool, stop: asyncio.Event) -> None:
    while not stop.is_set():
        attempts.append(1)
        try:
            await command_that_hides_cancellation()
        except Exception as exc:
            if reraise:
                reraise_if_cancelled(exc)
            await asyncio.sleep(0.01)  # the backoff before trying again


async def test_a_cancelled_retry_loop_stops() -> None:
    attempts: list[int] = []
    task = asyncio.create_task(retry_loop(attempts, reraise=True, stop=asyncio.Event()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)
    assert len(attempts) == 1


async def test_without_the_check_the_loop_would_never_stop() -> None:
    attempts: list[int] = []
    stop = asyncio.Event()
    task = asyncio.create_task(retry_loop(attempts, reraise=False, stop=stop))
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=0.3)
    assert not done  # it swallowed the cancellation and went on retrying
    assert task.cancelling() == 1
    assert len(attempts) > 1
    stop.set()
    task.cancel()  # lands in the command again: the loop ends on the flag
    await asyncio.wait([task], timeout=1.0)
    assert task.done()
