"""Group video calls: gortc's in-process aiortc SFU against Janus's VideoRoom
(the reference SFU), with the same bots, in the same run.

For each scenario (codec × resolution × participants) every server is
started afresh, pinned to one core (``taskset -c 0``), and one bots process,
pinned to the other, connects the call through it (``bench/calls/bots.py``):
each bot sends a pre-encoded clip (``bench/calls/media.py``: VP8 or H.264
at 30 fps, plus Opus) and receives everyone else's audio and video, counting
frames without decoding. After everyone gets frames from everyone and a
warm-up, a window is measured: the server's CPU (utime+stime from
/proc/<pid>/stat), RTP packets received by all subscribers (getStats), CPU µs
per forwarded packet, frames per second per source, loss. Servers take
turns within each scenario (the order alternates between rounds).

Run: ``make bench-calls`` (VP8 at 640×360, calls of 2, 4 and 6, ~3 min);
everything: ``python bench/calls_bench.py --all`` (~9 min); gortc's
forwarding against decoding and re-encoding: ``--servers
janus,gortc,gortc-transcode``. Needs Debian's ``janus`` (``apt-get install -y
janus``) and a C compiler for the loopback shim (see calls/janus.py), or
``--servers gortc``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from calls import media
from calls.gortc_sfu import ROOT, GortcProcess, start_gortc
from calls.janus import JanusProcess, janus_binary, loopback_shim, start_janus

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
SERVERS = {
    "janus": "Janus 1.1 VideoRoom",
    "gortc": "gortc (aiortc SFU)",
    "gortc-transcode": "gortc, decode + re-encode",
}
TARGET_US_PER_PACKET = 25.0
TARGET_JANUS_RATIO = 2.0
TARGET_SIX_360P_CPU = 100.0  # % of one core: half of the machine's two
DISTURBED = 15.0  # % of a core used by other programs during a window
BOTS_BOUND = 95.0  # % of a core: the bots, not the server, set the pace
SAME_BITS = 99.0  # % of frames bit-identical to the sent ones: nothing re-encoded


def say(text: str) -> None:
    print(f"[calls] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Scenario:
    codec: str
    resolution: str
    participants: int

    @property
    def label(self) -> str:
        return f"{self.codec} {self.resolution} ×{self.participants}"


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    return [
        Scenario(codec, resolution, size)
        for codec in args.codecs
        for resolution in args.resolutions
        for size in args.sizes
    ]


# ---------------------------------------------------------------- one measurement


@contextlib.contextmanager
def server_running(name: str, args: argparse.Namespace) -> Iterator[JanusProcess | GortcProcess]:
    """A fresh server for one measurement, stopped whatever happens."""
    pin = ["taskset", "-c", args.server_core] if args.pin else []
    with tempfile.TemporaryDirectory(prefix=f"calls-{name}-") as folder:
        server: JanusProcess | GortcProcess
        if name == "janus":
            server = start_janus(Path(folder), OUT / "calls-janus", pin)
        else:
            forwarding = "transcode" if name == "gortc-transcode" else args.gortc_forwarding
            server = start_gortc(Path(folder), pin, forwarding, args.gortc_source)
        try:
            yield server
        finally:
            server.stop()


def run_bots(
    name: str, server: JanusProcess | GortcProcess, scenario: Scenario, args: argparse.Namespace
) -> dict[str, Any]:
    """One bots process for the call; returns its figures (or the error)."""
    pin = ["taskset", "-c", args.bots_core] if args.pin else []
    command = [
        *pin,
        sys.executable,
        "-m",
        "calls.bots",
        "--sfu",
        "janus" if name == "janus" else "gortc",
        "--url",
        server.url,
        "--pid",
        str(server.pid),
        "--codec",
        scenario.codec,
        "--resolution",
        scenario.resolution,
        "--participants",
        str(scenario.participants),
        "--warmup",
        str(args.warmup),
        "--window",
        str(args.window),
        "--connect-timeout",
        str(args.connect_timeout),
    ]
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(BENCH), str(args.gortc_source)])
    limit = 2 * args.connect_timeout + args.warmup + args.window + 60
    bots = subprocess.Popen(
        command,
        cwd=BENCH,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = bots.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        bots.kill()
        bots.communicate()
        return {"error": f"the bots overran {limit:.0f} s"}
    finally:
        if bots.poll() is None:
            bots.kill()
            bots.wait()
    for line in err.splitlines():
        if line.startswith("[calls]"):
            say(line.removeprefix("[calls] "))
    results = [line for line in out.splitlines() if line.startswith("{")]
    if bots.returncode != 0 or not results:
        tail = "\n".join(err.splitlines()[-12:])
        return {"error": f"bots exited with {bots.returncode}:\n{tail}"}
    result: dict[str, Any] = json.loads(results[-1])
    if server.process.poll() is not None:
        result["server_exit"] = server.process.returncode
    return result


def machine_busy() -> float:
    """Cores' worth of CPU the whole machine used over the last second."""

    def ticks() -> int:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        return sum(values[:8]) - values[3] - values[4]

    before = ticks()
    time.sleep(1.0)
    return (ticks() - before) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(patience: float, threshold: float) -> float:
    """Waits (at most ``patience`` seconds) until other programs use less
    than ``threshold`` of a core; returns what they used last."""
    deadline = time.monotonic() + patience
    busy = machine_busy()
    while busy >= threshold and time.monotonic() < deadline:
        busy = machine_busy()
    return busy


