"""The parts of the media path that need no network: the aiortc version
guard, keyframe detection on real encoder output, keyframe-request
throttling, the per-subscriber queues, and the ICE servers clients get."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib.metadata
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc import RTCRtpCodecParameters
from aiortc.jitterbuffer import JitterFrame

from gortc.adapters.ice_servers import ConfiguredIceServers
from gortc.entities.calls import IceServer
from gortc.media.aiortc_hooks import (
    AIOICE_VERSION,
    AIORTC_VERSION,
    IncompatibleAiortc,
    check_aiortc,
)
from gortc.media.forwarding import (
    AUDIO_QUEUE_FRAMES,
    VIDEO_QUEUE_FRAMES,
    ForwardedTrack,
    Source,
    is_keyframe,
)

WIDTH, HEIGHT = 64, 48
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
INTERVAL = 10.0  # seconds between keyframe requests, on the fake clock


def encode(codec: str, frames: int, options: dict[str, str]) -> list[tuple[bytes, bool]]:
    """Real encoder output for a picture that changes every frame, and
    whether the encoder itself calls each packet a keyframe."""
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height = WIDTH, HEIGHT
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.options = options
    packets: list[av.Packet] = []
    for index in range(frames):
        planes = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
        planes[:HEIGHT] = (index * 37) % 256
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, 30)
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    return [(bytes(packet), packet.is_keyframe) for packet in packets]


@pytest.fixture(scope="module")
def vp8() -> list[bytes]:
    """A VP8 keyframe followed by interframes (libvpx, as browsers use)."""
    packets = encode("libvpx", 6, {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"})
    assert [key for _, key in packets] == [True] + [False] * 5
    return [data for data, _ in packets]


@pytest.fixture(scope="module")
def h264() -> list[bytes]:
    """An H.264 IDR access unit (with SPS and PPS) followed by P frames,
    Annex-B, as aiortc depacketises them."""
    packets = encode("libx264", 6, {"preset": "ultrafast", "tune": "zerolatency"})
    assert [key for _, key in packets] == [True] + [False] * 5
    return [data for data, _ in packets]


def nal_units(access_unit: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex-B access unit, without their start codes."""
    starts = []
    index = access_unit.find(b"\x00\x00\x01")
    while index != -1:
        starts.append(index + 3)
        index = access_unit.find(b"\x00\x00\x01", index + 3)
    for number, start in enumerate(starts):
        end = starts[number + 1] - 3 if number + 1 < len(starts) else len(access_unit)
        yield access_unit[start:end].rstrip(b"\x00")


def annex_b(*units: bytes) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in units)


def nal_type(unit: bytes) -> int:
    return unit[0] & 0x1F


# -- the aiortc version guard -------------------------------------------------


def test_another_aiortc_version_is_refused_by_name() -> None:
    with pytest.raises(IncompatibleAiortc) as raised:
        check_aiortc(aiortc_version="1.17.0")

    message = str(raised.value)
    assert "aiortc 1.17.0 is installed" in message
    assert f"pin aiortc=={AIORTC_VERSION}" in message


def test_another_aioice_version_is_refused_by_name() -> None:
    with pytest.raises(IncompatibleAiortc) as raised:
        check_aiortc(aioice_version="0.14.0")

    assert "aioice 0.14.0 is installed" in str(raised.value)
    assert f"aioice=={AIOICE_VERSION}" in str(raised.value)


def test_the_installed_versions_pass() -> None:
    assert importlib.metadata.version("aiortc") == AIORTC_VERSION
    assert importlib.metadata.version("aioice") == AIOICE_VERSION
    check_aiortc()  # raises if a private part it relies on moved


# -- keyframes ----------------------------------------------------------------


def test_vp8_keyframes_are_told_from_interframes(vp8: list[bytes]) -> None:
    assert [is_keyframe("video/VP8", frame) for frame in vp8] == [True] + [False] * 5
    assert is_keyframe("video/vp8", vp8[0])  # the MIME type's case does not matter
    assert not is_keyframe("video/VP8", b"")


def test_h264_idr_access_units_are_keyframes(h264: list[bytes]) -> None:
    assert [is_keyframe("video/H264", frame) for frame in h264] == [True] + [False] * 5


