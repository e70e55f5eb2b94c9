"""What a log line costs in each ``server.log_format``: the access line of a
request (with its extra fields and request id), formatted and written to
a file, text against JSON in alternating rounds, and against the plain
``logging.basicConfig`` line gortc wrote before (no request id filter).
Every request logs one such line, so this is the price of the format per
request.

Run: ``make bench-logs`` (a few seconds).
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from typing import TextIO

from gortc.logs import configure_logging, enter_request, leave_request

LINES = 20_000
ROUNDS = 7


def configure(variant: str, stream: TextIO) -> None:
    if variant in ("text", "json"):
        configure_logging("info", "json" if variant == "json" else "text", stream)
        return
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=stream
    )


def one_round(variant: str, path: str) -> float:
    """Microseconds per access line."""
    with open(path, "w", encoding="utf-8") as stream:
        configure(variant, stream)
        log = logging.getLogger("gortc.access")
        context = enter_request("0123456789abcdef")
        try:
            started = time.perf_counter()
            for index in range(LINES):
                log.info(
                    "%s %s %d %.1fms client=%s",
                    "GET",
                    "/api/v1/users/me",
                    200,
                    1.5,
                    "127.0.0.1",
                    extra={
                        "method": "GET",
                        "path": "/api/v1/users/me",
                        "status": 200,
                        "duration_ms": 1.5,
                        "client": "127.0.0.1",
                        "request_id": f"{index:016x}",
                    },
                )
            elapsed = time.perf_counter() - started
        finally:
            leave_request(context)
    return elapsed / LINES * 1e6


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "log")
        results: dict[str, list[float]] = {"plain": [], "text": [], "json": []}
        one_round("text", path)  # warm-up
        for _ in range(ROUNDS):
            for log_format in results:
                results[log_format].append(one_round(log_format, path))
    for variant, samples in results.items():
        print(
            f"{variant:5} {statistics.median(samples):6.1f} µs per access line "
            f"(rounds {min(samples):.1f}..{max(samples):.1f}; {ROUNDS} × {LINES:,} lines)"
        )
    plain = statistics.median(results["plain"])
    for variant in ("text", "json"):
        print(f"{variant} / plain: x{statistics.median(results[variant]) / plain:.2f}")


if __name__ == "__main__":
    main()
