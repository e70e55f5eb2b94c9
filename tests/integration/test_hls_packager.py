"""The HLS packager on real H.264/AAC from ffmpeg, checked with ffprobe.

ffmpeg encodes short FLV files (as OBS would send over RTMP: H.264 with
B-frames, AAC); their tags are fed to the packager as the RTMP server
would, faster than real time; ffprobe then decodes every listed segment.
Without ffmpeg these tests are skipped, except under CI.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from gortc.media import flv
from gortc.media.hls import (
    PLAYLIST_CACHE_CONTROL,
    SEGMENT_CACHE_CONTROL,
    THREAD_NAME_PREFIX,
    HlsPackager,
    ServedFile,
    served_file,
)


def require_ffmpeg() -> tuple[str, str]:
    """ffmpeg and ffprobe; skips the module without them (fails in CI)."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs ffmpeg and ffprobe for the HLS packager tests")
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)", allow_module_level=True)
    return ffmpeg, ffprobe


FFMPEG, FFPROBE = require_ffmpeg()
METADATA = {"videocodecid": 7.0, "audiocodecid": 10.0, "encoder": "test"}


def encode(path: Path, *args: str) -> list[flv.Tag]:
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args, "-f", "flv", str(path)],
        check=True,
        timeout=60,
    )
    return list(flv.read_tags(path.read_bytes()))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[flv.Tag]]:
    folder = tmp_path_factory.mktemp("clips")
    source = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"]
    sine = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "30"]
    return {
        # libx264's defaults (3 B-frames), a keyframe a second, AAC: what OBS sends.
        "av": encode(folder / "av.flv", *source, *sine, *x264, "-c:a", "aac", "-t", "6"),
        "bframes": encode(folder / "v.flv", *source, *x264, "-bf", "2", "-t", "4"),
        "audio": encode(folder / "a.flv", *sine, "-c:a", "aac", "-t", "4"),
    }


async def feed(
    packager: HlsPackager,
    tags: Iterable[flv.Tag],
    *,
    speed: float = 8.0,
    metadata: dict[str, object] | None = None,
    fed: list[int] | None = None,
) -> None:
    """Hand the tags to the packager as the RTMP server would, ``speed`` times
    faster than real time (sleeping only when at least 5 ms ahead); the
    timestamps handed so far go to ``fed``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for tag in tags:
        ahead = start + tag.timestamp_ms / 1000 / speed - loop.time()
        if ahead > 0.005:
            await asyncio.sleep(ahead)
        if tag.kind == flv.TAG_VIDEO:
            packager.video(tag.timestamp_ms, tag.body)
        elif tag.kind == flv.TAG_AUDIO:
            packager.audio(tag.timestamp_ms, tag.body)
        elif tag.kind == flv.TAG_SCRIPT and metadata is not None:
            packager.metadata(metadata)
        if fed is not None:
            fed.append(tag.timestamp_ms)


def playlist_segments(playlist: str) -> list[tuple[float, str]]:
    return [
        (float(duration), name)
        for duration, name in re.findall(r"#EXTINF:([\d.]+),\n(\S+)", playlist)
    ]


def probe(path: Path, *entries: str) -> tuple[dict[str, object], str]:
    """ffprobe's JSON for ``entries``, decoding every frame; and its stderr."""
    result = subprocess.run(
        [FFPROBE, "-v", "error", "-count_frames", "-of", "json", *entries, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout), result.stderr


def stream_frames(path: Path) -> dict[str, int]:
    """codec name -> frames decoded, for one segment; fails on decoder errors."""
    found, errors = probe(path, "-show_entries", "stream=codec_name,nb_read_frames")
    assert errors == "", (path.name, errors)
    streams = found["streams"]
    assert isinstance(streams, list)
    return {s["codec_name"]: int(s["nb_read_frames"]) for s in streams}


def frame_counts(tags: Iterable[flv.Tag]) -> dict[str, int]:
    """The coded frames in an FLV clip (sequence headers are not frames)."""
    kinds = [t.kind for t in tags if t.kind in (flv.TAG_AUDIO, flv.TAG_VIDEO) and t.body[1] == 1]
    return {"h264": kinds.count(flv.TAG_VIDEO), "aac": kinds.count(flv.TAG_AUDIO)}


def packager_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)]


def check_finished_playlist(packager: HlsPackager, codecs: dict[str, bool]) -> list[str]:
    """The playlist ends, lists segments of 1-2 s that decode; returns their names."""
    text = packager.playlist_path.read_text()
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    if codecs.get("h264"):  # (every audio frame stands alone: FFmpeg does not say it)
        assert "#EXT-X-INDEPENDENT-SEGMENTS" in text
    segments = playlist_segments(text)
    assert segments
    durations = [duration for duration, _ in segments]
    assert all(duration <= 2.1 for duration in durations), durations
    assert all(duration >= 0.9 for duration in durations[:-1]), durations
    for _, name in segments:
        frames = stream_frames(packager.output_dir / name)
        assert set(frames) == {codec for codec, present in codecs.items() if present}, frames
        assert all(count > 0 for count in frames.values()), (name, frames)
    assert not [p for p in packager.output_dir.iterdir() if p.suffix == ".tmp"]
    return [name for _, name in segments]


