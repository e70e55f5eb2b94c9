"""Call bots: aiortc peers that send pre-encoded media and count, without
decoding, what they receive; and the measurement of one call.

Each bot's tracks hand aiortc ``av.Packet``s from a clip (see media.py),
paced in real time and looping with continuous timestamps: aiortc's sender
packetises them without encoding. Received media is counted, not decoded:
in the peer connection's ``track`` event (before the receiver starts) the
receiver's decoder queue is swapped for one that counts each depacketised
frame and passes on only the stop marker, so the idle decoder thread still
exits. The receiver keeps its jitter buffer, NACKs and receiver reports, so
the SFU sees ordinary RTCP.

Run by the driver (``bench/calls_bench.py``) as one process for all bots,
separate from the server: ``python -m calls.bots --sfu janus --url … --pid …``
from ``bench/``. It connects the call, waits until every participant gets
frames from every other, warms up, then measures a window and prints one JSON
line: the server's CPU (utime+stime from /proc/<pid>/stat), the bots' and
the rest of the machine's, RTP packets received by all subscribers
(getStats), packets lost, frames per second per source.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from . import media

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def say(text: str) -> None:
    print(f"[calls] {text}", file=sys.stderr, flush=True)


def loopback_only() -> None:
    """ICE host candidates on 127.0.0.1 only (aioice leaves loopback out by
    default, and the machines' rule is loopback-only traffic)."""
    try:
        from gortc.media.aiortc_hooks import use_host_addresses
    except Exception:  # not importable here, or the tree is mid-edit
        import aioice.ice

        def use_host_addresses(addresses: list[str]) -> None:
            def chosen(use_ipv4: bool, use_ipv6: bool) -> list[str]:
                return list(addresses) if use_ipv4 else []

            aioice.ice.get_host_addresses = chosen

    use_host_addresses(["127.0.0.1"])


# ---------------------------------------------------------------- sending


class ClipTrack(MediaStreamTrack):
    """Hands out a clip's packets in real time, looping, with timestamps
    that keep increasing across loops. Like a camera, it does not catch up
    in a burst after a stall of the bots' process: beyond ``MAX_BEHIND``
    frames late it skips to the present (and counts what it skipped), so
    the rate the server sees stays the clip's rate."""

    MAX_BEHIND = 3

    def __init__(self, clip: media.Clip) -> None:
        super().__init__()
        self.kind = clip.kind
        self.clip = clip
        self.index = 0  # position on the clip's timeline, from the start
        self.sent = 0
        self.skipped = 0
        self.start = 0.0
        self.step = float(clip.interval * clip.time_base)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self.sent == 0:
            self.start = loop.time()
        delay = self.start + self.index * self.step - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            due = int((loop.time() - self.start) / self.step)
            if due - self.index > self.MAX_BEHIND:
                self.skipped += due - self.index
                self.index = due
        source = self.clip.packets[self.index % len(self.clip.packets)]
        packet = av.Packet(source.data)
        packet.pts = self.index * self.clip.interval
        packet.time_base = self.clip.time_base
        self.index += 1
        self.sent += 1
        return packet


# ---------------------------------------------------------------- receiving


@dataclass
class Inbound:
    """What one receiver (one remote source's audio or video) got."""

    bot: str
    kind: str
    mid: str
    source: str
    receiver: RTCRtpReceiver
    frames: int = 0
    bytes: int = 0
    first_frame: float = 0.0
    last_timestamp: int = -1
    identical: int = 0  # frames bit-identical to one the publishers sent


class CountingQueue(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue: counts frames, decodes none.
    A frame counts once, by its RTP timestamp: after a loss, aiortc's jitter
    buffer can hand over pieces of one frame more than once."""

    def __init__(self, inbound: Inbound, clip: media.Clip) -> None:
        super().__init__()
        self.inbound = inbound
        self.clip = clip

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # the stop marker: let the idle decoder thread exit
            super().put(None, block, timeout)
            return
        _codec, frame = item
        inbound = self.inbound
        if frame.timestamp <= inbound.last_timestamp:
            return
        inbound.last_timestamp = frame.timestamp
        if not inbound.frames:
            inbound.first_frame = time.monotonic()
        inbound.frames += 1
        inbound.bytes += len(frame.data)
        if media.frame_digest(self.clip.codec, frame.data) in self.clip.digests:
            inbound.identical += 1


def _codec_preferences(kind: str, codec: str) -> list[Any]:
    wanted = {"vp8": "video/vp8", "h264": "video/h264", "opus": "audio/opus"}[codec]
    capabilities = RTCRtpSender.getCapabilities(kind)
    assert capabilities is not None
    return [c for c in capabilities.codecs if c.mimeType.lower() in (wanted, f"{kind}/rtx")]


@dataclass
class Bot:
    name: str
    video: media.Clip
    audio: media.Clip
    connections: list[RTCPeerConnection] = field(default_factory=list)
    inbound: list[Inbound] = field(default_factory=list)
    tracks: list[ClipTrack] = field(default_factory=list)
    sources: dict[int, dict[str, str]] = field(default_factory=dict)  # id(pc) → mid → who

    def _connection(self) -> RTCPeerConnection:
        # max-bundle: with aiortc's default (balanced), an offer that brings
        # two new m-lines of one kind leaves the second on a transport that
        # BUNDLE then discards; its packets reach the first by payload type.
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.connections.append(pc)
        self.sources[id(pc)] = {}

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for transceiver in pc.getTransceivers():
                receiver = transceiver.receiver
                if receiver.track is not track:
                    continue
                if getattr(receiver, "_RTCRtpReceiver__started", True):
                    raise RuntimeError("aiortc started the receiver before the track event")
                mid = transceiver.mid or "?"
                inbound = Inbound(
                    self.name, track.kind, mid, self.sources[id(pc)].get(mid, "?"), receiver
                )
                clip = self.video if track.kind == "video" else self.audio
                receiver._RTCRtpReceiver__decoder_queue = CountingQueue(inbound, clip)  # type: ignore[attr-defined]
                self.inbound.append(inbound)

        return pc

    def publishing_connection(self) -> RTCPeerConnection:
        """A connection that sends this bot's audio and video."""
        pc = self._connection()
        for clip in (self.audio, self.video):
            track = ClipTrack(clip)
            self.tracks.append(track)
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(_codec_preferences(clip.kind, clip.codec))
        return pc

    def subscribing_connection(self, sources: dict[str, str]) -> RTCPeerConnection:
        """A connection that only receives; ``sources`` names who is behind
        each mid."""
        pc = self._connection()
        self.sources[id(pc)].update(sources)
        return pc

    def name_sources(self, pc: RTCPeerConnection, sources: dict[str, str]) -> None:
        self.sources[id(pc)].update(sources)

    async def offer(self, pc: RTCPeerConnection) -> str:
        """A complete offer (ICE candidates gathered, no trickle)."""
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    async def accept_answer(self, pc: RTCPeerConnection, sdp: str) -> None:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def answer(self, pc: RTCPeerConnection, sdp: str) -> str:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def enlarge_receive_buffers(self, size: int) -> int:
        """Sets SO_RCVBUF on every UDP socket of this bot's connections
        (aiortc keeps the kernel default, ~200 KB, which a 720p keyframe
        from five publishers at once can overflow while the bots' event
        loop is busy); returns how many sockets it changed."""
        changed = 0
        for pc in self.connections:
            for transceiver in pc.getTransceivers():
                ice = transceiver.receiver.transport.transport
                connection = getattr(ice, "_connection", None)
                for protocol in getattr(connection, "_protocols", []):
                    transport = getattr(protocol, "transport", None)
                    sock = transport.get_extra_info("socket") if transport else None
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                        changed += 1
        return changed

    async def close(self) -> None:
        for pc in self.connections:
            with contextlib.suppress(Exception):
                await pc.close()


class Call(Protocol):
    name: str

    async def setup(self, bots: list[Bot]) -> None: ...

    async def teardown(self) -> None: ...


# ---------------------------------------------------------------- measuring


def process_ticks(pid: int) -> int:
    """utime + stime of every thread of ``pid``, in clock ticks."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def process_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def udp_receive_buffer_errors() -> int:
    """The kernel's count of UDP datagrams dropped for a full receive buffer
    (every socket of the machine: server and bots alike)."""
    with open("/proc/net/snmp") as snmp:
        rows = [line.split() for line in snmp if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def machine_busy_ticks() -> int:
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle


@dataclass
class Snapshot:
    wall: float
    server: int
    bots: int
    machine: int
    udp_drops: int
    frames: dict[int, int]
    identical: dict[int, int]
    bytes: dict[int, int]
    received: dict[int, int]
    lost: dict[int, int]
    sent: dict[str, int]
    frames_sent: dict[int, int]
    frames_skipped: dict[int, int]


async def snapshot(bots: list[Bot], server_pid: int) -> Snapshot:
    received: dict[int, int] = {}
    lost: dict[int, int] = {}
    sent: dict[str, int] = {}
    inbound = [i for bot in bots for i in bot.inbound]
    for i in inbound:
        report = await i.receiver.getStats()
        stats = [s for s in report.values() if s.type == "inbound-rtp"]
        received[id(i)] = sum(s.packetsReceived for s in stats)
        lost[id(i)] = sum(s.packetsLost for s in stats)
    for bot in bots:
        for pc in bot.connections:
            for sender in pc.getSenders():
                if sender.track is None:
                    continue
                report = await sender.getStats()
                key = f"{bot.name}/{sender.track.kind}"
                sent[key] = sent.get(key, 0) + sum(
                    s.packetsSent for s in report.values() if s.type == "outbound-rtp"
                )
    return Snapshot(
        wall=time.monotonic(),
        server=process_ticks(server_pid),
        bots=process_ticks(os.getpid()),
        machine=machine_busy_ticks(),
        udp_drops=udp_receive_buffer_errors(),
        frames={id(i): i.frames for i in inbound},
        identical={id(i): i.identical for i in inbound},
        bytes={id(i): i.bytes for i in inbound},
        received=received,
        lost=lost,
        sent=sent,
        frames_sent={id(t): t.sent for bot in bots for t in bot.tracks},
        frames_skipped={id(t): t.skipped for bot in bots for t in bot.tracks},
    )


def summarise(bots: list[Bot], a: Snapshot, b: Snapshot) -> dict[str, Any]:
    seconds = b.wall - a.wall
    inbound = [i for bot in bots for i in bot.inbound]
    server_s = (b.server - a.server) / CLOCK_TICKS
    bots_s = (b.bots - a.bots) / CLOCK_TICKS
    machine_s = (b.machine - a.machine) / CLOCK_TICKS
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in ("video", "audio"):
        mine = [i for i in inbound if i.kind == kind]
        rates = [(b.frames[id(i)] - a.frames[id(i)]) / seconds for i in mine]
        received = sum(b.received[id(i)] - a.received[id(i)] for i in mine)
        frames = sum(b.frames[id(i)] - a.frames[id(i)] for i in mine)
        identical = sum(b.identical[id(i)] - a.identical[id(i)] for i in mine)
        lost = sum(b.lost[id(i)] - a.lost[id(i)] for i in mine)
        sent = sum(v - a.sent.get(k, 0) for k, v in b.sent.items() if k.endswith("/" + kind))
        tracks = [t for bot in bots for t in bot.tracks if t.kind == kind]
        sent_rates = [(b.frames_sent[id(t)] - a.frames_sent[id(t)]) / seconds for t in tracks]
        per_kind[kind] = {
            "sent_fps_min": min(sent_rates, default=0.0),
            "sent_fps_mean": sum(sent_rates) / len(sent_rates) if sent_rates else 0.0,
            "skipped_at_senders": sum(
                b.frames_skipped[id(t)] - a.frames_skipped[id(t)] for t in tracks
            ),
            "sources": len(mine),
            "frames": frames,
            "identical_pct": 100 * identical / frames if frames else None,
            "fps_min": min(rates, default=0.0),
            "fps_mean": sum(rates) / len(rates) if rates else 0.0,
            "fps_max": max(rates, default=0.0),
            "packets": received,
            "packets_per_s": received / seconds,
            "lost": lost,
            "loss_pct": 100 * lost / (received + lost) if received + lost > 0 else 0.0,
            "sent_packets": sent,
            "mbps_per_source": (
                sum(b.bytes[id(i)] - a.bytes[id(i)] for i in mine) * 8 / seconds / 1e6 / len(mine)
                if mine
                else 0.0
            ),
        }
    packets = per_kind["video"]["packets"] + per_kind["audio"]["packets"]
    participants = len(bots)
    sent = per_kind["video"]["sent_packets"] + per_kind["audio"]["sent_packets"]
    expected = sent * (participants - 1)
    return {
        "window_s": seconds,
        "server_cpu_s": server_s,
        "server_cpu_pct": 100 * server_s / seconds,
        "bots_cpu_pct": 100 * bots_s / seconds,
        "other_cpu_pct": 100 * max(0.0, machine_s - server_s - bots_s) / seconds,
        "packets": packets,
        "packets_per_s": packets / seconds,
        "us_per_packet": 1e6 * server_s / packets if packets else None,
        "delivered_pct": 100 * packets / expected if expected else None,
        "udp_drops": b.udp_drops - a.udp_drops,
        "video": per_kind["video"],
        "audio": per_kind["audio"],
    }


async def wait_for_media(bots: list[Bot], patience: float) -> list[str]:
    """Waits until each bot gets frames from every other's audio and video;
    returns what is still missing after ``patience`` seconds."""
    expected = 2 * (len(bots) - 1)
    deadline = time.monotonic() + patience
    missing: list[str] = []
    while time.monotonic() < deadline:
        missing = []
        for bot in bots:
            flowing = [i for i in bot.inbound if i.frames > 0]
            if len(flowing) < expected:
                missing.append(f"{bot.name}: {len(flowing)}/{expected} sources flowing")
        if not missing:
            return []
        await asyncio.sleep(0.2)
    return missing


async def measure_call(
    call: Call,
    bots: list[Bot],
    server_pid: int,
    warmup: float,
    window: float,
    connect_timeout: float,
    receive_buffer: int,
) -> dict[str, Any]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(connect_timeout):
            await call.setup(bots)
        connected = time.monotonic() - started
        for bot in bots:
            bot.enlarge_receive_buffers(receive_buffer)
        missing = await wait_for_media(bots, connect_timeout)
        flowing = time.monotonic() - started
        if missing:
            say(f"{call.name}: not every source flows after {connect_timeout:g} s: {missing}")
        await asyncio.sleep(warmup)
        first = await snapshot(bots, server_pid)
        await asyncio.sleep(window)
        last = await snapshot(bots, server_pid)
        result = summarise(bots, first, last)
        result.update(
            {
                "signalled_s": connected,
                "all_flowing_s": flowing,
                "missing": missing,
                "server_alive": process_alive(server_pid),
            }
        )
        return result
    finally:
        try:
            async with asyncio.timeout(15):
                await call.teardown()
        except Exception as error:
            say(f"{call.name}: leaving the call failed: {error!r}")
        for bot in bots:
            await bot.close()


# ---------------------------------------------------------------- command line


async def main(args: argparse.Namespace) -> dict[str, Any]:
    loopback_only()
    video = media.video_clip(args.codec, args.resolution)
    audio = media.audio_clip()
    bots = [Bot(f"bot{n}", video, audio) for n in range(1, args.participants + 1)]
    call: Call
    if args.sfu == "janus":
        from .janus import JanusCall

        call = JanusCall(args.url, args.codec)
    else:
        from .gortc_sfu import GortcCall

        call = GortcCall(args.url, args.codec)
    result = await measure_call(
        call, bots, args.pid, args.warmup, args.window, args.connect_timeout, args.receive_buffer
    )
    result.update(
        {
            "sfu": args.sfu,
            "codec": args.codec,
            "resolution": args.resolution,
            "participants": args.participants,
            "clip_mbps": video.bitrate / 1e6,
        }
    )
    return result


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sfu", choices=("janus", "gortc"), required=True)
    parser.add_argument("--url", required=True, help="Janus API URL or gortc base URL")
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--codec", choices=media.CODECS, default="vp8")
    parser.add_argument("--resolution", choices=list(media.RESOLUTIONS), default="360p")
    parser.add_argument("--participants", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument(
        "--receive-buffer",
        type=int,
        default=4 << 20,
        help="SO_RCVBUF for the bots' sockets, bytes (capped by net.core.rmem_max)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_arguments()
    outcome = asyncio.run(main(arguments))
    print(json.dumps(outcome), flush=True)