def test_h264_an_idr_slice_alone_or_a_parameter_set_alone_is_a_keyframe(
    h264: list[bytes],
) -> None:
    units = {nal_type(unit): unit for unit in nal_units(h264[0])}
    assert {5, 7, 8} <= set(units), sorted(units)  # IDR slice, SPS, PPS
    p_slices = [unit for unit in nal_units(h264[1]) if nal_type(unit) == 1]
    assert p_slices

    assert is_keyframe("video/h264", annex_b(units[5]))  # without SPS and PPS
    assert is_keyframe("video/h264", annex_b(units[7]))
    assert not is_keyframe("video/h264", annex_b(units[8], *p_slices))
    # Three-byte start codes, as x264 writes after the first NAL unit.
    assert is_keyframe("video/h264", b"\x00\x00\x01" + units[5])
    assert not is_keyframe("video/h264", b"\x00\x00\x01" + p_slices[0])
    assert not is_keyframe("video/h264", b"")


def test_every_audio_frame_stands_alone() -> None:
    assert is_keyframe("audio/opus", b"\xfc\xff\xfe")


# -- keyframe requests --------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Publisher:
    """Where a source's keyframe requests go (the PLI to the publisher)."""

    def __init__(self, clock: FakeClock, *, reachable_after: int = 0) -> None:
        self.clock = clock
        self.requests: list[float] = []  # fake-clock times
        self._unreachable = reachable_after

    async def request(self) -> bool:
        self.requests.append(self.clock())
        if self._unreachable:
            self._unreachable -= 1
            return False  # nothing received from it yet
        return True


async def settle(seconds: float = 0.0) -> None:
    """Lets timers and the request task run."""
    await asyncio.sleep(seconds)
    for _ in range(5):
        await asyncio.sleep(0)


def video_source(clock: FakeClock, publisher: Publisher, kind: str = "video") -> Source:
    source = Source(
        kind=kind,
        publisher_id="ann",
        send_keyframe_request=publisher.request,
        keyframe_interval=INTERVAL,
        clock=clock,
    )
    source.set_codec(VP8 if kind == "video" else OPUS)
    return source


async def test_keyframe_requests_are_throttled_to_one_per_interval() -> None:
    clock = FakeClock()
    publisher = Publisher(clock)
    source = video_source(clock, publisher)

    for _ in range(5):
        source.ask_for_keyframe()
    await settle()
    assert publisher.requests == [1000.0]  # the first goes out at once

    # Askers within the interval, the first 0.2 s before its end.
    for now in (1009.8, 1009.9, 1009.95):
        clock.now = now
        source.ask_for_keyframe()
    await settle(0.03)
    assert publisher.requests == [1000.0]  # held back...
    await settle(0.3)
    assert len(publisher.requests) == 2  # ...and sent once, for all of them

    clock.now = 1019.95  # the next would go in 0.05 s
    source.ask_for_keyframe()
    await source.close()
    source.ask_for_keyframe()
    await settle(0.15)
    assert len(publisher.requests) == 2  # none after close


async def test_a_request_with_nobody_to_address_is_tried_again_soon() -> None:
    clock = FakeClock()
    publisher = Publisher(clock, reachable_after=1)
    source = video_source(clock, publisher)

    source.ask_for_keyframe()
    await settle(0.2)  # the retry comes after 0.1 s, not after the interval

    assert len(publisher.requests) == 2
    await settle(0.15)
    assert len(publisher.requests) == 2  # the second one reached it: no more
    await source.close()


async def test_audio_sources_never_ask_for_keyframes() -> None:
    clock = FakeClock()
    publisher = Publisher(clock)
    source = video_source(clock, publisher, kind="audio")

    sink = subscribe(source, "t1")
    source.ask_for_keyframe()
    await settle()

    assert publisher.requests == []
    assert not sink.waiting_for_keyframe
    await source.close()


# -- forwarding ---------------------------------------------------------------


def frame(data: bytes, timestamp: int = 0) -> JitterFrame:
    return JitterFrame(data, timestamp)