async def test_h264_and_aac_become_a_sliding_playlist_of_short_segments(
    tmp_path: Path, clips: dict[str, list[flv.Tag]]
) -> None:
    packager = HlsPackager(tmp_path / "live", segment_seconds=1.0, playlist_segments=3)
    fed: list[int] = []
    publishing = asyncio.create_task(
        feed(packager, clips["av"], speed=4.0, metadata=METADATA, fed=fed)
    )
    started = time.monotonic()
    assert await asyncio.wait_for(packager.wait_playable(), 10)
    first_segment_after = time.monotonic() - started
    media_fed = fed[-1]
    live_text = packager.playlist_path.read_text()
    await publishing
    await asyncio.wait_for(packager.aclose(), 10)

    # Playable after about one segment of media, while still live.
    print(f"first segment after {media_fed} ms of media ({first_segment_after:.3f} s at 4x)")
    assert media_fed <= 2500, media_fed
    assert "#EXT-X-ENDLIST" not in live_text
    assert playlist_segments(live_text)

    names = check_finished_playlist(packager, {"h264": True, "aac": True})
    assert len(names) == 3
    on_disk = sorted(p.name for p in packager.output_dir.glob("seg_*"))
    assert f"seg_{packager.publish_id}_00000.ts" not in on_disk  # the window slid: deleted
    assert len(on_disk) <= 4  # the window, and one kept for late readers
    assert set(names) <= set(on_disk)
    assert packager.reason is None and not packager.failed
    assert packager.finished and packager.dropped_packets == 0
    assert packager.keyframe_interval_ms == 1000
    assert packager_threads() == []


async def test_video_only_with_b_frames_keeps_presentation_order(
    tmp_path: Path, clips: dict[str, list[flv.Tag]]
) -> None:
    packager = HlsPackager(tmp_path / "live", playlist_segments=10)
    await feed(packager, clips["bframes"], metadata={"videocodecid": 7.0})
    await asyncio.wait_for(packager.aclose(), 10)
    names = check_finished_playlist(packager, {"h264": True})

    source_pts = sorted(
        t.timestamp_ms + int.from_bytes(t.body[2:5], "big", signed=True)
        for t in clips["bframes"]
        if t.kind == flv.TAG_VIDEO and t.body[1] == 1
    )
    frame_pts: list[float] = []
    reordered = False
    for name in names:
        found, _ = probe(packager.output_dir / name, "-show_entries", "frame=pts_time")
        found_frames = found["frames"]
        assert isinstance(found_frames, list)
        frames = [float(f["pts_time"]) for f in found_frames]
        assert frames == sorted(frames) and len(set(frames)) == len(frames), name
        assert not frame_pts or frames[0] > frame_pts[-1]
        frame_pts += frames
        found, _ = probe(packager.output_dir / name, "-show_entries", "packet=pts,dts")
        packets = found["packets"]
        assert isinstance(packets, list)
        reordered |= any(p["pts"] > p["dts"] for p in packets)
    assert reordered  # B-frames made it through, with their composition offsets
    # The same presentation times as the source (ms, from the first frame).
    assert len(frame_pts) == len(source_pts)
    shown = [round((pts - frame_pts[0]) * 1000) for pts in frame_pts]
    assert shown == [pts - source_pts[0] for pts in source_pts]
    assert packager_threads() == []


async def test_audio_only(tmp_path: Path, clips: dict[str, list[flv.Tag]]) -> None:
    packager = HlsPackager(tmp_path / "live", playlist_segments=10)
    await feed(packager, clips["audio"], metadata={"audiocodecid": 10.0})
    await asyncio.wait_for(packager.aclose(), 10)
    assert packager.playable and packager.reason is None
    check_finished_playlist(packager, {"aac": True})


async def test_fmp4_segments(tmp_path: Path, clips: dict[str, list[flv.Tag]]) -> None:
    packager = HlsPackager(tmp_path / "live", segment_format="fmp4", playlist_segments=10)
    await feed(packager, clips["av"], speed=float("inf"), metadata=METADATA)
    await asyncio.wait_for(packager.aclose(), 10)
    text = packager.playlist_path.read_text()
    assert f'#EXT-X-MAP:URI="init_{packager.publish_id}.mp4"' in text and text.rstrip().endswith(
        "#EXT-X-ENDLIST"
    )
    assert all(name.endswith(".m4s") for _, name in playlist_segments(text))
    assert stream_frames(packager.playlist_path) == frame_counts(clips["av"])


