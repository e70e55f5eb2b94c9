"""Fan-out across instances: the group fan-out of bench/fanout.py through one,
then three ``gortc serve`` processes sharing one redis-server and one
PostgreSQL database.

Layout (docs/deploy.md, "Several instances"): a PostgreSQL of Debian's
(durable, started here by tests/postgres_server.py's helper), a redis-server
(tests/redis_server.py's), and one data directory that every instance opens
(the secret that signs tokens lives there, so a token issued by one
instance works on all). The users and groups are made once, over REST on
the first instance, and both runs use them.

Connections are dealt to the instances in turn: member i of room r to
instance (r + i) mod N, so each room's sender (member 0) sits on its own
instance and, with three instances, two thirds of every room's deliveries
cross Redis. The generator (bench/fanout/loadgen.js, the same as for
bench/fanout.py) is pinned to the last core; the instances, PostgreSQL and
Redis share all the others. On a 2-core machine that leaves one core to the
whole cluster, so three instances there show what Redis costs, not what a
second machine would add: run it where there are cores to spare.

Per instance count and scenario: the rate search of bench/fanout.py (the
first probe at the same rate for both counts, then up while p99 stays
within --p99-ms with every delivery made, bisect, hold 10 s), or fixed rates
with --rates. Printed: delivered msg/s and p50/p95/p99 at the best rate held
and at the common first probe, the instances' CPU (summed) and what the rest
of the machine used (PostgreSQL, Redis, the kernel), then the ratios 3 / 1.

Run: ``make bench-fanout-instances`` (``python bench/fanout_instances.py``,
about ten minutes); a smoke run: ``python bench/fanout_instances.py
--scenarios 1x20 --rates 5 --measure 1``. Needs node and ``npm ci`` in
bench/fanout (the make target does it), redis-server and postgresql.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fanout
from fanout import FANOUT, OUT, Server, fmt, gortc_setup, parse_scenario, say, start_server

REPO = Path(__file__).resolve().parents[1]
GENERATOR_BOUND = fanout.GENERATOR_BOUND


def cores() -> tuple[str, str]:
    """(the cluster's cores, the generator's core) as taskset lists."""
    count = os.cpu_count() or 1
    if count == 1:
        return "0", "0"
    last = count - 1
    return (f"0-{last - 1}" if last > 1 else "0"), str(last)


def start_instances(
    count: int, data_dir: str, cluster_cores: str, database_url: str, redis_url: str
) -> list[Server]:
    """``count`` instances, one after the other (the first makes the secret)."""
    instances: list[Server] = []
    try:
        for _ in range(count):
            instances.append(
                start_server(
                    "gortc",
                    data_dir,
                    cores=cluster_cores,
                    GORTC_DATABASE_URL=database_url,
                    GORTC_REDIS_URL=redis_url,
                    # This checkout's gortc, whatever is installed (cwd is the data dir).
                    PYTHONPATH=str(REPO),
                )
            )
    except BaseException:
        for instance in instances:
            instance.stop()
        raise
    return instances


def run_generator(
    instances: list[Server], generator_core: str, arguments: list[str], time_limit: int
) -> dict[str, Any]:
    """bench/fanout/loadgen.js against every instance; its result event."""
    command = [
        fanout.TOOLS["taskset"],
        "-c",
        generator_core,
        fanout.TOOLS["node"],
        str(FANOUT / "loadgen.js"),
        "--kind",
        "gortc",
        "--url",
        ",".join(server.url.replace("http://", "ws://") for server in instances),
        "--pid",
        ",".join(str(server.pid) for server in instances),
        "--clk-tck",
        str(os.sysconf("SC_CLK_TCK")),
        "--time-limit",
        str(time_limit),
        # PostgreSQL and Redis work for the instances: their CPU is part of
        # the run, not a disturbance to wait out.
        "--disturbed",
        "64",
        "--quiet-max",
        "0",
        *arguments,
    ]
    try:
        completed = subprocess.run(
            command, stdout=subprocess.PIPE, text=True, timeout=time_limit + 30, check=False
        )
    except subprocess.TimeoutExpired:
        return {"event": "error", "error": "the generator overran its time limit"}
    for line in completed.stdout.splitlines():
        if line.startswith("{"):
            event: dict[str, Any] = json.loads(line)
            if event["event"] in ("result", "error"):
                return event
    return {"event": "error", "error": f"no result (exit status {completed.returncode})"}


def generator_arguments(args: argparse.Namespace, rooms: int, per_room: int) -> list[str]:
    """The loadgen options of one scenario (as bench/fanout.py passes them)."""
    arguments = [
        "--rooms", str(rooms),
        "--per-room", str(per_room),
        "--warmup", str(args.warmup),
        "--confirm-warmup", str(max(1.0, args.warmup)),
        "--probe", str(args.probe),
        "--first-probe", str(args.first_probe),
        "--confirm", str(args.confirm),
        "--measure", str(args.measure),
        "--p99-ms", str(args.p99_ms),
        "--probe-margin", str(args.probe_margin),
    ]  # fmt: skip
    if args.rates:
        return [*arguments, "--rates", args.rates]
    start = args.start / (rooms * per_room)  # the same first rate for every count
    return [
        *arguments,
        "--search", str(round(start, 1)),
        "--factor", str(args.factor),
        "--resolution", str(args.resolution),
    ]  # fmt: skip


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    sys.path.insert(0, str(REPO))
    from tests.postgres_server import PostgresServer
    from tests.redis_server import RedisServer

    counts = [int(n) for n in args.instances.split(",") if n]
    scenarios = [parse_scenario(s) for s in args.scenarios.split(",") if s]
    cluster_cores, generator_core = cores()
    # PostgreSQL and Redis inherit this process's cores: the cluster's.
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(c) for c in _expand(cluster_cores)})
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="fanout-instances-") as tmp,
        PostgresServer(durable=True) as postgres,
        RedisServer(Path(tmp) / "redis") as redis,
    ):
        database_url = postgres.create_database("fanout")
        data_dir = str(Path(tmp) / "data")
        os.makedirs(data_dir)
        setup_file = Path(tmp) / "setup.json"
        for count in counts:
            instances = start_instances(count, data_dir, cluster_cores, database_url, redis.url)
            say(f"{count} instance(s): " + ", ".join(f"{s.url} (pid {s.pid})" for s in instances))
            entry: dict[str, Any] = {"instances": count, "scenarios": {}}
            try:
                if not setup_file.exists():
                    rooms = max(r for r, _ in scenarios)
                    per_room = max(p for _, p in scenarios)
                    setup = asyncio.run(gortc_setup(instances[0].url, rooms, per_room))
                    setup_file.write_text(json.dumps(setup))
                for rooms, per_room in scenarios:
                    label = f"{rooms}x{per_room}"
                    say(f"{count} instance(s): scenario {label}")
                    entry["scenarios"][label] = run_generator(
                        instances,
                        generator_core,
                        ["--setup", str(setup_file), *generator_arguments(args, rooms, per_room)],
                        time_limit=480,
                    )
            finally:
                for instance in instances:
                    instance.stop()
            failed = [s for s in instances if s.process.returncode not in (0, -15)]
            if failed:
                entry["server_log"] = list(failed[0].log)[-10:]
            results.append(entry)
    return results


def _expand(cpus: str) -> list[str]:
    """ "0-2" → ["0", "1", "2"]; "1" → ["1"]."""
    if "-" not in cpus:
        return [cpus]
    low, high = cpus.split("-")
    return [str(n) for n in range(int(low), int(high) + 1)]


# ---------------------------------------------------------------- report


def _best(result: dict[str, Any]) -> dict[str, Any] | None:
    return result.get("best") or None


def _first(result: dict[str, Any]) -> dict[str, Any] | None:
    steps = result.get("steps") or []
    return steps[0] if steps else None


def _line(count: int, label: str, step: dict[str, Any]) -> str:
    mark = "*" if step["generator_cpu_share"] >= GENERATOR_BOUND else " "
    return (
        f"{count:>9} {label:8} {step['rate_per_room']:>10} "
        f"{fmt(step['delivered_per_s']):>11} {fmt(step['p50_ms'], 1):>7} "
        f"{fmt(step['p95_ms'], 1):>7} {fmt(step['p99_ms'], 1):>7} "
        f"{fmt(step['server_cpu_share'], 2):>9} {fmt(step['other_cpu_share'], 2):>9} "
        f"{step['generator_cpu_share']:>7.2f}{mark}"
    )


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    cluster_cores, generator_core = cores()
    print()
    print(
        "Fan-out across instances through Redis (one PostgreSQL, one data directory),"
        f" 100-byte messages; instances, PostgreSQL and Redis on cores {cluster_cores},"
        f" generator on core {generator_core}."
    )
    header = (
        f"{'instances':>9} {'scenario':8} {'msg/s/room':>10} {'delivered/s':>11} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'inst. CPU':>9} {'other CPU':>9} "
        f"{'gen CPU':>8}"
    )
    for title, pick in (
        (
            f"At the highest rate held with p99 <= {args.p99_ms:g} ms and every delivery made:"
            if not args.rates
            else "At the highest fixed rate held:",
            _best,
        ),
        ("At the first rate tried, the same for every instance count:", _first),
    ):
        print()
        print(title)
        print(header)
        print("-" * len(header))
        for entry in results:
            for label, result in entry["scenarios"].items():
                if result.get("event") == "error":
                    print(f"{entry['instances']:>9} {label:8} error: {result['error']}")
                    continue
                step = pick(result)
                if step is None:
                    print(f"{entry['instances']:>9} {label:8} no rate held")
                    continue
                print(_line(entry["instances"], label, step))
    print()
    print(
        f"* generator CPU >= {GENERATOR_BOUND}: the generator's ceiling, not the cluster's."
        " inst. CPU: cores used by the instances together; other CPU: the rest of the"
        " machine (PostgreSQL, Redis, the kernel's network work, anything else)."
    )
    by_count = {entry["instances"]: entry for entry in results}
    if len(by_count) < 2:
        return
    low, high = min(by_count), max(by_count)
    print()
    for label in by_count[low]["scenarios"]:
        parts = []
        for where, pick in (("best", _best), ("first probe", _first)):
            one = pick(by_count[low]["scenarios"].get(label) or {})
            many = pick(by_count[high]["scenarios"].get(label) or {})
            if not one or not many:
                parts.append(f"{where}: —")
                continue
            delivered = many["delivered_per_s"] / one["delivered_per_s"]
            both = one["p95_ms"] and many["p95_ms"]
            p95 = f"x{many['p95_ms'] / one['p95_ms']:.2f}" if both else "—"
            parts.append(f"{where}: delivered/s x{delivered:.2f}, p95 {p95}")
        print(f"{high} / {low} instances, {label}: " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", default="1,3", help="instance counts, in order")
    parser.add_argument("--scenarios", default="1x1000,5x1000", help="ROOMSxMEMBERS, …")
    parser.add_argument("--rates", default="", help="fixed messages/s per room instead of search")
    parser.add_argument(
        "--start", type=float, default=fanout.SEARCH_START, help="deliveries/s at the first probe"
    )
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before each probe")
    parser.add_argument("--probe", type=float, default=2.5, help="seconds per search probe")
    parser.add_argument(
        "--first-probe", type=float, default=5.0, help="seconds of the first (common) probe"
    )
    parser.add_argument("--confirm", type=float, default=10.0, help="seconds the best rate holds")
    parser.add_argument("--measure", type=float, default=10.0, help="seconds per fixed rate")
    parser.add_argument("--factor", type=float, default=1.6, help="rate step while rates hold")
    parser.add_argument("--resolution", type=float, default=0.3, help="bisect until this close")
    parser.add_argument("--p99-ms", type=float, default=100.0)
    parser.add_argument("--probe-margin", type=float, default=0.7)
    parser.add_argument("--json", type=Path, help="write every figure here (default bench/out/)")
    args = parser.parse_args()
    fanout.prepare(["gortc"])
    started = time.perf_counter()
    results = bench(args)
    elapsed = time.perf_counter() - started
    report(results, args)
    OUT.mkdir(exist_ok=True)
    path = args.json or OUT / time.strftime("fanout-instances-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps({"elapsed_s": round(elapsed), "results": results}, indent=1))
    print(f"\n{elapsed:.0f} s in all; every figure in {path}")


if __name__ == "__main__":
    main()
