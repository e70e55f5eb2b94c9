"""A live room's hls_url in a plain player: real ffprobe and ffmpeg, which
send no headers and no cookies, play the URL exactly as GET /api/v1/live
gives it, the playlist and every segment it lists, with the viewer token
the URL carries; forged and other rooms' tokens are refused, and so is the
token once its viewer has signed out."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gortc.app import create_app
from tests.conftest import ClientFactory, bearer, login, make_config, register
from tests.e2e.test_live_streaming import eventually, rtmp_url, streamer
from tests.media_tools import ffmpeg_publish, probe, require_tool

Answers = list[tuple[str, int]]


@pytest.fixture
async def answers() -> Answers:
    return []


@pytest.fixture
async def live_app(aiohttp_client: ClientFactory, tmp_path: Path, answers: Answers) -> TestClient:
    config = make_config(
        tmp_path / "data",
        live={"rtmp_port": 0, "segment_seconds": 1.0, "playlist_segments": 4},
    )
    app = create_app(config)

    async def note(request: web.Request, response: web.StreamResponse) -> None:
        # What the server answered each request for live media (the "log").
        if request.path.startswith("/live/"):
            answers.append((request.path_qs, response.status))

    app.on_response_prepare.append(note)
    return await aiohttp_client(app)


async def plain_get(url: str) -> tuple[int, str]:
    """A GET as a player makes it: no headers of ours, no cookies."""
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.get(url) as response,
    ):
        return response.status, (await response.read()).decode(errors="replace")


async def run(*command: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


def with_token(url: str, token: str) -> str:
    return f"{url.split('?', 1)[0]}?vt={token}"


async def test_the_hls_url_plays_in_a_plain_player_until_its_viewer_signs_out(
    live_app: TestClient, answers: Answers, tmp_path: Path
) -> None:
    bob, _, key = await streamer(live_app, "bob")
    cid = await register(live_app, "cid")
    await register(live_app, "ann")
    ann_tokens = await login(live_app, "ann")
    publisher = await ffmpeg_publish(rtmp_url(live_app, key), seconds=20)
    try:

        async def listed() -> list[dict[str, Any]]:
            response = await live_app.get("/api/v1/live", headers=bearer(ann_tokens))
            return (await response.json())["items"]  # type: ignore[no-any-return]

        async def is_listed() -> bool:
            return len(await listed()) == 1

        await eventually(is_listed, "bob's room listed")
        [room] = await listed()
        hls_url = room["hls_url"]
        # Absolute, on the address the caller used, with a viewer token (never
        # the access token).
        base = str(live_app.make_url("")).rstrip("/")
        assert hls_url.startswith(f"{base}/live/{bob['id']}/index.m3u8?vt=")
        token = parse_qs(urlsplit(hls_url).query)["vt"][0]
        assert ann_tokens["access_token"] not in hls_url

        async def has_segments() -> bool:
            status, text = await plain_get(hls_url)
            return status == 200 and "#EXTINF" in text

        await eventually(has_segments, "a first segment, fetched without credentials")
        status, playlist = await plain_get(hls_url)
        uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
        assert uris and all("?vt=" in uri for uri in uris), playlist

        # ffprobe and ffmpeg with the URL exactly as listed: h264 + aac, and
        # three seconds of the stream read through the playlist's own URIs
        # (ffmpeg reloads the playlist as a live player does).
        ffprobe = require_tool("ffprobe")
        code, out, err = await run(
            ffprobe, "-v", "error", "-show_entries", "stream=codec_name,codec_type",
            "-of", "json", hls_url,
        )  # fmt: skip
        assert code == 0, err
        codecs = {s["codec_type"]: s["codec_name"] for s in json.loads(out)["streams"]}
        assert codecs == {"video": "h264", "audio": "aac"}
        saved = tmp_path / "watched.ts"
        code, _, err = await run(
            require_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error",
            "-i", hls_url, "-t", "3", "-c", "copy", "-y", str(saved),
        )  # fmt: skip
        assert code == 0, err
        streams = {s["codec_type"]: s for s in (await probe(saved))["streams"]}
        assert int(streams["video"]["nb_read_frames"]) >= 60  # 3 s at 30 fps, give or take
        assert int(streams["audio"]["nb_read_frames"]) > 0
        segments = [path for path, _ in answers if ".ts?" in path]
        playlists = [path for path, _ in answers if "index.m3u8?" in path]
        assert len(segments) >= 3
        assert len(playlists) >= 3  # the players reloaded it
        # (ffmpeg asks for segments with a Range: 206.)
        refused = [(path, status) for path, status in answers if status not in (200, 206)]
        assert refused == [], "every playlist and segment fetch succeeded"
        # The web client's way still works: a signed-in request, no token.
        response = await live_app.get(urlsplit(hls_url).path, headers=bearer(ann_tokens))
        assert response.status == 200
        # And ?access_token= (players that take a URL we did not make): the
        # segments it lists carry a viewer token, not the access token.
        status, playlist = await plain_get(
            f"{hls_url.split('?', 1)[0]}?access_token={ann_tokens['access_token']}"
        )
        assert status == 200
        listed_uri = next(line for line in playlist.splitlines() if ".ts?vt=" in line)
        assert ann_tokens["access_token"] not in playlist
        assert (await plain_get(f"{base}/live/{bob['id']}/{listed_uri}"))[0] == 200

        # Forged, truncated or another room's token: 401 with a JSON reason.
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        segment = urlsplit(uris[-1]).path
        segment_url = f"{base}/live/{bob['id']}/{segment}"
        for url in (
            with_token(hls_url, forged),
            with_token(hls_url, token.rsplit(".", 1)[0]),
            with_token(hls_url, "nonsense"),
            with_token(segment_url, forged),
            with_token(f"{base}/live/{cid['id']}/index.m3u8", token),
            with_token(f"{base}/live/{cid['id']}/{segment}", token),
        ):
            status, text = await plain_get(url)
            assert status == 401, (url, status, text)
            assert json.loads(text)["error"]["code"] == "invalid_viewer_token"
        # No credential at all: the usual 401.
        status, text = await plain_get(hls_url.split("?", 1)[0])
        assert status == 401
        assert json.loads(text)["error"]["code"] == "unauthenticated"

        # Ann signs out: her token stops, for the playlist and the segments.
        _, playlist = await plain_get(hls_url)
        newest = [line for line in playlist.splitlines() if line and not line.startswith("#")]
        last_segment_url = f"{base}/live/{bob['id']}/{newest[-1]}"
        assert (await plain_get(last_segment_url))[0] == 200
        response = await live_app.post("/api/v1/auth/logout", headers=bearer(ann_tokens))
        assert response.status == 204
        for url in (hls_url, last_segment_url):
            status, text = await plain_get(url)
            assert status == 401, (url, status)
            assert json.loads(text)["error"]["code"] == "session_ended"

    finally:
        publisher.kill()
        await publisher.wait()


@pytest.fixture
async def short_token_app(
    aiohttp_client: ClientFactory, tmp_path: Path, answers: Answers
) -> TestClient:
    config = make_config(
        tmp_path / "data",
        live={
            "rtmp_port": 0,
            "segment_seconds": 1.0,
            "playlist_segments": 4,
            "viewer_token_seconds": 10,
        },
    )
    app = create_app(config)

    async def note(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/live/"):
            answers.append((request.path_qs, response.status))

    app.on_response_prepare.append(note)
    return await aiohttp_client(app)


async def test_a_player_goes_on_past_its_url_s_expiry(
    short_token_app: TestClient, answers: Answers, tmp_path: Path
) -> None:
    client = short_token_app
    _, _, key = await streamer(client, "bob")
    await register(client, "ann")
    ann_tokens = await login(client, "ann")
    publisher = await ffmpeg_publish(rtmp_url(client, key), seconds=30)
    try:

        async def hls_url() -> str:
            response = await client.get("/api/v1/live", headers=bearer(ann_tokens))
            items = (await response.json())["items"]
            return items[0]["hls_url"] if items else ""  # type: ignore[no-any-return]

        async def has_segments() -> bool:
            url = await hls_url()
            return bool(url) and "#EXTINF" in (await plain_get(url))[1]

        await eventually(has_segments, "a first segment")
        url = await hls_url()
        expires = int(parse_qs(urlsplit(url).query)["vt"][0].split(".")[2])
        # ffmpeg reads 15 s of the stream in real time, reloading the playlist
        # at this URL all along: its token (10 s at most) expires on the way.
        saved = tmp_path / "long.ts"
        code, _, err = await run(
            require_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error",
            "-i", url, "-t", "15", "-c", "copy", "-y", str(saved),
        )  # fmt: skip
        assert code == 0, err
        assert time.time() > expires + 2, "the URL's token expired while ffmpeg played"
        streams = {s["codec_type"]: s for s in (await probe(saved))["streams"]}
        assert int(streams["video"]["nb_read_frames"]) >= 30 * 13
        refused = [(path, status) for path, status in answers if status not in (200, 206)]
        assert refused == []
        segment_tokens = {
            parse_qs(urlsplit(path).query)["vt"][0] for path, _ in answers if ".ts?" in path
        }
        assert len(segment_tokens) >= 2, "segments came with renewed tokens"
    finally:
        publisher.kill()
        await publisher.wait()


async def test_a_public_room_plays_for_anyone_until_made_private_again(
    live_app: TestClient,
) -> None:
    bob, bob_tokens, key = await streamer(live_app, "bob")
    await register(live_app, "ann")
    ann_tokens = await login(live_app, "ann")
    response = await live_app.put(
        "/api/v1/live/public", json={"public": True}, headers=bearer(bob_tokens)
    )
    assert response.status == 200
    assert (await response.json())["public"] is True
    shown = await (await live_app.get("/api/v1/live/key", headers=bearer(bob_tokens))).json()
    assert shown["public"] is True
    response = await live_app.put("/api/v1/live/public", json={}, headers=bearer(bob_tokens))
    assert response.status == 400
    response = await live_app.put("/api/v1/live/public", json={"public": True})
    assert response.status == 401
    publisher = await ffmpeg_publish(rtmp_url(live_app, key), seconds=12)
    try:

        async def room() -> dict[str, Any] | None:
            response = await live_app.get("/api/v1/live", headers=bearer(ann_tokens))
            items = (await response.json())["items"]
            return items[0] if items else None  # type: ignore[no-any-return]

        async def playable() -> bool:
            listed = await room()
            return listed is not None and "#EXTINF" in (await plain_get(listed["hls_url"]))[1]

        await eventually(playable, "a first segment, for anyone")
        listed = await room()
        assert listed is not None and listed["public"] is True
        base = str(live_app.make_url("")).rstrip("/")
        hls_url = listed["hls_url"]
        assert hls_url == f"{base}/live/{bob['id']}/index.m3u8"  # no token needed
        _, playlist = await plain_get(hls_url)
        uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
        assert uris and not any("vt=" in uri for uri in uris)
        assert (await plain_get(f"{base}/live/{bob['id']}/{uris[-1]}"))[0] == 200
        code, out, err = await run(
            require_tool("ffprobe"), "-v", "error", "-show_entries",
            "stream=codec_name,codec_type", "-of", "json", hls_url,
        )  # fmt: skip
        assert code == 0, err
        codecs = {s["codec_type"]: s["codec_name"] for s in json.loads(out)["streams"]}
        assert codecs == {"video": "h264", "audio": "aac"}

        # Private again: at once, the token-free URL is refused, and the
        # list hands out URLs with a token again.
        response = await live_app.put(
            "/api/v1/live/public", json={"public": False}, headers=bearer(bob_tokens)
        )
        assert (await response.json())["public"] is False
        status, text = await plain_get(hls_url)
        assert status == 401
        assert json.loads(text)["error"]["code"] == "unauthenticated"
        listed = await room()
        assert listed is not None and listed["public"] is False
        assert "?vt=" in listed["hls_url"]
        assert (await plain_get(listed["hls_url"]))[0] == 200
    finally:
        publisher.kill()
        await publisher.wait()