async def test_a_stream_announced_with_audio_that_never_comes_starts_anyway(
    tmp_path: Path, clips: dict[str, list[flv.Tag]]
) -> None:
    packager = HlsPackager(tmp_path / "live")
    video = [t for t in clips["av"] if t.kind != flv.TAG_AUDIO]
    await feed(packager, video, speed=float("inf"), metadata=METADATA)
    await asyncio.wait_for(packager.aclose(), 10)
    check_finished_playlist(packager, {"h264": True})


async def test_video_that_starts_after_the_audio_is_not_left_out(
    tmp_path: Path, clips: dict[str, list[flv.Tag]]
) -> None:
    """No metadata, and the video's sequence header half a second after the
    audio's frames began: the packager waits for it (up to a second)."""
    audio_first = [t for t in clips["av"] if t.kind == flv.TAG_AUDIO and t.timestamp_ms < 500]
    later = [
        flv.Tag(t.kind, max(t.timestamp_ms - 500, 500), t.body)
        for t in clips["av"]
        if t.kind != flv.TAG_SCRIPT and (t.timestamp_ms >= 1000 or t.body[:2] == b"\x17\x00")
    ]
    packager = HlsPackager(tmp_path / "live", playlist_segments=10)
    await feed(packager, audio_first + later, speed=float("inf"))
    await asyncio.wait_for(packager.aclose(), 10)
    check_finished_playlist(packager, {"h264": True, "aac": True})


async def test_a_stream_without_keyframes_has_nothing_to_play(
    tmp_path: Path, clips: dict[str, list[flv.Tag]]
) -> None:
    packager = HlsPackager(tmp_path / "live")
    no_keyframes = [
        t for t in clips["av"] if not (t.kind == flv.TAG_VIDEO and t.body[:2] == b"\x17\x01")
    ]
    waiting = asyncio.create_task(packager.wait_playable())
    await feed(packager, no_keyframes, speed=float("inf"), metadata=METADATA)
    packager.end()
    assert await asyncio.wait_for(waiting, 5) is False
    await asyncio.wait_for(packager.aclose(), 5)
    assert packager.reason is None and not packager.playable
    assert list(packager.output_dir.iterdir()) == []
    assert packager_threads() == []


def garbage_in_video(tags: Sequence[flv.Tag], replace: bytes) -> list[flv.Tag]:
    """The stream with its 40th video frame replaced (``replace`` is
    the new body, or 'truncate' to cut the frame short)."""
    frames = [i for i, t in enumerate(tags) if t.kind == flv.TAG_VIDEO and t.body[1] == 1]
    index = frames[40]
    body = tags[index].body[:-7] if replace == b"truncate" else replace
    return [
        *tags[:index],
        flv.Tag(flv.TAG_VIDEO, tags[index].timestamp_ms, body),
        *tags[index + 1 :],
    ]


@pytest.mark.parametrize(
    ("replace", "reason"),
    [
        (b"\x12" + os.urandom(3000), "Sorenson H.263 is not supported"),
        (b"\x27\x01\x00\x00\x00" + os.urandom(3000), "malformed H.264"),
        (b"\x17\x01\x00\x00\x00\xff\xff\xff\xff\x65", "malformed H.264"),
        (b"truncate", "malformed H.264"),
        (b"\x2f\x01\xff\xfb\x90\x00", "MP3 is not supported"),
    ],
    ids=["other-codec", "random-h264", "nal-length", "truncated", "mp3"],
)
async def test_garbage_ends_the_stream_with_a_reason(
    tmp_path: Path, clips: dict[str, list[flv.Tag]], replace: bytes, reason: str
) -> None:
    packager = HlsPackager(tmp_path / "live")
    tags = garbage_in_video(clips["av"], replace)
    if replace.startswith(b"\x2f"):  # audio: sent as an audio message
        tags = [
            flv.Tag(flv.TAG_AUDIO, t.timestamp_ms, t.body) if t.body == replace else t for t in tags
        ]
    await feed(packager, tags, speed=float("inf"), metadata=METADATA)
    await asyncio.wait_for(packager.aclose(), 10)
    assert packager_threads() == []
    assert packager.failed
    assert reason in (packager.reason or ""), packager.reason
    # What was made before the garbage is a finished playlist.
    assert packager.playlist_path.read_text().rstrip().endswith("#EXT-X-ENDLIST")
    # Later messages are ignored.
    packager.video(99_000, b"\x17\x01\x00\x00\x00")
    packager.end()


