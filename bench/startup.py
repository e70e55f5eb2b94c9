"""Start-up time and idle memory of ``gortc serve``, against a bare aiohttp
server started the same way in the same run (the floor for any aiohttp app).

Prints one line per server and the ratios. Run: ``make bench-startup``.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from gortc_process import clean_environment, serve_command

ROUNDS = 5
READY_TOKEN = "ready on "

BARE_SERVER = """
import sys
from aiohttp import web
async def health(request):
    return web.json_response({"status": "ok"})
async def main():
    app = web.Application()
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"ready on http://{host}:{port}", file=sys.stderr, flush=True)
    import asyncio
    await asyncio.Event().wait()
import asyncio
asyncio.run(main())
"""


def measure(command: list[str]) -> tuple[float, float]:
    """(seconds until /healthz answers, idle RSS in MiB one second later)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    url = ""
    for line in process.stderr:
        if READY_TOKEN in line:
            url = line.split(READY_TOKEN, 1)[1].split()[0]
            break
    with urllib.request.urlopen(url + "/healthz") as response:  # noqa: S310 - loopback only
        response.read()
    ready = time.perf_counter() - started
    time.sleep(1.0)
    with open(f"/proc/{process.pid}/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    return ready, rss_kib / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        environment = clean_environment()
        os.environ.clear()
        os.environ.update(environment)
        servers = {
            "bare aiohttp": [sys.executable, "-c", BARE_SERVER],
            "gortc serve": serve_command(data_dir),
        }
        results: dict[str, tuple[float, float]] = {}
        for name, command in servers.items():
            samples = [measure(command) for _ in range(ROUNDS)]
            ready = statistics.median(sample[0] for sample in samples)
            rss = statistics.median(sample[1] for sample in samples)
            results[name] = (ready, rss)
            print(
                f"{name:14}  ready {ready * 1000:6.0f} ms   idle RSS {rss:5.1f} MiB"
                f"   (median of {ROUNDS})"
            )
        base_ready, base_rss = results["bare aiohttp"]
        ready, rss = results["gortc serve"]
        print(
            f"gortc / bare aiohttp: start-up x{ready / base_ready:.2f}, RSS x{rss / base_rss:.2f}"
        )


if __name__ == "__main__":
    main()
