"""The RTMP ingest server with real ffmpeg publishers, and with a bare
client doing what ffmpeg will not (stalling, garbage, half-done handshakes).

Tests with ffmpeg are skipped where it is missing, except under CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import uvloop

from gortc.media.rtmp import PublishRefused, RtmpServer, RtmpSettings
from gortc.media.rtmp.chunks import AUDIO, VIDEO
from gortc.media.rtmp.handshake import HANDSHAKE_SIZE
from tests.integration.rtmp_client import AVC_KEYFRAME, RawRtmpClient

pytestmark = pytest.mark.slow

FFMPEG = shutil.which("ffmpeg")
SETTINGS = RtmpSettings(setup_timeout=1.0, stall_timeout=0.3, max_message_size=1 << 20)
# A real encoder may pause longer than the scripted client on a busy machine.
FFMPEG_SETTINGS = RtmpSettings(setup_timeout=1.0, stall_timeout=3.0, max_message_size=1 << 20)
# Long enough for a closed or refused connection to show, on a loaded machine.
PROMPTLY = 3.0


def require_ffmpeg() -> str:
    if FFMPEG is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs ffmpeg for the RTMP ingest tests")
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    return FFMPEG


class RecordingSink:
    def __init__(self, authorizer: RecordingAuthorizer, key: str) -> None:
        self.authorizer = authorizer
        self.key = key
        self.events: list[tuple[str, object, object]] = []
        self.fail_on_video = False
        self.refuse_video = False

    def metadata(self, values: dict[str, object]) -> None:
        self.events.append(("metadata", values, None))

    def video(self, timestamp_ms: int, body: bytes) -> None:
        if self.fail_on_video:
            raise RuntimeError("the sink broke")
        if self.refuse_video:
            raise PublishRefused("Only H.264 video can be streamed here.")
        self.events.append(("video", timestamp_ms, body))

    def audio(self, timestamp_ms: int, body: bytes) -> None:
        self.events.append(("audio", timestamp_ms, body))

    def end(self) -> None:
        self.events.append(("end", None, None))
        self.authorizer.live -= 1

    @property
    def ends(self) -> int:
        return sum(1 for event in self.events if event[0] == "end")

    def bodies(self, kind: str) -> list[bytes]:
        return [body for name, _, body in self.events if name == kind and isinstance(body, bytes)]


class RecordingAuthorizer:
    """Keys starting with "good" may publish."""

    def __init__(self) -> None:
        self.sinks: list[RecordingSink] = []
        self.asked: list[tuple[str, str, str]] = []
        self.live = 0
        self.most_live = 0
        self.gate: asyncio.Event | None = None  # set: answer; None: at once

    async def start_publishing(self, app: str, stream_name: str, peer: str) -> RecordingSink:
        self.asked.append((app, stream_name, peer))
        if self.gate is not None:
            await self.gate.wait()
        if stream_name == "boom":
            raise RuntimeError("the authorizer broke")
        if not stream_name.startswith("good"):
            raise PublishRefused("Invalid stream key.")
        sink = RecordingSink(self, stream_name)
        self.sinks.append(sink)
        self.live += 1
        self.most_live = max(self.most_live, self.live)
        return sink


@pytest.fixture
def authorizer() -> RecordingAuthorizer:
    return RecordingAuthorizer()


@pytest.fixture
async def server(authorizer: RecordingAuthorizer) -> AsyncIterator[RtmpServer]:
    server = RtmpServer(authorizer, port=0, settings=SETTINGS)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def ffmpeg_server(authorizer: RecordingAuthorizer) -> AsyncIterator[RtmpServer]:
    server = RtmpServer(authorizer, port=0, settings=FFMPEG_SETTINGS)
    await server.start()
    yield server
    await server.stop()


OpenClient = Callable[..., Awaitable[RawRtmpClient]]


@pytest.fixture
async def open_client(server: RtmpServer) -> AsyncIterator[OpenClient]:
    """Opens bare clients (to ``server`` unless told a port); closes them
    all at the end."""
    clients: list[RawRtmpClient] = []

    async def open_one(port: int | None = None) -> RawRtmpClient:
        client = await RawRtmpClient.open(port or server.port)
        clients.append(client)
        return client

    yield open_one
    for client in clients:
        await client.close()


@pytest.fixture
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test when anything (the server, asyncio) logs an error."""
    caplog.set_level(logging.INFO)
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def eventually(condition: Callable[[], bool], timeout: float = PROMPTLY) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def ffmpeg_publish(
    port: int, key: str, *, seconds: float = 1.0, realtime: bool = False
) -> tuple[int, str, float]:
    """(exit status, stderr, seconds taken) of ffmpeg publishing a small
    H.264 + AAC test stream to ``/live/<key>``."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        require_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error",
        *(["-re"] if realtime else []),
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10",
        "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace"), time.monotonic() - started


# -- real ffmpeg -----------------------------------------------------------------


async def check_ffmpeg_publish(server: RtmpServer, authorizer: RecordingAuthorizer) -> None:
    status, stderr, _ = await ffmpeg_publish(server.port, "good-1")
    assert status == 0, stderr
    await eventually(lambda: bool(authorizer.sinks) and authorizer.sinks[-1].ends == 1)
    sink = authorizer.sinks[-1]
    assert authorizer.asked[-1][:2] == ("live", "good-1")
    kinds = [name for name, _, _ in sink.events]
    assert kinds[0] == "metadata"
    metadata = sink.events[0][1]
    assert isinstance(metadata, dict)
    assert (metadata["width"], metadata["height"]) == (320.0, 240.0)
    assert kinds[-1] == "end"
    assert kinds.count("end") == 1
    video, audio = sink.bodies("video"), sink.bodies("audio")
    assert video[0][:2] == b"\x17\x00"  # AVC sequence header
    keyframes = [body for body in video if body[:2] == b"\x17\x01"]
    assert len(keyframes) >= 3  # one every 10 frames, 30 frames
    assert len([body for body in video if body[:2] == b"\x27\x01"]) >= 20
    assert audio[0][:2] == b"\xaf\x00"  # AAC sequence header
    assert len([body for body in audio if body[:2] == b"\xaf\x01"]) >= 40  # 1 s at 48 kHz
    video_times = [t for name, t, _ in sink.events if name == "video"]
    assert video_times == sorted(video_times)
    assert 900 <= video_times[-1] <= 1100  # milliseconds, like FLV


async def test_an_ffmpeg_publish_reaches_the_sink_and_ends_it_once(
    ffmpeg_server: RtmpServer, authorizer: RecordingAuthorizer, no_errors_logged: None
) -> None:
    await check_ffmpeg_publish(ffmpeg_server, authorizer)
    assert ffmpeg_server.publishing == 0


async def test_a_refused_key_stops_ffmpeg_at_once_with_the_reason(
    ffmpeg_server: RtmpServer, authorizer: RecordingAuthorizer, no_errors_logged: None
) -> None:
    status, stderr, seconds = await ffmpeg_publish(ffmpeg_server.port, "wrong-key")
    assert status != 0
    assert seconds < 5
    assert "Invalid stream key." in stderr
    assert authorizer.sinks == []
    await eventually(lambda: not ffmpeg_server.connections)


async def test_ffmpeg_to_another_application_is_turned_away(
    ffmpeg_server: RtmpServer, authorizer: RecordingAuthorizer, no_errors_logged: None
) -> None:
    require_ffmpeg()
    process = await asyncio.create_subprocess_exec(
        require_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "1",
        "-c:v", "libx264", "-preset", "ultrafast",
        "-f", "flv", f"rtmp://127.0.0.1:{ffmpeg_server.port}/other/good-1",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(10):
        _, stderr = await process.communicate()
    assert process.returncode != 0
    assert "Unknown application" in stderr.decode()
    assert authorizer.asked == []


async def test_two_ffmpeg_publishers_on_one_port_both_arrive(
    ffmpeg_server: RtmpServer, authorizer: RecordingAuthorizer, no_errors_logged: None
) -> None:
    results = await asyncio.gather(
        ffmpeg_publish(ffmpeg_server.port, "good-a", seconds=1.5, realtime=True),
        ffmpeg_publish(ffmpeg_server.port, "good-b", seconds=1.5, realtime=True),
    )
    assert [status for status, _, _ in results] == [0, 0], results
    await eventually(lambda: all(sink.ends == 1 for sink in authorizer.sinks))
    assert sorted(sink.key for sink in authorizer.sinks) == ["good-a", "good-b"]
    assert authorizer.most_live == 2
    for sink in authorizer.sinks:
        assert len(sink.bodies("video")) >= 40


# -- abuse -------------------------------------------------------------------------


async def survive_abuse(server: RtmpServer, authorizer: RecordingAuthorizer) -> None:
    """Every kind of bad client at once, each closed (or timed out) on its
    own; a bare publisher still gets through afterwards."""
    rng = random.Random(5)
    port = server.port
    within = SETTINGS.setup_timeout + PROMPTLY  # the slowest way out is a timeout

    async def closed_after(data: bytes, *, handshake: bool = True, connect: bool = False) -> None:
        client = await RawRtmpClient.open(port)
        if handshake:
            await client.handshake()
        if connect:
            await client.connect()
        with contextlib.suppress(ConnectionError):  # closed before all was sent
            await client.send_raw(data)
        assert await client.closed_by_server(within), data[:32]
        await client.close()

    chunk_size = bytes.fromhex("02 000000 000004 01 00000000")  # Set Chunk Size, then the size
    many_chunk_streams = b"".join(
        bytes((1, i & 0xFF, i >> 8)) + bytes.fromhex("000000 000004 08 01000000") + bytes(4)
        for i in range(5000)
    )
    # 512 KiB of a 1 MiB message on each of many chunk streams: past what a
    # connection may hold unfinished.
    half_messages = chunk_size + struct.pack(">I", 1 << 20)
    for csid in range(4, 40):
        half_messages += bytes((csid,)) + bytes.fromhex("000000 0fffff 09 01000000")
        half_messages += bytes(512 * 1024)
    cases = [
        closed_after(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", handshake=False),
        closed_after(b"\x06" + rng.randbytes(3000), handshake=False),  # RTMPE
        closed_after(rng.randbytes(70_000)),
        closed_after(b"\x03" + rng.randbytes(700), handshake=False),  # a handshake cut short
        closed_after(b""),  # silence after the handshake
        closed_after(b"", connect=True),  # and after connect
        closed_after(chunk_size + struct.pack(">I", 0x7FFFFFFF)),
        closed_after(chunk_size + struct.pack(">I", 0)),
        closed_after(bytes.fromhex("03 000000 ffffff 14 00000000") + bytes(500)),  # 16 MiB
        closed_after(many_chunk_streams),
        closed_after(half_messages),
        *(closed_after(rng.randbytes(rng.randrange(1, 5000)), connect=True) for _ in range(20)),
        *(closed_after(b"\x03" + bytes(100), handshake=False) for _ in range(5)),
    ]
    await asyncio.gather(*cases)

    await eventually(lambda: not server.connections)
    assert authorizer.sinks == []
    client = await RawRtmpClient.open(port)
    info = await client.start_publishing("good-after-abuse")
    assert info["code"] == "NetStream.Publish.Start"
    await client.send_media(headers=True)
    await client.close()
    await eventually(lambda: authorizer.sinks[-1].ends == 1)
    assert len(authorizer.sinks[-1].bodies("video")) == 2


async def test_the_server_survives_abuse_and_still_takes_publishers(
    server: RtmpServer, authorizer: RecordingAuthorizer, no_errors_logged: None
) -> None:
    await survive_abuse(server, authorizer)


def test_on_uvloop_the_server_survives_abuse_and_takes_ffmpeg(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """gortc serves on uvloop by default, whose transports differ."""

    async def scenario() -> None:
        authorizer = RecordingAuthorizer()
        server = RtmpServer(authorizer, port=0, settings=FFMPEG_SETTINGS)
        await server.start()
        try:
            await survive_abuse(server, authorizer)
            await check_ffmpeg_publish(server, authorizer)
        finally:
            await server.stop()

    caplog.set_level(logging.INFO)
    uvloop.run(scenario())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- how a publish ends: end() exactly once, every way ---------------------------------


async def end_with_fcunpublish(client: RawRtmpClient, server: RtmpServer) -> None:
    await client.command("FCUnpublish", None, "good-1")
    await client.command("deleteStream", None, float(client.stream_id))
    await client.close()


async def end_with_delete_stream(client: RawRtmpClient, server: RtmpServer) -> None:
    await client.command("deleteStream", None, float(client.stream_id))


async def end_with_close_stream(client: RawRtmpClient, server: RtmpServer) -> None:
    await client.command("closeStream", None, stream_id=client.stream_id)


async def end_with_tcp_close(client: RawRtmpClient, server: RtmpServer) -> None:
    await client.close()


async def end_with_garbage(client: RawRtmpClient, server: RtmpServer) -> None:
    await client.send_raw(bytes.fromhex("02 000000 000004 01 00000000 00000000"))


async def end_with_a_stall(client: RawRtmpClient, server: RtmpServer) -> None:
    assert await client.closed_by_server(SETTINGS.stall_timeout + PROMPTLY)


async def end_with_the_server_stopping(client: RawRtmpClient, server: RtmpServer) -> None:
    await server.stop()


@pytest.mark.parametrize(
    "ending",
    [
        end_with_fcunpublish,
        end_with_delete_stream,
        end_with_close_stream,
        end_with_tcp_close,
        end_with_garbage,
        end_with_a_stall,
        end_with_the_server_stopping,
    ],
    ids=lambda ending: ending.__name__,
)
async def test_a_publish_ends_the_sink_exactly_once(
    server: RtmpServer,
    authorizer: RecordingAuthorizer,
    ending: Callable[[RawRtmpClient, RtmpServer], Awaitable[None]],
    no_errors_logged: None,
    open_client: OpenClient,
) -> None:
    client = await open_client()
    info = await client.start_publishing("good-1")
    assert info["code"] == "NetStream.Publish.Start"
    await client.send_media(headers=True)
    await client.send_media(40)
    await eventually(lambda: len(authorizer.sinks[0].bodies("video")) == 3)
    await ending(client, server)
    sink = authorizer.sinks[0]
    await eventually(lambda: sink.ends == 1)
    await asyncio.sleep(SETTINGS.stall_timeout + 0.1)  # the watchdog too has had its chance
    assert sink.ends == 1
    assert sink.events[-1][0] == "end"
    assert sink.events[0] == ("metadata", {"width": 320.0}, None)
    assert [t for name, t, _ in sink.events if name == "video"] == [0, 0, 40]
    assert server.publishing == 0
    await client.close()


async def test_a_connection_stays_open_and_quiet_while_media_flow(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    client = await open_client()
    await client.start_publishing("good-1")
    for step in range(10):  # twice the stall timeout, media all along
        await client.send_media(step * 100)
        await asyncio.sleep(SETTINGS.stall_timeout / 5)
    assert server.publishing == 1
    assert authorizer.sinks[0].ends == 0
    await client.close()


async def test_a_slow_authorizer_still_gets_its_sink_ended_when_the_client_left(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    # Reading is paused while the authorizer decides, so the hang-up is
    # seen when it has: its sink is ended at once.
    authorizer.gate = asyncio.Event()
    client = await open_client()
    task = asyncio.create_task(client.start_publishing("good-1"))
    await eventually(lambda: bool(authorizer.asked))
    task.cancel()
    await client.close()
    await asyncio.sleep(0.1)
    authorizer.gate.set()
    await eventually(lambda: bool(authorizer.sinks) and authorizer.sinks[0].ends == 1)
    await eventually(lambda: not server.connections)
    assert server.publishing == 0


async def test_an_authorizer_slower_than_the_setup_timeout_is_given_up_on(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    authorizer.gate = asyncio.Event()  # never set
    client = await open_client()
    started = time.monotonic()
    info = await client.start_publishing("good-1")
    assert info["code"] == "NetStream.Publish.BadName"
    assert time.monotonic() - started < SETTINGS.setup_timeout + PROMPTLY
    assert await client.closed_by_server(PROMPTLY)
    assert authorizer.sinks == []


async def test_media_behind_the_publish_command_wait_for_the_authorizer(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    authorizer.gate = asyncio.Event()
    client = await open_client()
    await client.handshake()
    await client.connect()
    await client.command("createStream", None)
    client.stream_id = 1
    await client.command("publish", None, "good-1", "live", stream_id=1)
    await client.send_media(0, headers=True)  # before any answer, in the same breath
    await asyncio.sleep(0.1)
    authorizer.gate.set()
    await eventually(lambda: bool(authorizer.sinks) and len(authorizer.sinks[0].events) == 5)
    assert [name for name, _, _ in authorizer.sinks[0].events] == [
        "metadata",
        "video",
        "audio",
        "video",
        "audio",
    ]
    await client.close()


# -- refusals ------------------------------------------------------------------------


async def test_a_refused_key_gets_bad_name_and_the_connection_closed(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    client = await open_client()
    info = await client.start_publishing("nope")
    assert info == {
        "level": "error",
        "code": "NetStream.Publish.BadName",
        "description": "Invalid stream key.",
    }
    assert await client.closed_by_server(PROMPTLY)
    assert authorizer.asked[0][:2] == ("live", "nope")
    assert authorizer.asked[0][2].startswith("127.0.0.1:")


async def test_a_failing_authorizer_refuses_and_the_server_goes_on(
    server: RtmpServer,
    authorizer: RecordingAuthorizer,
    caplog: pytest.LogCaptureFixture,
    open_client: OpenClient,
) -> None:
    client = await open_client()
    info = await client.start_publishing("boom")
    assert info["code"] == "NetStream.Publish.BadName"
    assert info["description"] == "The server could not start the stream."
    assert await client.closed_by_server(PROMPTLY)
    assert "the publish authorizer failed" in caplog.text
    client = await open_client()
    assert (await client.start_publishing("good-1"))["code"] == "NetStream.Publish.Start"
    await client.close()


async def test_a_failing_sink_closes_its_connection_only(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    first, second = await open_client(), await open_client()
    await first.start_publishing("good-1")
    await second.start_publishing("good-2")
    authorizer.sinks[0].fail_on_video = True
    await first.send(6, VIDEO, first.stream_id, 0, AVC_KEYFRAME)
    assert await first.closed_by_server(PROMPTLY)
    assert authorizer.sinks[0].ends == 1
    await second.send_media(0)
    await eventually(lambda: len(authorizer.sinks[1].bodies("video")) == 1)
    assert server.publishing == 1
    await second.close()


async def test_a_sink_may_cut_its_publisher_off_with_a_reason(
    server: RtmpServer,
    authorizer: RecordingAuthorizer,
    open_client: OpenClient,
    no_errors_logged: None,
) -> None:
    client = await open_client()
    await client.start_publishing("good-1")
    authorizer.sinks[0].refuse_video = True
    await client.send(6, VIDEO, client.stream_id, 0, b"\x1c\x00")  # HEVC, say
    values = await client.next_command()
    assert values is not None
    assert values[0] == "onStatus"
    assert values[3]["level"] == "error"  # type: ignore[index]
    assert values[3]["description"] == "Only H.264 video can be streamed here."  # type: ignore[index]
    assert await client.closed_by_server(PROMPTLY)
    assert authorizer.sinks[0].ends == 1


async def test_an_empty_key_and_a_second_publish_are_refused(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    client = await open_client()
    assert (await client.start_publishing(""))["description"] == "No stream key."
    assert authorizer.asked == []
    client = await open_client()
    await client.start_publishing("good-1")
    await client.command("publish", None, "good-2", "live", stream_id=client.stream_id)
    values = await client.next_command()
    assert values is not None
    assert values[3]["code"] == "NetStream.Publish.BadName"  # type: ignore[index]
    assert await client.closed_by_server(PROMPTLY)
    await eventually(lambda: authorizer.sinks[0].ends == 1)
    assert len(authorizer.sinks) == 1


async def test_publishing_before_connect_or_to_another_app_is_refused(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    client = await open_client()
    await client.handshake()
    await client.command("publish", None, "good-1", "live", stream_id=1)
    assert await client.closed_by_server(PROMPTLY)
    client = await open_client()
    await client.handshake()
    answer = await client.connect("vod")
    assert answer is not None
    assert answer[0] == "_error"
    assert answer[3]["code"] == "NetConnection.Connect.Rejected"  # type: ignore[index]
    assert await client.closed_by_server(PROMPTLY)
    assert authorizer.asked == []


async def test_past_the_cap_the_oldest_connection_still_setting_up_makes_room(
    authorizer: RecordingAuthorizer, caplog: pytest.LogCaptureFixture, open_client: OpenClient
) -> None:
    """Silent connections cannot lock publishers out (slowloris): a newcomer
    takes the slot of the one that has been setting up the longest."""
    server = RtmpServer(authorizer, port=0, settings=RtmpSettings(max_connections=2))
    await server.start()
    try:
        oldest, younger = [await open_client(server.port) for _ in range(2)]
        await eventually(lambda: len(server.connections) == 2)
        newcomer = await open_client(server.port)
        assert await oldest.closed_by_server(PROMPTLY)
        assert "cut to make room" in caplog.text
        info = await newcomer.start_publishing("good-1")
        assert info["code"] == "NetStream.Publish.Start"
        await younger.handshake()  # still served
        await younger.close()
        await newcomer.close()
        await eventually(lambda: not server.connections)
    finally:
        await server.stop()


async def test_connections_past_the_cap_of_publishers_are_closed_at_once(
    authorizer: RecordingAuthorizer, caplog: pytest.LogCaptureFixture, open_client: OpenClient
) -> None:
    server = RtmpServer(authorizer, port=0, settings=RtmpSettings(max_connections=2))
    await server.start()
    try:
        publishing = [await open_client(server.port) for _ in range(2)]
        for number, client in enumerate(publishing):
            info = await client.start_publishing(f"good-{number}")
            assert info["code"] == "NetStream.Publish.Start"
        extra = await open_client(server.port)
        assert await extra.closed_by_server(PROMPTLY)
        assert "2 connections already" in caplog.text
        assert server.publishing == 2  # nobody publishing was cut for it
        for client in publishing:
            await client.close()
        await eventually(lambda: not server.connections)
    finally:
        await server.stop()


async def test_the_server_acknowledges_what_it_receives(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    client = await open_client()
    await client.start_publishing("good-1")
    await client.send(2, 5, 0, 0, struct.pack(">I", 10_000))  # Window Acknowledgement Size
    for step in range(20):
        await client.send(6, VIDEO, client.stream_id, step, AVC_KEYFRAME[:5] + bytes(1000))
    acknowledged = []
    while not acknowledged:
        message = await client.next_message()
        assert message is not None
        if message.type_id == 3:
            acknowledged.append(struct.unpack(">I", message.body)[0])
    assert acknowledged[0] >= 10_000
    assert client.incoming.chunk_size == SETTINGS.chunk_size  # Set Chunk Size came too
    await client.close()


async def test_a_set_chunk_size_from_the_publisher_is_honoured(
    server: RtmpServer, authorizer: RecordingAuthorizer, open_client: OpenClient
) -> None:
    client = await open_client()
    await client.start_publishing("good-1")
    await client.send_raw(client.chunks.set_chunk_size(60_000))
    frame = b"\x17\x01\x00\x00\x00" + random.Random(1).randbytes(200_000)
    await client.send(6, VIDEO, client.stream_id, 7, frame)
    await client.send(6, AUDIO, client.stream_id, 8, b"\xaf\x01" + bytes(10))
    await eventually(lambda: len(authorizer.sinks[0].events) == 2)
    assert authorizer.sinks[0].events[0] == ("video", 7, frame)
    await client.close()


async def test_the_handshake_echoes_c1_and_announces_no_digest(server: RtmpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    c1 = os.urandom(HANDSHAKE_SIZE)
    writer.write(b"\x03" + c1)
    reply = await reader.readexactly(1 + 2 * HANDSHAKE_SIZE)
    assert reply[0] == 3
    assert reply[5:9] == bytes(4)  # S1's version field: the plain handshake
    assert reply[1 + HANDSHAKE_SIZE :] == c1  # S2
    writer.close()
