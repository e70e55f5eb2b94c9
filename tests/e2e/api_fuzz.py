"""schemathesis against a real ``gortc serve``: the OpenAPI document is the
contract, and every answer the server gives must keep to it.

Used by tests/e2e/test_openapi_fuzz.py (few examples per operation) and by
``make fuzz`` (``python -m tests.e2e.api_fuzz --max-examples 2000``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.e2e.server_process import REPO, start_server

CONFIG = REPO / "tests" / "e2e" / "schemathesis.toml"
USERNAME = "fuzzer"
PASSWORD = "fuzzing password"  # a throwaway account of a throwaway server

_GENERATED = re.compile(r"(\d+) generated")
_FAILURES = re.compile(r"(\d+) found (\d+) unique failures")


@dataclass(frozen=True, slots=True)
class FuzzRun:
    returncode: int
    output: str

    @property
    def cases(self) -> int:
        match = _GENERATED.search(self.output)
        return int(match.group(1)) if match else 0

    @property
    def failures(self) -> int:
        match = _FAILURES.search(self.output)
        return int(match.group(2)) if match else 0

    @property
    def summary(self) -> str:
        """The failures section and the totals, for a test's message."""
        start = self.output.find("=== FAILURES")
        if start < 0:
            start = self.output.find("=== ERRORS")
        return self.output[max(start, 0) :][-20000:]


async def fuzz(
    data_dir: Path,
    *,
    auth: str,
    max_examples: int,
    phases: str = "examples,coverage,fuzzing,stateful",
    seed: int | None = None,
    # One: on CPython before 3.11.8, ast.parse in two threads at once can fail
    # ("AST constructor recursion depth mismatch", CPython gh-106905), and
    # hypothesis parses lambdas' source while schemathesis's workers generate.
    workers: int = 1,
    extra: tuple[str, ...] = (),
) -> FuzzRun:
    """Start a server, sign a user up, and run ``st run`` against it signed in
    with ``auth`` ("bearer" or "cookie")."""
    server = await start_server(
        data_dir,
        # Rate limits would answer 429 to the fuzzer's hundreds of requests a second.
        GORTC_LIMITS_ENABLED="false",
        # Signing in again after the fuzzer signs itself out: fast, for tests.
        GORTC_AUTH_BCRYPT_ROUNDS="4",
    )
    try:
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"{server.url}/api/v1/auth/register",
                json={"username": USERNAME, "email": "fuzzer@example.com", "password": PASSWORD},
            )
            assert response.status == 201, await response.text()
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{server.url}/api/openapi.json",
            "--checks",
            "all",
            "--phases",
            phases,
            "--max-examples",
            str(max_examples),
            "--workers",
            str(workers),
            "--generation-database",
            "none",
            *(("--seed", str(seed)) if seed is not None else ()),
            *extra,
        ]
        environment = os.environ | {
            "FUZZ_BASE_URL": server.url,
            "FUZZ_LOGIN": USERNAME,
            "FUZZ_PASSWORD": PASSWORD,
            "FUZZ_AUTH": auth,
            "COLUMNS": "120",
        }
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=REPO,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode is not None
        return FuzzRun(process.returncode, output.decode(errors="replace"))
    finally:
        await server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Fuzz the API with schemathesis.")
    parser.add_argument("--max-examples", type=int, default=2000)
    parser.add_argument("--auth", choices=("bearer", "cookie", "both"), default="both")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    arguments = parser.parse_args()
    modes = ("bearer", "cookie") if arguments.auth == "both" else (arguments.auth,)
    total_cases = total_failures = worst = 0
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="gortc-fuzz-") as data_dir:
            run = asyncio.run(
                fuzz(
                    Path(data_dir),
                    auth=mode,
                    max_examples=arguments.max_examples,
                    phases=arguments.phases,
                    seed=arguments.seed,
                    workers=arguments.workers,
                )
            )
        print(run.output)
        print(f"[{mode}] {run.cases} cases, {run.failures} failures (exit {run.returncode})")
        total_cases += run.cases
        total_failures += run.failures
        worst = max(worst, run.returncode)
    print(f"total: {total_cases} cases, {total_failures} failures")
    return worst


if __name__ == "__main__":
    sys.exit(main())
