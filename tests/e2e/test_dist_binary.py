"""The single executable (``make dist``) as an operator meets it: built with
PyInstaller, started with ``env -i`` (no Python, no venv, no PATH) from an
empty folder, it serves the API and the web client, takes an RTMP stream and
plays it back as HLS, and its CLI works beside the running server.

The build is most of this test's time (about 26 s of CPU; 1.5–2 minutes
on a busy two-core machine).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import pytest

from tests.conftest import TEST_PASSWORD
from tests.media_tools import ffmpeg_publish, probe, require_tool

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"ready on (http://127\.0\.0\.1:\d+)")

pytestmark = pytest.mark.slow


def require_build_tools() -> None:
    """PyInstaller comes with the test extra; objdump and strip with
    binutils. Missing under CI is a failure, elsewhere a skip."""
    missing = [
        f"{tool} (apt-get install binutils)"
        for tool in ("objdump", "strip")
        if shutil.which(tool) is None
    ]
    if importlib.util.find_spec("PyInstaller") is None:
        missing.append("PyInstaller (pip install -e '.[test]')")
    if missing:
        message = "building the binary needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Checked before the build, so that a missing tool does not cost a minute.
    require_tool("ffmpeg")
    require_tool("ffprobe")
    require_build_tools()
    out = tmp_path_factory.mktemp("dist")
    # The same script as `make dist`, into a folder of the test's own.
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
        timeout=300,
    )
    return out / "dist" / "gortc"


def bare_environment(scratch: Path) -> list[str]:
    """``env -i`` and only what the binary is given: a free RTMP port, calls
    on loopback, quick password hashing, and a TMPDIR of the test's own (to
    see that the binary cleans up what it unpacks there)."""
    return [
        "env",
        "-i",
        f"TMPDIR={scratch}",
        "GORTC_LIVE_RTMP_PORT=0",
        "GORTC_RTC_HOST_ADDRESSES=127.0.0.1",
        "GORTC_AUTH_BCRYPT_ROUNDS=4",
    ]


def mapped_files(pid: int) -> set[str]:
    """Every file mapped into a process and its descendants (the binary is a
    launcher and, as its child, the server)."""
    files: set[str] = set()
    pending = [pid]
    while pending:
        current = pending.pop()
        with open(f"/proc/{current}/maps") as maps:
            files |= {line.split()[5] for line in maps if len(line.split()) > 5}
        with open(f"/proc/{current}/task/{current}/children") as children:
            pending += [int(child) for child in children.read().split()]
    return files


async def signed_in(http: aiohttp.ClientSession, username: str) -> dict[str, str]:
    response = await http.post(
        "/api/v1/auth/login", json={"login": username, "password": TEST_PASSWORD}
    )
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


@pytest.mark.timeout(420)
async def test_the_binary_serves_the_client_and_a_live_stream_and_runs_the_cli(
    binary: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = bare_environment(scratch)

    started = time.monotonic()
    server = await asyncio.create_subprocess_exec(
        *env,
        str(binary),
        "serve",
        "--port",
        "0",
        "--data-dir",
        "data",
        cwd=folder,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert server.stderr is not None
    log: list[str] = []
    publisher: asyncio.subprocess.Process | None = None
    try:
        async with asyncio.timeout(60):
            while not (match := READY.search(log[-1] if log else "")):
                line = (await server.stderr.readline()).decode()
                assert line, "the binary exited before it was ready:\n" + "".join(log)
                log.append(line)
        url = match.group(1)
        print(f"binary ready in {time.monotonic() - started:.1f} s")

        async def drain() -> None:
            assert server.stderr is not None
            while line := await server.stderr.readline():
                log.append(line.decode())

        draining = asyncio.get_running_loop().create_task(drain())

        async with aiohttp.ClientSession(url) as http:
            health = await http.get("/healthz")
            assert health.status == 200
            assert (await health.json())["status"] == "ok"
            assert (folder / "data").is_dir()  # the relative --data-dir, in the empty folder
            # Nothing of this machine's Python is used: the interpreter is the
            # copy the binary unpacked into its TMPDIR, and no module or
            # library comes from the installed Python's folders.
            loaded = mapped_files(server.pid)
            libpython = f"/libpython{sys.version_info.major}.{sys.version_info.minor}.so"
            interpreters = {path for path in loaded if libpython in path}
            assert interpreters, loaded
            assert all(path.startswith(f"{scratch}/") for path in interpreters), interpreters
            paths = sysconfig.get_paths()
            python_dirs = {paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
            borrowed = {
                path for path in loaded if any(path.startswith(f"{root}/") for root in python_dirs)
            }
            assert not borrowed

            # The web client: its page and the module it starts with.
            page = await http.get("/")
            assert page.status == 200
            assert page.content_type == "text/html"
            html = await page.text()
            module = re.search(r'<script type="module" src="([^"]+)"', html)
            assert module, html
            script = await http.get(module.group(1))
            assert script.status == 200
            assert script.content_type in ("text/javascript", "application/javascript")
            assert "import " in await script.text()

            # Sign up through the API, then publish as OBS would.
            created = await http.post(
                "/api/v1/auth/register",
                json={"username": "alice", "email": "alice@example.com", "password": TEST_PASSWORD},
            )
            assert created.status == 201, await created.text()
            alice = await signed_in(http, "alice")
            key = await (await http.get("/api/v1/live/key", headers=alice)).json()
            publisher = await ffmpeg_publish(key["rtmp_url"], seconds=15)

            hls_url = ""
            async with asyncio.timeout(20):
                while not hls_url:
                    rooms = await (await http.get("/api/v1/live", headers=alice)).json()
                    hls_url = rooms["items"][0]["hls_url"] if rooms["items"] else ""
                    await asyncio.sleep(0.2)

            # Played the way a player does: the URL as given, no headers, no cookies.
            async with aiohttp.ClientSession() as player:
                playlist = ""
                async with asyncio.timeout(20):
                    while "#EXTINF" not in playlist:
                        response = await player.get(hls_url)
                        playlist = await response.text() if response.status == 200 else ""
                        await asyncio.sleep(0.2)
                segment_uri = next(
                    line for line in playlist.splitlines() if line and not line.startswith("#")
                )
                segment = await player.get(urljoin(hls_url, segment_uri))
                assert segment.status == 200
                assert segment.content_type == "video/mp2t"
                saved = tmp_path / "segment.ts"
                saved.write_bytes(await segment.read())
            streams = {s["codec_type"]: s for s in (await probe(saved))["streams"]}
            assert streams["video"]["codec_name"] == "h264"
            assert int(streams["video"]["nb_read_frames"]) > 0
            assert streams["audio"]["codec_name"] == "aac"

            # The CLI of the same binary, beside the running server, on its data.
            added = await asyncio.create_subprocess_exec(
                *env,
                str(binary),
                "user",
                "add",
                "carol",
                "carol@example.com",
                "--password-stdin",
                "--data-dir",
                "data",
                cwd=folder,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(added.communicate(f"{TEST_PASSWORD}\n".encode()), 60)
            assert added.returncode == 0, err.decode()
            assert out.decode().startswith("added carol")
            await signed_in(http, "carol")

        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 20) == 0, "".join(log)
        await draining
        assert "stopped" in log[-1]
        # What the binary unpacked to run is gone once it has stopped.
        assert list(scratch.iterdir()) == []
    finally:
        for process in (publisher, server):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