def subscribe(source: Source, track_id: str) -> ForwardedTrack:
    """A subscriber's track, fed by ``source`` from now on."""
    sink = ForwardedTrack(source.kind, track_id)
    source.subscribe(sink)
    return sink


async def next_packet(track: ForwardedTrack) -> bytes:
    return bytes(await asyncio.wait_for(track.recv(), 1.0))


async def nothing_waiting(track: ForwardedTrack) -> bool:
    try:
        await asyncio.wait_for(track.recv(), 0.02)
    except TimeoutError:
        return True
    return False


async def test_a_new_subscriber_starts_at_a_keyframe_and_asks_for_one(vp8: list[bytes]) -> None:
    clock = FakeClock()
    publisher = Publisher(clock)
    source = video_source(clock, publisher)

    sink = subscribe(source, "ben-video")
    await settle()
    assert publisher.requests == [1000.0]

    for index, data in enumerate(vp8[1:3]):  # interframes: undecodable from here
        source.on_frame(VP8, frame(data, index))
    assert await nothing_waiting(sink)
    source.on_frame(VP8, frame(vp8[0], 3000))
    source.on_frame(VP8, frame(vp8[1], 6000))

    first = await asyncio.wait_for(sink.recv(), 1.0)
    assert bytes(first) == vp8[0]
    assert first.pts == 3000 and first.time_base == Fraction(1, 90000)
    assert await next_packet(sink) == vp8[1]
    assert sink.dropped == 2
    await source.close()
    assert source.subscribers == 0


async def test_an_overflowing_subscriber_skips_to_the_next_keyframe(vp8: list[bytes]) -> None:
    clock = FakeClock()
    publisher = Publisher(clock)
    source = video_source(clock, publisher)
    slow = subscribe(source, "slow")
    fast = subscribe(source, "fast")
    await settle()
    clock.now += INTERVAL  # so that the next request is not held back

    source.on_frame(VP8, frame(vp8[0]))
    for index in range(1, VIDEO_QUEUE_FRAMES):
        source.on_frame(VP8, frame(vp8[1], index))
        assert await next_packet(fast) in (vp8[0], vp8[1])
    await next_packet(fast)
    # The slow one read nothing: its queue is full. One frame more...
    source.on_frame(VP8, frame(vp8[2], VIDEO_QUEUE_FRAMES))
    await settle()

    assert slow.waiting_for_keyframe
    assert len(publisher.requests) == 2  # ...asks the publisher for a keyframe
    assert await nothing_waiting(slow)  # the stale backlog is gone
    assert await next_packet(fast) == vp8[2]  # the other subscriber goes on
    source.on_frame(VP8, frame(vp8[3], VIDEO_QUEUE_FRAMES + 1))
    assert await nothing_waiting(slow)
    source.on_frame(VP8, frame(vp8[0], VIDEO_QUEUE_FRAMES + 2))
    assert await next_packet(slow) == vp8[0]
    await source.close()


async def test_a_track_handed_to_another_publisher_starts_at_its_keyframe(
    vp8: list[bytes],
) -> None:
    clock = FakeClock()
    ann, ben = Publisher(clock), Publisher(clock)
    ann_source, ben_source = video_source(clock, ann), video_source(clock, ben)
    sink = subscribe(ann_source, "section-3")
    await settle()
    ann_source.on_frame(VP8, frame(vp8[0], 1))
    ann_source.on_frame(VP8, frame(vp8[1], 2))  # left unread when ann goes

    ann_source.unsubscribe(sink)
    ben_source.subscribe(sink)
    await settle()

    assert len(ben.requests) == 1  # ben's encoder is asked for a keyframe
    ann_source.on_frame(VP8, frame(vp8[0], 3))
    ben_source.on_frame(VP8, frame(vp8[2], 4))
    assert await nothing_waiting(sink)  # neither ann's leftovers nor ben's interframe
    ben_source.on_frame(VP8, frame(vp8[0] + b"ben", 5))
    assert await next_packet(sink) == vp8[0] + b"ben"
    await ann_source.close()
    await ben_source.close()


