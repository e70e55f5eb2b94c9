"""What a rate-limit check costs: MemoryRateLimiter against RedisRateLimiter
(a real redis-server on loopback, started here), one after the other in
the same run. Every message sent, typing notice and sign-in takes one.

Sequential hits show the latency a single request pays; concurrent ones
(64 at once) the throughput one process gets. Run: ``make bench-ratelimit``
(needs redis-server).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

from gortc.adapters.rate_limit import MemoryRateLimiter
from gortc.adapters.redis_rate_limit import RedisRateLimiter

HITS = 20_000
CONCURRENCY = 64
ROUNDS = 5
KEYS = 1000  # distinct buckets, as many users

Hit = Callable[[str, int, float], Awaitable[float]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def sequential(hit: Hit) -> tuple[float, float]:
    """Hits per second, and the median latency in microseconds."""
    latencies = []
    started = time.perf_counter()
    for index in range(HITS // 4):
        begun = time.perf_counter()
        await hit(f"message:{index % KEYS}", 40, 2.0)
        latencies.append(time.perf_counter() - begun)
    elapsed = time.perf_counter() - started
    return (HITS // 4) / elapsed, statistics.median(latencies) * 1e6


async def concurrent(hit: Hit) -> tuple[float, float]:
    """Hits per second with CONCURRENCY in flight, and this process's CPU
    time per hit in microseconds (what a gortc instance pays; redis-server's
    own share is not in it)."""
    counter = iter(range(HITS))

    async def worker() -> None:
        for index in counter:
            await hit(f"message:{index % KEYS}", 40, 2.0)

    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    cpu = time.process_time() - cpu
    return HITS / (time.perf_counter() - started), cpu / HITS * 1e6


async def measure(name: str, hit: Hit) -> None:
    runs = [(await sequential(hit), await concurrent(hit)) for _ in range(ROUNDS)]
    rate = statistics.median(r[0][0] for r in runs)
    latency = statistics.median(r[0][1] for r in runs)
    parallel = statistics.median(r[1][0] for r in runs)
    cpu = statistics.median(r[1][1] for r in runs)
    print(
        f"{name:8} sequential {rate:10,.0f} hits/s (median {latency:6.1f} us)"
        f"   {CONCURRENCY} at once {parallel:10,.0f} hits/s ({cpu:6.1f} us CPU each)"
    )


async def main() -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("needs redis-server (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = await asyncio.create_subprocess_exec(
            binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
            "--appendonly", "no", "--dir", folder,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await asyncio.sleep(0.5)
            await measure("memory", MemoryRateLimiter().hit)
            limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0")
            try:
                await measure("redis", limiter.hit)
            finally:
                await limiter.close()
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
