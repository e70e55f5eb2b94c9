"""Builds dist/gortc, the single executable, with PyInstaller (the recipe is
deploy/binary/gortc.spec). ``make dist`` runs it; the binary's test and
bench/dist_start.py run it too, into folders of their own, so that all three
build the same thing the same way.

Prints the binary's path, size and build time; exits non-zero if PyInstaller
fails or the result does not start (``gortc --version``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SPEC = HERE / "gortc.spec"

# PyInstaller packs the executable's contents with zlib at level 9 unless told
# otherwise. On gortc's ~130 MB of libraries level 9 costs about 27 s of CPU
# against 7 s at level 6 for a file 0.6 % smaller, and unpacking at each start
# is as fast either way (measured: docs/benchmarks.md, "Single binary").
COMPRESSION_LEVEL = "6"


def build(dist: Path, work: Path) -> Path:
    """Runs PyInstaller and returns the path of the executable it made."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(dist),
            "--workpath",
            str(work),
            str(SPEC),
        ],
        cwd=REPO,
        env={**os.environ, "PYINSTALLER_ZLIB_COMPRESSION_LEVEL": COMPRESSION_LEVEL},
        check=True,
    )
    binary = dist / "gortc"
    # A binary that cannot even print its version is not worth shipping.
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True, env={}
    )
    if not version.stdout.startswith("gortc "):
        raise SystemExit(f"{binary} --version printed {version.stdout!r}")
    return binary


def main() -> int:
    parser = argparse.ArgumentParser(description="Builds the single executable gortc.")
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="where gortc goes")
    parser.add_argument(
        "--work", type=Path, default=REPO / "build" / "pyinstaller", help="PyInstaller's scratch"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    try:
        binary = build(args.dist.resolve(), args.work.resolve())
    except subprocess.CalledProcessError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    size = binary.stat().st_size / 2**20
    print(f"{binary}: {size:.1f} MiB, built in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
