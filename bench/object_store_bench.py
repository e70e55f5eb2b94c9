"""Uploads and downloads with files on disk and in an S3 store, side by side.

Starts SeaweedFS (``weed mini``, as the tests do: tests/object_store.py) and
two ``gortc serve``: one keeping files on disk (the baseline), one in a
bucket. For each file size, the median wall time of: an upload through the
server (multipart POST), a direct upload (ask, PUT to the store, confirm:
S3 only), and a download (streamed by the server, or its redirect followed
to the store). Everything is on loopback, so the figures show what each
path costs the machine, not a network's latency. ``make bench-object-store``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/object_store.py starts SeaweedFS

from gortc_process import start_gortc  # noqa: E402

from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY, ObjectStore  # noqa: E402

PASSWORD = "a long bench passphrase"


async def sign_in(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    account = {"username": "bench", "email": "bench@example.com", "password": PASSWORD}
    await (await http.post(f"{url}/api/v1/auth/register", json=account)).read()
    answer = await http.post(
        f"{url}/api/v1/auth/login", json={"login": "bench", "password": PASSWORD}
    )
    return {"Authorization": f"Bearer {(await answer.json())['access_token']}"}


async def through_server(
    http: aiohttp.ClientSession, url: str, auth: dict[str, str], data: bytes
) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="bench.bin", content_type="application/octet-stream")
    answer = await http.post(f"{url}/api/v1/files", data=form, headers=auth)
    assert answer.status == 201, await answer.text()
    return await answer.json()  # type: ignore[no-any-return]


async def direct(
    http: aiohttp.ClientSession, url: str, auth: dict[str, str], data: bytes
) -> dict[str, Any]:
    asked = await http.post(
        f"{url}/api/v1/files/direct-uploads",
        json={"name": "bench.bin", "size": len(data)},
        headers=auth,
    )
    ticket = await asked.json()
    put = await http.put(ticket["url"], data=data, headers=ticket["headers"])
    assert put.status == 200, await put.text()
    confirmed = await http.post(
        f"{url}/api/v1/files/direct-uploads/confirm",
        json={"upload_id": ticket["upload_id"]},
        headers=auth,
    )
    assert confirmed.status == 201, await confirmed.text()
    return await confirmed.json()  # type: ignore[no-any-return]


async def download(
    http: aiohttp.ClientSession, url: str, auth: dict[str, str], file: dict[str, Any]
) -> None:
    answer = await http.get(f"{url}{file['content_url']}", headers=auth, allow_redirects=False)
    if answer.status == 302:  # no credentials to the store: the URL is one
        answer = await http.get(answer.headers["Location"])
    assert answer.status == 200
    assert len(await answer.read()) == file["size"]


async def timed(runs: int, step: Any) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await step()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def measure_size(
    http: aiohttp.ClientSession, url: str, auth: dict[str, str], size: int, runs: int, s3: bool
) -> tuple[float, float, float]:
    # Different bytes each time: no upload is a duplicate of another.
    data = bytearray(os.urandom(size))
    counter = 0
    kept: list[dict[str, Any]] = []

    def fresh() -> bytes:
        nonlocal counter
        counter += 1
        data[:8] = counter.to_bytes(8, "big")
        return bytes(data)

    async def up() -> None:
        kept.append(await through_server(http, url, auth, fresh()))

    async def up_direct() -> None:
        await direct(http, url, auth, fresh())

    async def down() -> None:
        await download(http, url, auth, kept[0])

    through = await timed(runs, up)
    straight = await timed(runs, up_direct) if s3 else float("nan")
    return through, straight, await timed(runs, down)


async def measure(url: str, sizes: list[int], runs: int, *, s3: bool) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"through": [], "direct": [], "download": []}
    async with aiohttp.ClientSession() as http:
        auth = await sign_in(http, url)
        for size in sizes:
            through, straight, down = await measure_size(http, url, auth, size, runs, s3)
            figures["through"].append(through)
            figures["direct"].append(straight)
            figures["download"].append(down)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mib", default="1,20", help="file sizes, MiB")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(float(mib) * 2**20) for mib in args.sizes_mib.split(",")]
    with tempfile.TemporaryDirectory() as scratch, ObjectStore(Path(scratch) / "weed") as store:
        settings = {"GORTC_LIMITS_ENABLED": "false", "GORTC_AUTH_BCRYPT_ROUNDS": "4"}
        disk, disk_url = await start_gortc(f"{scratch}/disk", **settings)
        bucket, bucket_url = await start_gortc(
            f"{scratch}/s3",
            **settings,
            GORTC_STORAGE_URL=store.url,
            GORTC_STORAGE_ENDPOINT=store.endpoint,
            GORTC_STORAGE_REGION=REGION,
            GORTC_STORAGE_ACCESS_KEY=ACCESS_KEY,
            GORTC_STORAGE_SECRET_KEY=SECRET_KEY,
        )
        try:
            on_disk = await measure(disk_url, sizes, args.runs, s3=False)
            on_s3 = await measure(bucket_url, sizes, args.runs, s3=True)
        finally:
            for process in (disk, bucket):
                process.terminate()
                await process.wait()
    print(f"median of {args.runs} runs, ms (ratio to the disk's upload/download)")
    columns = ("disk upload", "S3 upload via server", "S3 direct upload")
    columns += ("disk download", "S3 download")
    print(" | ".join(("size    ", *columns)))
    for index, size in enumerate(sizes):
        base_up, base_down = on_disk["through"][index], on_disk["download"][index]
        print(
            f"{size / 2**20:5.1f} MiB | {base_up:8.1f} | "
            f"{on_s3['through'][index]:8.1f} (×{on_s3['through'][index] / base_up:.2f}) | "
            f"{on_s3['direct'][index]:8.1f} (×{on_s3['direct'][index] / base_up:.2f}) | "
            f"{base_down:8.1f} | "
            f"{on_s3['download'][index]:8.1f} (×{on_s3['download'][index] / base_down:.2f})"
        )


if __name__ == "__main__":
    asyncio.run(main())
