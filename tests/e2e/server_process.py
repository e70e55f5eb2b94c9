"""Running ``python -m gortc serve`` as its own process for tests."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    url: str
    data_dir: Path
    log: list[str]

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), timeout=15)


async def start_server(data_dir: Path, port: int = 0, **env: str) -> ServerProcess:
    """``port`` 0: any free one (a test that must name its own URL in the
    configuration, e.g. server.instance_url, picks one first)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GORTC_")}
    # A free RTMP port (the test may name one): never the fixed 1935.
    environment["GORTC_LIVE_RTMP_PORT"] = "0"
    environment.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gortc",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        cwd=REPO,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    async with asyncio.timeout(20):
        while True:
            line = (await process.stderr.readline()).decode()
            if not line:
                raise AssertionError("server exited before it was ready:\n" + "".join(log))
            log.append(line)
            match = READY.search(line)
            if match:
                break

    async def drain() -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            log.append(line.decode())

    asyncio.get_running_loop().create_task(drain())
    return ServerProcess(process, match.group(1), data_dir, log)
