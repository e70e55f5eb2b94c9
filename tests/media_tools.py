"""ffmpeg and ffprobe for the live-streaming tests: found or, under CI,
required (CI installs them; a missing one must fail there, not skip)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {name} for the live-streaming tests (apt-get install ffmpeg)")
        pytest.skip(f"{name} is not installed (apt-get install ffmpeg)")
    return path


async def ffmpeg_publish(
    url: str, *, seconds: float, size: str = "320x240", gop: int = 30, extra: tuple[str, ...] = ()
) -> asyncio.subprocess.Process:
    """Starts ffmpeg publishing a test pattern and a tone, encoded as OBS
    does by default (H.264 + AAC in FLV), in real time."""
    return await asyncio.create_subprocess_exec(
        require_tool("ffmpeg"),
        "-hide_banner", "-nostdin", "-loglevel", "error",
        "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-g", str(gop), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k",
        *extra,
        "-f", "flv", url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def probe(path: Path) -> dict[str, Any]:
    """ffprobe's view of a media file: its streams and frame counts."""
    process = await asyncio.create_subprocess_exec(
        require_tool("ffprobe"),
        "-v", "error", "-count_frames",
        "-show_entries", "stream=codec_name,codec_type,nb_read_frames",
        "-of", "json", str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return json.loads(out)  # type: ignore[no-any-return]
