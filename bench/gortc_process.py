"""How the benchmarks start ``gortc serve``: on a free port, in a given data
directory, with no GORTC_* setting inherited from the caller's shell."""

from __future__ import annotations

import asyncio
import os
import sys


def serve_command(data_dir: str) -> list[str]:
    return [sys.executable, "-m", "gortc", "serve", "--port", "0", "--data-dir", data_dir]


def clean_environment(**settings: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GORTC_")}
    environment.update(settings)
    return environment


READY = "ready on "


async def start_gortc(
    data_dir: str, *, command: list[str] | None = None, **settings: str
) -> tuple[asyncio.subprocess.Process, str]:
    """Starts ``gortc serve`` (or ``command``, a variant of serve_command's)
    and returns it with its URL once it listens. Its log keeps being read, so
    the pipe never fills up and stalls it."""
    process = await asyncio.create_subprocess_exec(
        *(command or serve_command(data_dir)),
        env=clean_environment(**settings),
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    async with asyncio.timeout(60):
        while True:
            line = (await process.stderr.readline()).decode()
            if READY in line:
                url = line.split(READY, 1)[1].split()[0]
                break
            if not line:
                raise SystemExit("the server did not start")
    asyncio.get_running_loop().create_task(_drain(process.stderr))
    return process, url


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