async def test_a_broken_sequence_header_fails_in_ffmpeg_without_hanging(
    tmp_path: Path, clips: dict[str, list[flv.Tag]]
) -> None:
    packager = HlsPackager(tmp_path / "live")
    broken = b"\x17\x00\x00\x00\x00\x01\x42\x00\x1e\xff" + bytes(range(30))
    tags = [
        flv.Tag(t.kind, t.timestamp_ms, broken) if t.body[:2] == b"\x17\x00" else t
        for t in clips["av"]
    ]
    await feed(packager, tags, speed=float("inf"), metadata=METADATA)
    await asyncio.wait_for(packager.aclose(), 10)
    assert packager.failed and "remuxing failed" in (packager.reason or "")
    assert not packager.playable
    assert packager_threads() == []


class StalledPackager(HlsPackager):
    """A packager whose worker is stuck (a stalled disk) until released."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.release = threading.Event()

    def _remux(self) -> None:
        self.release.wait(10)
        super()._remux()


async def test_a_packager_that_falls_behind_drops_the_stream(
    tmp_path: Path, clips: dict[str, list[flv.Tag]]
) -> None:
    packager = StalledPackager(tmp_path / "live", max_buffered_bytes=200_000)
    finished = asyncio.create_task(packager.wait_finished())
    await feed(packager, clips["av"], speed=float("inf"), metadata=METADATA)
    assert packager.failed and "fell more than 200000 bytes behind" in (packager.reason or "")
    assert not finished.done()  # the thread is still stuck
    packager.release.set()
    await asyncio.wait_for(finished, 10)
    await packager.aclose()
    assert packager_threads() == []


async def test_end_before_any_media_and_a_used_directory(tmp_path: Path) -> None:
    packager = HlsPackager(tmp_path / "live")
    packager.metadata(METADATA)
    packager.video(0, b"\x17\x00\x00\x00\x00\x01\x64\x00\x28\xff\xe1\x00\x00\x00")
    await asyncio.wait_for(packager.aclose(), 5)
    assert packager.finished and not packager.playable and packager.reason is None
    assert await packager.wait_playable() is False

    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "index.m3u8").write_text("#EXTM3U\n")
    with pytest.raises(ValueError, match="not empty"):
        HlsPackager(tmp_path / "used")


def test_served_files() -> None:
    playlist = ServedFile("application/vnd.apple.mpegurl", PLAYLIST_CACHE_CONTROL)
    assert served_file("index.m3u8") == playlist
    assert PLAYLIST_CACHE_CONTROL == "no-cache"
    segment = ServedFile("video/mp2t", SEGMENT_CACHE_CONTROL)
    assert served_file("seg_1f2e3d4c_00042.ts") == segment
    assert served_file("seg_01JD8X4K7B_123456.m4s") == ServedFile(
        "video/iso.segment", SEGMENT_CACHE_CONTROL
    )
    assert served_file("init_1f2e3d4c.mp4") == ServedFile("video/mp4", SEGMENT_CACHE_CONTROL)
    assert "immutable" in SEGMENT_CACHE_CONTROL
    for name in [
        "seg_1f2e3d4c_00042.ts.tmp",
        "index.m3u8.tmp",
        "../index.m3u8",
        "x/seg_1f2e3d4c_00001.ts",
        "seg_00001.ts",
        "seg_a-b_00001.ts",
        "",
    ]:
        assert served_file(name) is None, name


async def test_segment_names_differ_from_one_publish_to_the_next(tmp_path: Path) -> None:
    first, second = HlsPackager(tmp_path / "a"), HlsPackager(tmp_path / "b")
    assert first.publish_id != second.publish_id
    chosen = HlsPackager(tmp_path / "c", publish_id="01JD8X4K7B")
    assert chosen.publish_id == "01JD8X4K7B"
    with pytest.raises(ValueError, match="publish_id"):
        HlsPackager(tmp_path / "d", publish_id="../x")
    for packager in (first, second, chosen):
        await packager.aclose()


async def test_cpu_per_media_second_at_1080p(tmp_path: Path) -> None:
    """10 s of 1080p30 at 6 Mb/s + AAC, remuxed: this process's CPU time (the
    sink calls on the loop and the worker thread) per second of media."""
    tags = encode(
        tmp_path / "1080p.flv",
        *["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"],
        *["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10"],
        *["-c:v", "libx264", "-preset", "ultrafast", "-g", "60"],
        *["-b:v", "6M", "-maxrate", "6M", "-bufsize", "6M", "-c:a", "aac", "-b:a", "128k"],
    )
    packager = HlsPackager(tmp_path / "live")
    cpu = time.process_time()
    await feed(packager, tags, speed=float("inf"), metadata=METADATA)
    await asyncio.wait_for(packager.aclose(), 20)
    per_media_second = (time.process_time() - cpu) / 10
    print(
        f"1080p 6 Mb/s remux: {per_media_second:.4f} CPU-s per media second "
        f"(worker thread {packager.worker_cpu_seconds / 10:.4f})"
    )
    assert packager.reason is None and packager.playable
    assert per_media_second < 0.02
