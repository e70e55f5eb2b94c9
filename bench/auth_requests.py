"""What authentication costs a request: ``GET /api/v1/users/me`` with a bearer
token (JWT check + revoked-token lookup + user read) against ``GET /healthz``
(one trivial database read) on the same server, in the same run.

The server runs in its own process; the load comes from this one over
loopback with a fixed number of requests. Run: ``make bench-auth``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time

import aiohttp
from gortc_process import start_gortc

REQUESTS = 1500
ROUNDS = 7
CONCURRENCY = 16


async def run(
    http: aiohttp.ClientSession, path: str, headers: dict[str, str]
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(REQUESTS):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            async with http.get(path, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return REQUESTS / (time.perf_counter() - started), latencies


async def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        # Logging stays at info, as in production: the access log is part
        # of what a request costs.
        process, url = await start_gortc(data_dir, GORTC_LIMITS_ENABLED="false")
        try:
            async with aiohttp.ClientSession(url) as http:
                credentials = {
                    "username": "bench",
                    "email": "bench@example.com",
                    "password": "benchmark password",
                }
                await http.post("/api/v1/auth/register", json=credentials)
                async with http.post(
                    "/api/v1/auth/login",
                    json={"login": "bench", "password": credentials["password"]},
                ) as response:
                    token = (await response.json())["access_token"]
                bearer = {"Authorization": f"Bearer {token}"}
                await run(http, "/healthz", {})  # warm-up
                endpoints = {
                    "GET /healthz": ("/healthz", {}),
                    "GET /api/v1/users/me": ("/api/v1/users/me", bearer),
                }
                rates: dict[str, list[float]] = {name: [] for name in endpoints}
                latencies: dict[str, list[float]] = {name: [] for name in endpoints}
                ratios = []
                # Alternating rounds, so both see the same (shared, noisy) machine.
                for _ in range(ROUNDS):
                    for name, (path, headers) in endpoints.items():
                        rate, samples = await run(http, path, headers)
                        rates[name].append(rate)
                        latencies[name].extend(samples)
                    ratios.append(rates["GET /api/v1/users/me"][-1] / rates["GET /healthz"][-1])
                for name in endpoints:
                    ordered = sorted(latencies[name])
                    p50 = statistics.median(ordered) * 1000
                    p99 = ordered[int(len(ordered) * 0.99)] * 1000
                    print(
                        f"{name:22} {statistics.median(rates[name]):7.0f} req/s   "
                        f"p50 {p50:5.2f} ms   p99 {p99:5.2f} ms   "
                        f"(median of {ROUNDS} rounds of {REQUESTS}, {CONCURRENCY} concurrent)"
                    )
                print(
                    f"authenticated / health throughput: x{statistics.median(ratios):.2f} "
                    f"(rounds: {min(ratios):.2f}..{max(ratios):.2f})"
                )
        finally:
            process.terminate()
            await process.wait()


if __name__ == "__main__":
    asyncio.run(main())
