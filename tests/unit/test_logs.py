"""The two log formats: what a line holds, and that the request being
handled is named on every line logged meanwhile, in tasks it starts too."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import warnings
from collections.abc import Iterator

import pytest

from gortc.logs import configure_logging, enter_request, leave_request

LOGGER = "gortc.test"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def lines_of(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


async def test_json_lines_carry_time_level_logger_message_and_the_request(
    restore_logging: None,
) -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    log = logging.getLogger(LOGGER)
    log.info("before any request")
    context = enter_request("req-1")
    try:
        log.warning("during it: %s", "line\nbreak", extra={"status": 404})

        async def later() -> None:
            log.info("in a task the request started")

        await asyncio.create_task(later())
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        leave_request(context)
    log.debug("below the threshold")
    log.info("after it")

    entries = [json.loads(line) for line in lines_of(out)]
    assert [entry["message"] for entry in entries] == [
        "before any request",
        "during it: line\nbreak",
        "in a task the request started",
        "failed",
        "after it",
    ]
    assert [entry.get("request_id") for entry in entries] == [None, "req-1", "req-1", "req-1", None]
    assert entries[1]["level"] == "WARNING" and entries[1]["logger"] == LOGGER
    assert entries[1]["status"] == 404  # a field given in extra=
    assert entries[1]["time"].endswith("Z")
    assert "ValueError: boom" in entries[3]["exception"]
    assert "exception" not in entries[0]
    assert len(lines_of(out)) == 5  # the message's line break did not split its line


async def test_text_lines_end_with_the_request_id_during_a_request(
    restore_logging: None,
) -> None:
    out = io.StringIO()
    configure_logging("info", "text", out)
    log = logging.getLogger(LOGGER)
    context = enter_request("req-2")
    try:
        log.info("during")
        log.info("given", extra={"request_id": "explicit"})
    finally:
        leave_request(context)
    log.info("after")
    during, given, after = lines_of(out)
    assert during.endswith(f"INFO {LOGGER} rid=req-2: during")
    assert given.endswith(f"INFO {LOGGER} rid=explicit: given")
    assert after.endswith(f"INFO {LOGGER}: after")


async def test_concurrent_requests_each_keep_their_own_id(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    log = logging.getLogger(LOGGER)

    async def handle(request_id: str) -> None:
        context = enter_request(request_id)
        try:
            for step in range(3):
                log.info("%s step %d", request_id, step)
                await asyncio.sleep(0)
        finally:
            leave_request(context)

    await asyncio.gather(handle("a"), handle("b"))
    entries = [json.loads(line) for line in lines_of(out)]
    assert len(entries) == 6
    assert all(entry["message"].startswith(entry["request_id"]) for entry in entries)


def test_warnings_become_log_lines_in_the_logs_format(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # (the suite makes warnings errors)
        warnings.warn("a library's complaint", RuntimeWarning, stacklevel=1)
    [entry] = [json.loads(line) for line in lines_of(out)]
    assert entry["logger"] == "py.warnings"
    assert "a library's complaint" in entry["message"]