def measure(name: str, scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    if args.quiet_max > 0:
        busy = wait_for_quiet(args.quiet_max, args.quiet_threshold)
        if busy >= args.quiet_threshold:
            say(f"the machine is busy ({busy:.2f} cores in use): measuring anyway")
    say(f"{scenario.label}: {SERVERS[name]}")
    try:
        with server_running(name, args) as server:
            result = run_bots(name, server, scenario, args)
            if "error" in result:
                result["server_log"] = server.log_tail(15)
    except SystemExit as error:  # a server that would not start
        result = {"error": str(error)}
    result.update({"server": name, "scenario": scenario.label})
    if "error" in result:
        say(f"{scenario.label}: {name} failed: {result['error']}")
    else:
        say(
            f"{scenario.label}: {name}: CPU {result['server_cpu_pct']:.1f} %, "
            f"{result['packets_per_s']:,.0f} pkt/s, {fmt(result['us_per_packet'], 1)} µs/pkt, "
            f"video {result['video']['fps_min']:.1f}/{result['video']['fps_mean']:.1f} fps"
        )
    return result


# ---------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def same_bits(result: dict[str, Any]) -> float | None:
    """% of the frames received (audio and video) that are bit-identical to
    frames of the publishers' clips."""
    frames = result["video"]["frames"] + result["audio"]["frames"]
    if not frames:
        return None
    identical = sum(
        (result[kind]["identical_pct"] or 0.0) * result[kind]["frames"] / 100
        for kind in ("video", "audio")
    )
    return 100 * identical / frames


def marks(result: dict[str, Any]) -> str:
    text = ""
    if result["other_cpu_pct"] > DISTURBED:
        text += "!"
    if result["bots_cpu_pct"] >= BOTS_BOUND:
        text += "*"
    if result["missing"] or result["video"]["skipped_at_senders"] or not result["server_alive"]:
        text += "?"
    return text


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(
        f"Group calls, each server pinned to core {args.server_core}, the bots to core "
        f"{args.bots_core}; {args.window:g} s windows after {args.warmup:g} s of warm-up."
    )
    for line in (
        "CPU: % of one core. pkt/s: RTP packets received by all subscribers (audio + video).",
        "video fps: frames per second per source at the subscribers (min/mean); audio: Opus",
        "frames per second (min). deliv: packets received / (packets sent × (participants −",
        "1)). loss: lost on the last hop (getStats: a server that packetises again hides what",
        "it lost upstream; deliv does not). same: frames received bit-identical to frames the",
        "publishers sent (nothing re-encoded).",
    ):
        print(line)
    print()
    header = (
        f"{'scenario':16} {'server':28} {'CPU %':>6} {'pkt/s':>7} {'µs/pkt':>7} "
        f"{'video fps':>11} {'audio':>5} {'deliv %':>7} {'loss %':>6} {'same %':>6} "
        f"{'bots %':>6} {'other %':>7}"
    )
    print(header)
    print("-" * len(header))
    flagged = False
    for result in results:
        label = SERVERS[result["server"]]
        if "error" in result:
            first = result["error"].splitlines()[0]
            print(f"{result['scenario']:16} {label:28} error: {first}")
            continue
        video, audio = result["video"], result["audio"]
        lost = video["lost"] + audio["lost"]
        received = video["packets"] + audio["packets"]
        loss = 100 * lost / (received + lost) if received + lost else 0.0
        mark = marks(result)
        flagged = flagged or bool(mark)
        print(
            f"{result['scenario']:16} {label:28} {result['server_cpu_pct']:>6.1f} "
            f"{result['packets_per_s']:>7,.0f} {fmt(result['us_per_packet'], 1):>7} "
            f"{video['fps_min']:>5.1f}/{video['fps_mean']:<5.1f} {audio['fps_min']:>5.1f} "
            f"{fmt(result['delivered_pct'], 1):>7} {loss:>6.2f} {fmt(same_bits(result), 1):>6} "
            f"{result['bots_cpu_pct']:>6.0f} "
            f"{result['other_cpu_pct']:>7.0f} {mark}"
        )
    if flagged:
        print(
            f"! other programs used more than {DISTURBED:g} % of a core in the window; "
            f"* the bots used >= {BOTS_BOUND:g} % of theirs (they may set the pace); "
            "? a source never flowed, senders skipped frames, or the server died"
        )
    ratios(results)


def ratios(results: list[dict[str, Any]]) -> None:
    """gortc / Janus per scenario (medians over rounds), and the targets."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in results:
        if "error" not in result:
            by.setdefault((result["scenario"], result["server"]), []).append(result)
    labels = list(dict.fromkeys(r["scenario"] for r in results))
    lines: list[str] = []
    for label in labels:
        janus = by.get((label, "janus"))
        for name in ("gortc", "gortc-transcode"):
            mine = by.get((label, name))
            if not mine:
                continue
            cpu = median([r["server_cpu_pct"] for r in mine])
            per_packet = median([r["us_per_packet"] or 0.0 for r in mine])
            line = f"{label:16} {SERVERS[name]:28} {per_packet:>6.1f} µs/pkt"
            if janus:
                janus_cpu = median([r["server_cpu_pct"] for r in janus])
                janus_packet = median([r["us_per_packet"] or 0.0 for r in janus])
                if janus_cpu > 0 and janus_packet > 0:
                    line += (
                        f"   CPU ×{cpu / janus_cpu:.2f} Janus ({cpu:.1f} / {janus_cpu:.1f} %)"
                        f"   µs/pkt ×{per_packet / janus_packet:.2f}"
                    )
            lines.append(line)
    if lines:
        print()
        print("gortc against Janus, same call, same run (medians over rounds):")
        for line in lines:
            print("  " + line)
    targets(by)


def targets(by: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    gortc = [r for (_, name), rs in by.items() if name == "gortc" for r in rs]
    if not gortc:
        return
    print()
    print("Targets (gortc passthrough):")
    largest = max(r["participants"] for r in gortc)
    packets = [r["us_per_packet"] or 0.0 for r in gortc if r["participants"] == largest]
    verdict = "met" if max(packets) <= TARGET_US_PER_PACKET else "not met"
    print(
        f"  <= {TARGET_US_PER_PACKET:g} µs CPU per forwarded packet: {min(packets):.1f}–"
        f"{max(packets):.1f} in calls of {largest} ({verdict})"
    )
    worst_ratio = 0.0
    for (label, name), mine in by.items():
        janus = by.get((label, "janus"))
        if name != "gortc" or not janus:
            continue
        janus_cpu = median([r["server_cpu_pct"] for r in janus])
        if janus_cpu > 0:
            worst_ratio = max(worst_ratio, median([r["server_cpu_pct"] for r in mine]) / janus_cpu)
    if worst_ratio:
        verdict = "met" if worst_ratio <= TARGET_JANUS_RATIO else "not met"
        print(f"  <= ×{TARGET_JANUS_RATIO:g} Janus's CPU: worst ×{worst_ratio:.2f} ({verdict})")
    six = [r for r in gortc if r["participants"] == 6 and r["resolution"] == "360p"]
    if six:
        cpu = max(r["server_cpu_pct"] for r in six)
        verdict = "met" if cpu < TARGET_SIX_360P_CPU else "not met"
        print(
            f"  6-party 360p under 50 % of the 2 cores: {cpu:.1f} % of one core "
            f"= {cpu / 2:.1f} % of the machine ({verdict})"
        )
    same = [value for r in gortc if (value := same_bits(r)) is not None]
    if same:
        verdict = "met" if min(same) >= SAME_BITS else "not met"
        print(
            f"  no re-encoding: {min(same):.2f}–{max(same):.2f} % of the frames the subscribers "
            f"got were bit-identical to frames the publishers sent ({verdict}; a frame cut "
            "short by a loss differs too, a re-encoded one always does)"
        )


# ---------------------------------------------------------------- command line


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def names(allowed: tuple[str, ...] | list[str]) -> Any:
        def parse(text: str) -> list[str]:
            chosen = [t.strip() for t in text.split(",") if t.strip()]
            unknown = [t for t in chosen if t not in allowed]
            if unknown:
                raise argparse.ArgumentTypeError(f"unknown: {', '.join(unknown)}")
            return chosen

        return parse

    def sizes(text: str) -> list[int]:
        chosen = [int(t) for t in text.split(",") if t.strip()]
        if any(n < 2 for n in chosen):
            raise argparse.ArgumentTypeError("a call has at least 2 participants")
        return chosen

    parser.add_argument("--servers", type=names(list(SERVERS)), default=["janus", "gortc"])
    parser.add_argument("--codecs", type=names(media.CODECS), default=["vp8"])
    parser.add_argument("--resolutions", type=names(list(media.RESOLUTIONS)), default=["360p"])
    parser.add_argument("--sizes", type=sizes, default=[2, 4, 6], help="participants per call")
    parser.add_argument(
        "--all", action="store_true", help="VP8 and H.264, 360p and 720p, calls of 2, 4 and 6"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measurements per server and scenario"
    )
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before the window")
    parser.add_argument(
        "--window",
        type=float,
        default=10.0,
        help="seconds measured (a multiple of the clips' 10 s sends the same bytes every time)",
    )
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument(
        "--gortc-forwarding",
        choices=("passthrough", "transcode"),
        help="sets GORTC_RTC_FORWARDING for the 'gortc' server (default: its own default)",
    )
    parser.add_argument(
        "--gortc-source",
        type=Path,
        default=ROOT,
        help="the gortc checkout to run (default: this one)",
    )
    parser.add_argument(
        "--quiet-max",
        type=float,
        default=60.0,
        help="seconds to wait, before each measurement, for other programs to calm down",
    )
    parser.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.3,
        help="cores' worth of CPU in use that counts as calm",
    )
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--bots-core", default="1")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no taskset")
    parser.add_argument("--json", type=Path, help="write every figure here (default bench/out/)")
    args = parser.parse_args(argv)
    if args.all:
        args.codecs, args.resolutions, args.sizes = list(media.CODECS), ["360p", "720p"], [2, 4, 6]
    args.gortc_source = args.gortc_source.resolve()
    return args


def prepare(args: argparse.Namespace) -> None:
    if args.pin and not shutil.which("taskset"):
        raise SystemExit("taskset (util-linux) is needed to pin the processes, or pass --no-pin")
    if "janus" in args.servers:
        janus_binary()
        loopback_shim(OUT / "calls-janus")
    media.prepare(args.codecs, args.resolutions)


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every server and bots process stops."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main() -> None:
    args = parse_arguments()
    stop_on_sigterm()
    prepare(args)
    results: list[dict[str, Any]] = []
    started = time.strftime("%Y%m%d-%H%M%S")
    try:
        for scenario in scenarios(args):
            for round_number in range(args.rounds):
                order = args.servers if round_number % 2 == 0 else args.servers[::-1]
                for name in order:
                    result = measure(name, scenario, args)
                    result["round"] = round_number
                    results.append(result)
    except KeyboardInterrupt:
        say("interrupted: reporting what was measured")
    OUT.mkdir(exist_ok=True)
    path = args.json or OUT / f"calls-{started}.json"
    path.write_text(
        json.dumps({"arguments": vars(args), "results": results}, indent=1, default=str)
    )
    report(results, args)
    print(f"\nEvery figure: {path}")


if __name__ == "__main__":
    main()