async def test_an_overflowing_audio_subscriber_drops_its_backlog_and_goes_on() -> None:
    clock = FakeClock()
    publisher = Publisher(clock)
    source = video_source(clock, publisher, kind="audio")
    sink = subscribe(source, "ben-audio")

    for index in range(AUDIO_QUEUE_FRAMES + 1):
        source.on_frame(OPUS, frame(bytes([index]), index))

    assert await next_packet(sink) == bytes([AUDIO_QUEUE_FRAMES])  # the newest only
    assert await nothing_waiting(sink)
    assert publisher.requests == []
    await source.close()


async def test_a_muted_source_forwards_nothing_and_resumes_at_a_keyframe(
    vp8: list[bytes],
) -> None:
    clock = FakeClock()
    publisher = Publisher(clock)
    source = video_source(clock, publisher)
    sink = subscribe(source, "ben-video")
    await settle()
    source.on_frame(VP8, frame(vp8[0]))
    assert await next_packet(sink) == vp8[0]
    clock.now += INTERVAL

    source.set_muted(True)
    source.on_frame(VP8, frame(vp8[0], 1))
    source.on_frame(VP8, frame(vp8[1], 2))
    assert await nothing_waiting(sink)
    await settle()
    assert len(publisher.requests) == 1  # muting asks for nothing

    source.set_muted(False)
    await settle()
    assert len(publisher.requests) == 2  # the frames it refers to were skipped
    source.on_frame(VP8, frame(vp8[1], 3))
    assert await nothing_waiting(sink)
    source.on_frame(VP8, frame(vp8[0], 4))
    assert await next_packet(sink) == vp8[0]
    await source.close()


# -- ICE servers --------------------------------------------------------------


def test_stun_only() -> None:
    servers = ConfiguredIceServers(
        stun_urls=["stun:stun.example.org:3478"], turn_urls=[]
    ).servers_for("ann")

    assert servers == [IceServer(("stun:stun.example.org:3478",))]
    assert ConfiguredIceServers(stun_urls=[], turn_urls=[]).servers_for("ann") == []


def test_turn_with_fixed_credentials() -> None:
    servers = ConfiguredIceServers(
        stun_urls=["stun:stun.example.org:3478"],
        turn_urls=["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
        turn_username="gortc",
        turn_password="s3cret",
    )

    expected = [
        IceServer(("stun:stun.example.org:3478",)),
        IceServer(
            ("turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"),
            "gortc",
            "s3cret",
        ),
    ]
    assert servers.servers_for("ann") == servers.servers_for("ben") == expected


def test_turn_with_a_shared_secret_gives_each_user_expiring_credentials() -> None:
    now = [1_700_000_000.75]
    servers = ConfiguredIceServers(
        stun_urls=[],
        turn_urls=["turn:turn.example.org:3478"],
        turn_username="ignored",
        turn_password="ignored",
        turn_secret="coturn static-auth-secret",
        credential_seconds=3600,
        clock=lambda: now[0],
    )

    (ann,) = servers.servers_for("ann")

    assert ann.urls == ("turn:turn.example.org:3478",)
    assert ann.username == "1700003600:ann"  # expires an hour from now
    digest = hmac.new(b"coturn static-auth-secret", b"1700003600:ann", hashlib.sha1).digest()
    assert ann.credential == base64.b64encode(digest).decode()
    (ben,) = servers.servers_for("ben")
    assert ben.username == "1700003600:ben" and ben.credential != ann.credential
    now[0] += 60
    (later,) = servers.servers_for("ann")
    assert later.username == "1700003660:ann" and later.credential != ann.credential


def test_the_fast_clock_tells_the_same_time_as_aiortc_s() -> None:
    import aiortc.clock

    from gortc.media import aiortc_hooks

    slow_ntp = aiortc.clock.datetime_to_ntp(aiortc.clock.current_datetime())
    fast_ntp = aiortc_hooks._ntp_now()
    assert abs(fast_ntp - slow_ntp) < (1 << 32) // 100  # within 10 ms
    slow_ms = int((aiortc.clock.current_datetime() - aiortc.clock.NTP_EPOCH).total_seconds() * 1000)
    assert abs(aiortc_hooks._ms_now() - slow_ms) < 10
