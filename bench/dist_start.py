"""The single executable against ``python -m gortc``: its size, how long it
takes to build, and how long each takes from start to a ready ``/healthz``
(and to print ``--version``), in one run, alternating, twice each.

The binary is built here, into a temporary folder, by deploy/binary/build.py
(what ``make dist`` runs), and started with ``env -i`` from an empty folder;
``python -m gortc serve`` runs from the checkout with the caller's
environment minus any GORTC_* setting. Each start gets a new data directory
(a first start: the database is created). Memory is the resident size of the
whole process tree (the binary is two processes: a small launcher that
unpacks and waits, and the server). Run: ``make bench-dist``.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from gortc_process import READY, clean_environment

REPO = Path(__file__).resolve().parent.parent
ROUNDS = 2


def build(out: Path) -> tuple[Path, float, float]:
    """(the binary, seconds, CPU seconds of PyInstaller and its helpers)."""
    before = children_cpu_seconds()
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(REPO / "deploy" / "binary" / "build.py"),
            "--dist",
            str(out / "dist"),
            "--work",
            str(out / "work"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return out / "dist" / "gortc", time.perf_counter() - started, children_cpu_seconds() - before


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_tree(pid: int) -> list[int]:
    found = [pid]
    for current in found:
        with open(f"/proc/{current}/task/{current}/children") as children:
            found += [int(child) for child in children.read().split()]
    return found


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total_kib = 0
    for current in process_tree(pid):
        with open(f"/proc/{current}/status") as status:
            total_kib += next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return total_kib / 1024


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its descendants have used so
    far: on a shared machine, steadier than the wall clock."""
    ticks = 0
    for current in process_tree(pid):
        with open(f"/proc/{current}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_serve(
    command: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, float, float, float]:
    """(seconds from launch until /healthz answers, CPU seconds used by then,
    idle RSS in MiB one second later, and the server's own figure from its
    log line: from the start of its Python process to listening; for the
    binary, that leaves out the launcher's unpacking)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    url = ""
    own = 0.0
    for line in process.stderr:
        if READY in line:
            url = line.split(READY, 1)[1].split()[0]
            own = float(line.split(" in ", 1)[1].split("s", 1)[0])
            break
    if not url:
        raise SystemExit(f"{command[0]} exited before it was ready")
    with urllib.request.urlopen(url + "/healthz") as response:  # noqa: S310 - loopback only
        response.read()
    ready = time.perf_counter() - started
    cpu = tree_cpu_seconds(process.pid)
    time.sleep(1.0)
    rss = tree_rss_mib(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return ready, cpu, rss, own


def measure_version(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, CPU seconds) for a command to run to its end."""
    before = children_cpu_seconds()
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, children_cpu_seconds() - before


def main() -> None:
    parser = argparse.ArgumentParser(description="The single binary against python -m gortc.")
    parser.add_argument("--binary", type=Path, help="measure this one instead of building one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        if args.binary:
            binary = args.binary.resolve()
            built = "not built here"
        else:
            binary, build_seconds, build_cpu = build(root)
            built = f"built in {build_seconds:.0f} s (CPU {build_cpu:.0f} s)"
        size = binary.stat().st_size
        print(f"binary: {size / 2**20:.1f} MiB ({size:,} bytes), {built}")
        bare = {"GORTC_LIVE_RTMP_PORT": "0"}
        runs = {
            # env -i: no PATH, no HOME, no Python anywhere in sight.
            "dist/gortc serve": (
                ["env", "-i", *(f"{k}={v}" for k, v in bare.items()), str(binary)],
                {},
            ),
            "python -m gortc serve": (
                [sys.executable, "-m", "gortc"],
                clean_environment(**bare),
            ),
        }
        for round_number in range(1, ROUNDS + 1):
            for name, (command, env) in runs.items():
                folder = root / f"{round_number}-{name.split()[0].replace('/', '-')}"
                folder.mkdir()
                # The binary starts in its empty folder; python -m gortc needs the checkout.
                ready, cpu, rss, own = measure_serve(
                    [*command, "serve", "--port", "0", "--data-dir", str(folder / "data")],
                    folder if command[0] == "env" else REPO,
                    env,
                )
                version, version_cpu = measure_version([*command, "--version"], env)
                print(
                    f"round {round_number}  {name:22}  ready {ready:4.1f} s (CPU {cpu:4.1f} s,"
                    f" log {own:4.1f} s)  idle RSS {rss:5.1f} MiB  --version {version:4.1f} s"
                    f" (CPU {version_cpu:4.1f} s)"
                )


if __name__ == "__main__":
    main()
