"""Fixtures of the end-to-end tests: a real ``gortc serve`` subprocess and
Debian's headless Chromium. A module that needs them set up otherwise (live
ingest, fake media devices) defines its own of the same name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import chromium
from tests.e2e.server_process import ServerProcess, start_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    running = await start_server(
        tmp_path / "data",
        GORTC_AUTH_BCRYPT_ROUNDS="4",
        GORTC_LIMITS_ENABLED="false",
        # Calls' media too stays on loopback: the SFU's only ICE candidates.
        GORTC_RTC_HOST_ADDRESSES="127.0.0.1",
    )
    yield running
    await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched
