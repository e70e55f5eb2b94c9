"""Smoke test of a running gortc container, from the host, over loopback.

Python's standard library only, so it runs with any python3 on the host.
``smoke.py URL [--rtmp-port N]``: waits for /healthz, loads the web client,
registers an account and signs in; with --rtmp-port and ffmpeg on the host,
publishes a few seconds of H.264 + AAC over RTMP and reads the HLS playlist
and a segment back. ``smoke.py URL --sign-in-only``: the account made by the
first run still signs in (after a restart: the data volume kept it).
Exit status 0 when everything answered as a user expects.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

USER = {"username": "smoke", "email": "smoke@example.org", "password": "smoke-test-password-1"}


def call(
    url: str, *, body: dict[str, Any] | None = None, token: str = ""
) -> tuple[int, str, bytes]:
    """Status, content type and body of one request (errors included)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    # Only http(s) URLs of the server under test (main() checks the scheme).
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def check(condition: bool, what: str) -> None:
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        sys.exit(1)


def wait_healthy(base: str, seconds: float = 90.0, *, redis: bool = False) -> None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            status, _, body = call(f"{base}/healthz")
            if status == 200 and (not redis or "redis" in json.loads(body)["checks"]):
                took = time.monotonic() - started
                check(True, f"/healthz 200 after {took:.1f} s: {body.decode()}")
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.5)
    check(False, f"/healthz did not answer 200 within {seconds:.0f} s")


def sign_in(base: str) -> str:
    login = {"login": USER["username"], "password": USER["password"]}
    status, _, body = call(f"{base}/api/v1/auth/login", body=login)
    check(status == 200, f"sign-in as {USER['username']}: {status}")
    token: str = json.loads(body)["access_token"]
    status, _, body = call(f"{base}/api/v1/users/me", token=token)
    check(status == 200 and json.loads(body)["username"] == USER["username"], "GET /users/me")
    return token


def web_client(base: str) -> None:
    status, kind, body = call(f"{base}/")
    check(status == 200 and kind.startswith("text/html") and b"<script" in body, "web client /")
    status, kind, _ = call(f"{base}/static/app.js")
    check(status == 200 and "javascript" in kind, f"web client /static/app.js ({kind})")


def live(base: str, token: str, rtmp_port: int) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("skip  live streaming: no ffmpeg on the host", flush=True)
        return
    status, _, body = call(f"{base}/api/v1/live/key", token=token)
    check(status == 200, "GET /api/v1/live/key")
    key = json.loads(body)["stream_key"]
    publisher = subprocess.Popen(  # noqa: S603 (our own fixed arguments)
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
         "-t", "15", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
         "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{key}"],
    )  # fmt: skip
    try:
        started = time.monotonic()
        segment = b""
        while time.monotonic() - started < 12 and not segment:
            time.sleep(1)
            status, _, body = call(f"{base}/api/v1/live", token=token)
            rooms = json.loads(body)["items"] if status == 200 else []
            if not rooms:
                continue
            status, _, playlist = call(rooms[0]["hls_url"])
            uris = [line for line in playlist.decode().splitlines() if line.startswith("seg")]
            if status != 200 or not uris:
                continue
            playlist_url = rooms[0]["hls_url"].split("?")[0]
            status, kind, segment = call(playlist_url.rsplit("/", 1)[0] + "/" + uris[0])
            check(status == 200 and kind == "video/mp2t", f"HLS segment {uris[0]}: {status}")
        # MPEG-TS packets are 188 bytes, each starting with the sync byte 0x47.
        check(
            len(segment) >= 188 and segment[0] == 0x47,
            f"RTMP in, HLS out: playlist and a {len(segment)}-byte MPEG-TS segment",
        )
    finally:
        publisher.terminate()
        publisher.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="e.g. http://127.0.0.1:18080")
    parser.add_argument("--rtmp-port", type=int, default=0)
    parser.add_argument("--sign-in-only", action="store_true")
    parser.add_argument("--redis", action="store_true", help="/healthz must check Redis too")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        parser.error("the URL must start with http:// or https://")
    wait_healthy(base, redis=args.redis)
    if args.sign_in_only:
        sign_in(base)
        return
    web_client(base)
    status, _, body = call(f"{base}/api/v1/auth/register", body=USER)
    check(status == 201, f"register {USER['username']}: {status} {body[:200]!r}")
    token = sign_in(base)
    if args.rtmp_port:
        live(base, token, args.rtmp_port)


if __name__ == "__main__":
    main()
