"""WebSocket fan-out: gortc against three servers doing the same room
broadcast (bare aiohttp writing one pre-built frame to every transport, a Go
hub on gorilla/websocket, socket.io 4), with the same Node load generator.

Each server runs pinned to core 0 (``taskset -c 0``), the generator to core 1.
Per server: one run at 10 rooms x 1,000 connections for resident memory per
connection, then the scenarios (1 room x 1,000 and 5 rooms x 1,000): the
generator raises the send rate while p99 delivery latency stays within
100 ms with every delivery made, bisects, and holds the best rate for 10 s.
At that rate it reports delivered messages/s, p50/p99, the server's CPU
seconds (utime+stime from /proc) and deliveries per server CPU-second.
For gortc it also holds 100 messages/s into one room of 1,000 (~100k
deliveries/s) and reports p99 there.

Run: ``make bench-fanout`` (``python bench/fanout.py``); one server or
scenario quickly: ``python bench/fanout.py --servers go --scenarios 1x1000
--no-rss``. Needs node and ``npm ci`` in bench/fanout, Go with
gorilla/websocket from Debian (see bench/fanout/README.md). gortc through 1
and then 3 instances sharing Redis and PostgreSQL: bench/fanout_instances.py
(``make bench-fanout-instances``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from gortc_process import clean_environment, serve_command

BENCH = Path(__file__).resolve().parent
FANOUT = BENCH / "fanout"
OUT = BENCH / "out"
GOHUB = OUT / "gohub"
READY = "ready on "
SERVER_CORE = "0"
LOADGEN_CORE = "1"
PER_ROOM = 1000
SERVERS = {
    "gortc": "gortc (message.send → message.created)",
    "bare": "bare aiohttp, one frame → every transport",
    "go": "Go hub, gorilla/websocket chat shape",
    "sio": "socket.io 4, io.to(room).emit",
}
LOADGEN_KIND = {"gortc": "gortc", "bare": "raw", "go": "raw", "sio": "sio"}
TOOLS: dict[str, str] = {}  # full paths, found by prepare()
SEARCH_START = 20_000  # deliveries/s at the first probe of every scenario


def say(text: str) -> None:
    print(f"[fanout] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    url: str
    log: deque[str] = field(default_factory=lambda: deque(maxlen=40))

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(name: str, data_dir: str, *, cores: str = SERVER_CORE, **settings: str) -> Server:
    """Starts one server on ``cores``; ``settings``: more environment for gortc."""
    environment = clean_environment()
    if name == "gortc":
        command = serve_command(data_dir)
        environment = clean_environment(
            GORTC_LIMITS_ENABLED="false",
            GORTC_AUTH_BCRYPT_ROUNDS="4",
            GORTC_AUTH_ACCESS_TOKEN_TTL="3600",  # noqa: S106 - a lifetime, not a secret
            # Both servers on the same loop (bench/fanout/bare_aiohttp.py --loop).
            GORTC_SERVER_EVENT_LOOP=os.environ.get("FANOUT_LOOP", "uvloop"),
            **settings,
        )
    elif name == "bare":
        command = [
            sys.executable,
            str(FANOUT / "bare_aiohttp.py"),
            "--loop",
            os.environ.get("FANOUT_LOOP", "uvloop"),
        ]
    elif name == "go":
        command = [str(GOHUB)]
    else:
        command = [TOOLS["node"], str(FANOUT / "socketio_server.js")]
    process = subprocess.Popen(
        [TOOLS["taskset"], "-c", cores, *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=data_dir,
    )
    assert process.stderr is not None
    found: list[str] = []
    log: deque[str] = deque(maxlen=40)
    ready = threading.Event()

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:  # keeps draining so the pipe never fills
            log.append(line.rstrip())
            if not ready.is_set() and READY in line:
                found.append(line.split(READY, 1)[1].split()[0])
                ready.set()
        ready.set()

    threading.Thread(target=read_log, daemon=True).start()
    if not ready.wait(timeout=60) or not found:
        process.kill()
        raise SystemExit(f"{name} did not start:\n" + "\n".join(log))
    return Server(name, process, found[0], log)


def run_loadgen(server: Server, arguments: list[str], time_limit: int) -> dict[str, Any]:
    """Runs the Node generator on its own core; returns its result event."""
    command = [
        TOOLS["taskset"],
        "-c",
        LOADGEN_CORE,
        TOOLS["node"],
        str(FANOUT / "loadgen.js"),
        "--kind",
        LOADGEN_KIND[server.name],
        "--url",
        server.url.replace("http://", "ws://"),
        "--pid",
        str(server.pid),
        "--clk-tck",
        str(os.sysconf("SC_CLK_TCK")),
        "--time-limit",
        str(time_limit),
        *arguments,
    ]
    try:
        completed = subprocess.run(
            command, stdout=subprocess.PIPE, text=True, timeout=time_limit + 30, check=False
        )
    except subprocess.TimeoutExpired:
        return {"event": "error", "error": "the generator overran its time limit"}
    events: list[dict[str, Any]] = [
        json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")
    ]
    for event in events:
        if event["event"] in ("result", "error"):
            return event
    return {"event": "error", "error": f"no result (exit status {completed.returncode})"}


# ---------------------------------------------------------------- gortc set-up over REST


async def gortc_setup(url: str, groups: int, per_group: int) -> dict[str, Any]:
    """Registers groups x per_group users, signs each in, has the first user
    of each group create it and add the others; returns the generator's
    set-up (group ids and access tokens, the group's creator first)."""
    started = time.perf_counter()
    password = "fanout-bench-password"
    limit = asyncio.Semaphore(16)
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(url, connector=connector) as http:

        async def post(path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with limit, http.post(path, json=body, headers=headers) as response:
                answer = await response.json(content_type=None)
                if response.status not in (200, 201):
                    raise SystemExit(f"POST {path} → {response.status}: {answer}")
                return answer  # type: ignore[no-any-return]

        names = [[f"fan{g:02d}u{i:04d}" for i in range(per_group)] for g in range(groups)]
        flat = [name for group in names for name in group]
        users = await asyncio.gather(
            *(
                post(
                    "/api/v1/auth/register",
                    {"username": n, "email": f"{n}@bench.example", "password": password},
                )
                for n in flat
            )
        )
        user_ids = {user["username"]: user["id"] for user in users}
        say(f"gortc: {len(flat)} users registered ({time.perf_counter() - started:.0f} s)")
        logins = await asyncio.gather(
            *(post("/api/v1/auth/login", {"login": n, "password": password}) for n in flat)
        )
        tokens = {n: login["access_token"] for n, login in zip(flat, logins, strict=True)}
        say(f"gortc: {len(flat)} users signed in ({time.perf_counter() - started:.0f} s)")
        created = []
        for g, group_names in enumerate(names):
            group = await post("/api/v1/groups", {"name": f"room {g}"}, tokens[group_names[0]])
            created.append(group["id"])
        await asyncio.gather(
            *(
                post(
                    f"/api/v1/groups/{created[g]}/members",
                    {"user_id": user_ids[n]},
                    tokens[group_names[0]],
                )
                for g, group_names in enumerate(names)
                for n in group_names[1:]
            )
        )
    seconds = time.perf_counter() - started
    say(f"gortc: {groups} groups of {per_group} members ready ({seconds:.0f} s)")
    return {
        "seconds": round(seconds, 1),
        "groups": [
            {"id": created[g], "tokens": [tokens[n] for n in group_names]}
            for g, group_names in enumerate(names)
        ],
    }


# ---------------------------------------------------------------- one server


def parse_scenario(text: str) -> tuple[int, int]:
    rooms, per_room = text.lower().split("x")
    return int(rooms), int(per_room)


def bench_server(name: str, args: argparse.Namespace) -> dict[str, Any]:
    scenarios = [parse_scenario(s) for s in args.scenarios.split(",") if s]
    results: dict[str, Any] = {"server": name, "label": SERVERS[name], "scenarios": {}}
    with tempfile.TemporaryDirectory(prefix=f"fanout-{name}-") as tmp:
        server = start_server(name, tmp)
        say(f"{name}: pid {server.pid} on {server.url}")
        try:
            setup_arguments: list[str] = []
            if name == "gortc":
                rooms_needed = max(
                    [r for r, _ in scenarios] + ([args.rss_rooms] if args.rss else [])
                )
                per_room_needed = max([p for _, p in scenarios] + [PER_ROOM])
                setup = asyncio.run(gortc_setup(server.url, rooms_needed, per_room_needed))
                results["setup_seconds"] = setup["seconds"]
                setup_file = Path(tmp) / "setup.json"
                setup_file.write_text(json.dumps(setup))
                setup_arguments = ["--setup", str(setup_file)]
            if args.rss:
                say(f"{name}: {args.rss_rooms} x {PER_ROOM} connections for memory")
                results["rss"] = run_loadgen(
                    server,
                    [
                        *setup_arguments,
                        "--mode",
                        "rss",
                        "--rooms",
                        str(args.rss_rooms),
                        "--per-room",
                        str(PER_ROOM),
                        "--settle-max",
                        "180",
                    ],
                    time_limit=420,
                )
            for rooms, per_room in scenarios:
                label = f"{rooms}x{per_room}"
                # Every server's first probe is at the same rate: a common point.
                start = args.start / (rooms * per_room)
                arguments = [
                    *setup_arguments,
                    "--rooms",
                    str(rooms),
                    "--per-room",
                    str(per_room),
                    "--warmup",
                    str(args.warmup),
                    "--confirm-warmup",
                    str(max(1.0, args.warmup)),
                    "--probe",
                    str(args.probe),
                    "--first-probe",
                    str(args.first_probe),
                    "--confirm",
                    str(args.confirm),
                    "--measure",
                    str(args.confirm),
                    "--p99-ms",
                    str(args.p99_ms),
                    "--quiet-max",
                    str(args.quiet_max),
                    "--probe-margin",
                    str(args.probe_margin),
                ]
                if args.rates:
                    arguments += ["--rates", args.rates]
                else:
                    arguments += [
                        "--search",
                        str(round(start, 1)),
                        "--factor",
                        str(args.factor),
                        "--resolution",
                        str(args.resolution),
                    ]
                if rooms == 1 and per_room == PER_ROOM and name in args.at_100k.split(","):
                    arguments += ["--fixed", "100"]
                say(f"{name}: scenario {rooms} x {per_room}")
                result = run_loadgen(server, arguments, time_limit=480)
                results["scenarios"][label] = result
        finally:
            server.stop()
        if server.process.returncode not in (0, -signal.SIGTERM):
            results["server_exit"] = server.process.returncode
            results["server_log"] = list(server.log)[-10:]
    return results


# ---------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


GENERATOR_BOUND = 0.95  # generator CPU share from which a figure is its ceiling, not the server's


def best_of(entry: dict[str, Any], label: str) -> dict[str, Any] | None:
    return ((entry["scenarios"].get(label) or {}).get("best")) or None


def first_of(entry: dict[str, Any], label: str) -> dict[str, Any] | None:
    steps = (entry["scenarios"].get(label) or {}).get("steps") or []
    return steps[0] if steps else None


def report(results: list[dict[str, Any]], p99_ms: float) -> None:
    print()
    print("Fan-out, 100-byte messages; server pinned to core 0, generator to core 1.")
    print(f"At the highest rate held 10 s with p99 <= {p99_ms:g} ms and every delivery made:")
    print()
    header = (
        f"{'server':44} {'scenario':8} {'msg/s/room':>10} {'delivered/s':>11} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'srv CPU s':>9} {'deliv/CPU-s':>11} {'gen CPU':>8}"
    )
    print(header)
    print("-" * len(header))
    bound = disturbed = False
    for entry in results:
        for label, result in entry["scenarios"].items():
            best = result.get("best")
            if result.get("event") == "error":
                print(f"{entry['label']:44} {label:8} error: {result['error']}")
                continue
            if not best:
                first = (result.get("steps") or [{}])[0]
                print(
                    f"{entry['label']:44} {label:8} no rate held (first tried "
                    f"{first.get('rate_per_room')}/s/room: p99 {fmt(first.get('p99_ms'), 1)} ms)"
                )
                continue
            mark = "*" if best["generator_cpu_share"] >= GENERATOR_BOUND else " "
            bound = bound or mark == "*"
            if best.get("disturbed"):
                mark += "!"
                disturbed = True
            print(
                f"{entry['label']:44} {label:8} {best['rate_per_room']:>10} "
                f"{fmt(best['delivered_per_s']):>11} {fmt(best['p50_ms'], 1):>7} "
                f"{fmt(best['p99_ms'], 1):>7} {fmt(best['server_cpu_s'], 2):>9} "
                f"{fmt(best['deliveries_per_cpu_s']):>11} {best['generator_cpu_share']:>7.2f}{mark}"
            )
    if bound:
        print(
            f"* generator CPU >= {GENERATOR_BOUND}: the generator's ceiling, not the server's"
            " (that server holds more; its deliveries/CPU-s is a lower bound)"
        )
    if disturbed:
        print(
            "! other programs used more than 0.15 of a core during that window:"
            " take the figure with care"
        )
    print()
    print("At the first probe, the same rate for every server (--first-probe seconds):")
    for entry in results:
        for label in entry["scenarios"]:
            first = first_of(entry, label)
            if first:
                print(
                    f"{entry['label']:44} {label:8} {first['rate_per_room']:>5} msg/s/room "
                    f"{fmt(first['delivered_per_s']):>7} deliveries/s  "
                    f"p99 {fmt(first['p99_ms'], 1):>6} ms  "
                    f"server CPU {first['server_cpu_share']:.2f}  "
                    f"{fmt(first['deliveries_per_cpu_s']):>8} deliveries/CPU-s"
                    + ("  !" if first.get("disturbed") else "")
                )
    fixed = [
        (entry, label, step)
        for entry in results
        for label, result in entry["scenarios"].items()
        for step in result.get("fixed") or []
    ]
    if fixed:
        print()
    for entry, label, step in fixed:
        print(
            f"{entry['label']}, {label} at {step['rate_per_room']} msg/s "
            f"({fmt(step['delivered_per_s'])} deliveries/s, 10 s): "
            f"p50 {fmt(step['p50_ms'], 1)} ms, p99 {fmt(step['p99_ms'], 1)} ms, "
            f"{step['deliveries_received']:,}/{step['deliveries_expected']:,} delivered, "
            f"{fmt(step['deliveries_per_cpu_s'])} deliveries/CPU-s, "
            f"generator CPU {step['generator_cpu_share']:.2f}"
        )
    memory = [(entry, entry["rss"]) for entry in results if entry.get("rss")]
    if memory:
        print()
        print(
            f"{'server':44} {'connections':>11} {'idle RSS':>10} {'RSS':>10} {'per conn':>9}"
            f" {'connect s':>9}"
        )
        for entry, rss in memory:
            if rss.get("event") == "error":
                print(f"{entry['label']:44} error: {rss['error']}")
                continue
            print(
                f"{entry['label']:44} {rss['connections']:>11,} "
                f"{rss['rss_idle_kib'] / 1024:>6.1f} MiB "
                f"{rss['rss_connected_kib'] / 1024:>6.1f} MiB "
                f"{rss['rss_per_connection_kib']:>5.1f} KiB {rss['connect_seconds']:>9.1f}"
            )
    by_name = {entry["server"]: entry for entry in results}
    if "sio" in by_name:
        print()
        print(
            "socket.io: the generator speaks the socket.io v5 protocol directly on engine.io's"
            " WebSocket transport (what socket.io-client sends once upgraded),"
            " not through socket.io-client."
        )
    if "gortc" not in by_name:
        return
    print()
    gortc = by_name["gortc"]
    for other in ("bare", "go", "sio"):
        if other not in by_name:
            continue
        parts = []
        for label in gortc["scenarios"]:
            for where, pick in (("best", best_of), ("first probe", first_of)):
                mine = (pick(gortc, label) or {}).get("deliveries_per_cpu_s")
                theirs = (pick(by_name[other], label) or {}).get("deliveries_per_cpu_s")
                ratio = f"x{mine / theirs:.2f}" if mine and theirs else "—"
                parts.append(f"{label} {where} {ratio}")
        print(f"gortc / {other:4} deliveries per server CPU-second: " + ", ".join(parts))


# ---------------------------------------------------------------- main


def prepare(servers: list[str]) -> None:
    for tool, package in (("node", "nodejs npm"), ("taskset", "util-linux")):
        found = shutil.which(tool)
        if found is None:
            raise SystemExit(f"{tool} is missing: apt-get install {package}")
        TOOLS[tool] = found
    for package in ("ws", "socket.io"):
        if not (FANOUT / "node_modules" / package).is_dir():
            raise SystemExit("run `npm ci` in bench/fanout first")
    if "go" in servers:
        sources = list((FANOUT / "gohub").glob("*.go"))
        if not GOHUB.exists() or any(s.stat().st_mtime > GOHUB.stat().st_mtime for s in sources):
            go = shutil.which("go")
            if go is None:
                raise SystemExit(
                    "go is missing: apt-get install golang-go golang-github-gorilla-websocket-dev"
                )
            OUT.mkdir(exist_ok=True)
            say("building the Go hub")
            subprocess.run(
                [go, "build", "-o", str(GOHUB), "."],
                cwd=FANOUT / "gohub",
                env={
                    **os.environ,
                    "GO111MODULE": "off",
                    "GOPATH": "/usr/share/gocode",
                    "GOCACHE": str(OUT / "go-cache"),
                },
                check=True,
            )
    # 10,000 connections need as many descriptors in the server and the generator.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The runner's own REST client stays off the server's core.
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(LOADGEN_CORE)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--servers", default="gortc,bare,go,sio", help=f"comma list of {', '.join(SERVERS)}"
    )
    parser.add_argument("--scenarios", default="1x1000,5x1000", help="ROOMSxSUBSCRIBERS, …")
    parser.add_argument("--no-rss", dest="rss", action="store_false", help="skip the memory run")
    parser.add_argument("--rss-rooms", type=int, default=10, help="rooms of 1,000 for memory")
    parser.add_argument("--rates", default="", help="fixed messages/s per room instead of search")
    parser.add_argument(
        "--start", type=float, default=SEARCH_START, help="deliveries/s at the first probe"
    )
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before each probe")
    parser.add_argument("--probe", type=float, default=2.5, help="seconds per search probe")
    parser.add_argument(
        "--first-probe", type=float, default=5.0, help="seconds of the first (common) probe"
    )
    parser.add_argument("--confirm", type=float, default=10.0, help="seconds the best rate holds")
    parser.add_argument("--factor", type=float, default=1.6, help="rate step while rates hold")
    parser.add_argument(
        "--resolution", type=float, default=0.3, help="bisect until held/failed are this close"
    )
    parser.add_argument("--p99-ms", type=float, default=100.0)
    parser.add_argument(
        "--probe-margin",
        type=float,
        default=0.7,
        help="a probe holds with p99 <= this share of the limit (the 10 s window needs room)",
    )
    parser.add_argument(
        "--quiet-max",
        type=float,
        default=20.0,
        help="seconds to wait for other programs to calm down after a disturbed step",
    )
    parser.add_argument(
        "--at-100k", default="gortc", help="servers also measured at 100 msg/s into 1 x 1,000"
    )
    parser.add_argument("--json", type=Path, help="write every figure here (default bench/out/)")
    args = parser.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    for name in servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name}")
    if args.at_100k == "all":
        args.at_100k = ",".join(SERVERS)
    prepare(servers)
    started = time.perf_counter()
    results = []
    for name in servers:
        results.append(bench_server(name, args))
    elapsed = time.perf_counter() - started
    report(results, args.p99_ms)
    OUT.mkdir(exist_ok=True)
    path = args.json or OUT / time.strftime("fanout-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps({"elapsed_s": round(elapsed), "results": results}, indent=1))
    print(f"\n{elapsed:.0f} s in all; every figure in {path}")


if __name__ == "__main__":
    main()
