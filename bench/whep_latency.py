"""Glass-to-glass delay of a live room over WebRTC: WHIP in, WHEP out.

A publisher (aiortc, in this process) stamps each frame with its number as a
barcode of black and white blocks, encodes it with libvpx and publishes it
to ``gortc serve`` (a subprocess) over WHIP; a WHEP viewer (also here, so
both read the same clock) decodes the frames and reads the barcodes back.
The delay of a frame is the time from handing it to the publisher's sender
to having it decoded at the viewer: the server's forwarding, both network
hops on 127.0.0.1, the viewer's jitter buffer and decoder. Camera capture
and display are not in it.

    python bench/whep_latency.py [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gortc_process import start_gortc

from gortc.media.aiortc_hooks import use_host_addresses

WIDTH, HEIGHT = 320, 240
BITS = 16
BLOCK = WIDTH // BITS
SDP = {"Content-Type": "application/sdp"}


class StampedTrack(VideoStreamTrack):
    """30 fps VP8 whose frames carry their number; remembers when each left."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: dict[int, float] = {}
        self._encoder = av.CodecContext.create("libvpx", "w")
        self._encoder.width, self._encoder.height = WIDTH, HEIGHT
        self._encoder.pix_fmt = "yuv420p"
        self._encoder.time_base = Fraction(1, 30)
        self._encoder.bit_rate = 500_000
        self._encoder.gop_size = 60
        self._encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        self._index = 0

    async def recv(self) -> av.Packet:  # type: ignore[override]
        await self.next_timestamp()
        planes = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
        for bit in range(BITS):
            planes[: HEIGHT // 2, bit * BLOCK : (bit + 1) * BLOCK] = (
                235 if self._index >> bit & 1 else 16
            )
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = self._index
        frame.time_base = Fraction(1, 30)
        (packet,) = self._encoder.encode(frame)
        self.sent_at[self._index] = time.monotonic()
        self._index += 1
        return packet


def read_stamp(frame: av.VideoFrame) -> int:
    grey = frame.to_ndarray(format="gray")[: HEIGHT // 2]
    number = 0
    for bit in range(BITS):
        if grey[:, bit * BLOCK + 2 : (bit + 1) * BLOCK - 2].mean() > 128:
            number |= 1 << bit
    return number


async def run(seconds: float) -> None:
    use_host_addresses(["127.0.0.1"])
    with tempfile.TemporaryDirectory() as data_dir:
        process, url = await start_gortc(
            data_dir,
            GORTC_LIMITS_ENABLED="false",
            GORTC_RTC_HOST_ADDRESSES="127.0.0.1",
            GORTC_LIVE_RTMP_PORT="0",
        )
        try:
            await measure(url, seconds)
        finally:
            process.terminate()
            await process.wait()


async def measure(url: str, seconds: float) -> None:
    async with aiohttp.ClientSession(url) as http:
        tokens = {}
        for name in ("streamer", "viewer"):
            await http.post(
                "/api/v1/auth/register",
                json={"username": name, "email": f"{name}@example.org", "password": "x" * 12},
            )
            login = await http.post(
                "/api/v1/auth/login", json={"login": name, "password": "x" * 12}
            )
            tokens[name] = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
        key = (await (await http.get("/api/v1/live/key", headers=tokens["streamer"])).json())[
            "stream_key"
        ]
        publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        track = StampedTrack()
        delays: list[tuple[float, float]] = []  # (arrival, delay)
        try:
            publisher.addTransceiver(track, direction="sendonly")
            await publisher.setLocalDescription(await publisher.createOffer())
            answer = await http.post(
                "/api/v1/live/whip",
                data=publisher.localDescription.sdp,
                headers=SDP | {"Authorization": f"Bearer {key}"},
            )
            assert answer.status == 201, await answer.text()
            room_id = answer.headers["Location"].rsplit("/", 1)[1]
            await publisher.setRemoteDescription(
                RTCSessionDescription(await answer.text(), "answer")
            )
            await asyncio.sleep(1.0)  # the publisher's connection up and sending

            viewer.addTransceiver("video", direction="recvonly")
            received: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
            viewer.on("track", received.put_nowait)
            await viewer.setLocalDescription(await viewer.createOffer())
            started = time.monotonic()
            answer = await http.post(
                f"/live/{room_id}/whep",
                data=viewer.localDescription.sdp,
                headers=SDP | tokens["viewer"],
            )
            assert answer.status == 201, await answer.text()
            await viewer.setRemoteDescription(RTCSessionDescription(await answer.text(), "answer"))
            remote = await received.get()
            first = None
            deadline = time.monotonic() + seconds
            with contextlib.suppress(MediaStreamError):
                while time.monotonic() < deadline:
                    frame = await remote.recv()
                    now = time.monotonic()
                    first = first or now - started
                    sent = track.sent_at.get(read_stamp(frame))  # type: ignore[arg-type]
                    if sent is not None:
                        delays.append((now, now - sent))
        finally:
            await viewer.close()
            await publisher.close()
    if not delays:
        raise SystemExit("no stamped frame came through")
    print(f"WHIP → gortc → WHEP, VP8 {WIDTH}×{HEIGHT} 30 fps, {len(delays)} frames read back")
    print(f"  first picture {first:.2f} s after the WHEP POST")
    settled = delays[0][0] + 2.0
    for label, chosen in (
        ("every frame", [d for _, d in delays]),
        ("from 2 s after the first picture", [d for at, d in delays if at >= settled]),
    ):
        chosen.sort()
        if not chosen:
            continue
        p95 = chosen[int(len(chosen) * 0.95)]
        print(
            f"  {label}: median {statistics.median(chosen) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {chosen[-1] * 1000:.0f} ms (target: ≤ 500 ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    asyncio.run(run(args.seconds))


if __name__ == "__main__":
    main()
