"""Debian's Chromium under Playwright, for the web client's tests.

Playwright's own browser download is not reachable from these machines, so
the tests drive the system Chromium. Where it is missing they are skipped,
except under CI, which installs it and must not pass without them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags that keep Chromium off the network and quiet on this machine.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # No lookups of Google's hosts through the machine's resolver (the
    # background features above do not stop them all).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


def require_chromium() -> str:
    """The Chromium binary; skips the calling module without one (fails in CI)."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs Debian's chromium for the web client tests")
        pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)
    return CHROMIUM


@contextlib.asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright (for a fixture)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=require_chromium(), args=[*CHROMIUM_ARGS, *extra_args], headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()
