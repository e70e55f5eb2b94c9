"""``gortc backup`` of a running server under load, and ``gortc restore``.

A real ``python -m gortc serve`` receives WebSocket messages and uploads
without pause while ``python -m gortc backup`` runs beside it; the backup
restored into a new data directory and served again holds every message
acknowledged and every file uploaded before the backup started.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import FormData

from tests.conftest import TEST_PASSWORD
from tests.e2e.server_process import REPO, start_server

SERVER_ENV = {"GORTC_AUTH_BCRYPT_ROUNDS": "4", "GORTC_LIMITS_ENABLED": "false"}


@dataclass
class Traffic:
    acked: list[tuple[float, int, str]] = field(default_factory=list)  # (time, seq, body)
    uploaded: list[tuple[float, str, bytes]] = field(default_factory=list)  # (time, id, bytes)
    deleted: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def run_gortc(*args: str) -> tuple[int, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GORTC_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gortc",
        *args,
        cwd=REPO,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def sign_in(http: aiohttp.ClientSession, name: str, *, register: bool) -> dict[str, str]:
    if register:
        created = await http.post(
            "/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": TEST_PASSWORD},
        )
        assert created.status == 201, await created.text()
    login = await http.post("/api/v1/auth/login", json={"login": name, "password": TEST_PASSWORD})
    assert login.status == 200, await login.text()
    return {"Authorization": f"Bearer {(await login.json())['access_token']}"}


async def upload(http: aiohttp.ClientSession, headers: dict[str, str], data: bytes) -> str:
    form = FormData()
    form.add_field("file", io.BytesIO(data), filename="f.bin", content_type="application/x-bin")
    response = await http.post("/api/v1/files", data=form, headers=headers)
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def send_messages(
    http: aiohttp.ClientSession, headers: dict[str, str], group_id: str, traffic: Traffic
) -> None:
    async with http.ws_connect("/api/v1/ws", headers=headers) as ws:
        index = 0
        while not traffic.stop.is_set():
            index += 1
            body = f"message {index}"
            await ws.send_json(
                {
                    "type": "message.send",
                    "group_id": group_id,
                    "body": body,
                    "client_id": str(index),
                }
            )
            async with asyncio.timeout(10):
                while True:
                    frame = await ws.receive_json()
                    if frame["type"] == "message.ack" and frame["client_id"] == str(index):
                        break
            traffic.acked.append((time.monotonic(), frame["message"]["seq"], body))


async def upload_files(
    http: aiohttp.ClientSession, headers: dict[str, str], traffic: Traffic, *, churn: bool
) -> None:
    """Keeps uploading; with ``churn``, deletes each file at once, so the
    garbage collector runs all through the backup."""
    while not traffic.stop.is_set():
        data = os.urandom(1000 + int.from_bytes(os.urandom(2), "big") * 3)
        file_id = await upload(http, headers, data)
        if churn:
            response = await http.delete(f"/api/v1/files/{file_id}", headers=headers)
            assert response.status == 204
            traffic.deleted += 1
        else:
            traffic.uploaded.append((time.monotonic(), file_id, data))


async def all_messages(
    http: aiohttp.ClientSession, headers: dict[str, str], group_id: str
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params = {"limit": "100"}
    while True:
        response = await http.get(
            f"/api/v1/groups/{group_id}/messages", params=params, headers=headers
        )
        assert response.status == 200, await response.text()
        page = await response.json()
        items.extend(page["items"])
        if not page["next_cursor"]:
            return items
        params["before"] = page["next_cursor"]


def listing(directory: Path) -> list[tuple[str, int]]:
    return sorted(
        (str(path.relative_to(directory)), path.stat().st_size if path.is_file() else -1)
        for path in directory.rglob("*")
    )


async def test_backup_during_traffic_restores_everything_acknowledged_before(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = await start_server(data, **SERVER_ENV)
    traffic = Traffic()
    try:
        async with aiohttp.ClientSession(server.url) as http:
            headers = await sign_in(http, "alice", register=True)
            group = await http.post("/api/v1/groups", json={"name": "kept"}, headers=headers)
            group_id = (await group.json())["id"]
            writers = [
                asyncio.ensure_future(send_messages(http, headers, group_id, traffic)),
                asyncio.ensure_future(send_messages(http, headers, group_id, traffic)),
                asyncio.ensure_future(upload_files(http, headers, traffic, churn=False)),
                asyncio.ensure_future(upload_files(http, headers, traffic, churn=True)),
            ]
            await asyncio.sleep(1.5)
            backup_started = time.monotonic()
            status, output = await run_gortc(
                "backup", str(tmp_path / "backup"), "--data-dir", str(data)
            )
            backup_ended = time.monotonic()
            await asyncio.sleep(0.5)  # and traffic goes on after it
            traffic.stop.set()
            await asyncio.gather(*writers)
    finally:
        await server.stop()
    assert status == 0, output
    assert "backup written to" in output and "files" in output, output
    before = [entry for entry in traffic.acked if entry[0] < backup_started]
    files_before = [entry for entry in traffic.uploaded if entry[0] < backup_started]
    assert len(before) >= 20 and len(files_before) >= 5 and traffic.deleted >= 5
    assert any(entry[0] > backup_ended for entry in traffic.acked)  # writes went on

    restored_dir = tmp_path / "restored"
    status, output = await run_gortc(
        "restore", str(tmp_path / "backup"), "--data-dir", str(restored_dir)
    )
    assert status == 0, output
    assert "restored into" in output

    restored = await start_server(restored_dir, **SERVER_ENV)
    try:
        async with aiohttp.ClientSession(restored.url) as http:
            headers = await sign_in(http, "alice", register=False)
            messages = await all_messages(http, headers, group_id)
            by_seq = {message["seq"]: message["body"] for message in messages}
            # No gap: 1..n, n at least every acknowledged one before the backup.
            assert sorted(by_seq) == list(range(1, len(by_seq) + 1))
            for _, seq, body in before:
                assert by_seq.get(seq) == body, (seq, body)
            for _, file_id, data in files_before:
                response = await http.get(f"/api/v1/files/{file_id}/content", headers=headers)
                assert response.status == 200, file_id
                assert await response.read() == data
    finally:
        await restored.stop()

    # Into a directory that is not empty: refused, nothing changed.
    before_refusal = listing(restored_dir)
    status, output = await run_gortc(
        "restore", str(tmp_path / "backup"), "--data-dir", str(restored_dir)
    )
    assert status == 2
    assert "not empty" in output and "Traceback" not in output
    assert listing(restored_dir) == before_refusal

    # One altered blob: refused, and nothing is left behind.
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "backup", damaged)
    blob = next(path for path in sorted((damaged / "blobs").rglob("*")) if path.is_file())
    altered = bytearray(blob.read_bytes())
    altered[0] ^= 0xFF
    blob.write_bytes(bytes(altered))
    status, output = await run_gortc("restore", str(damaged), "--data-dir", str(tmp_path / "new"))
    assert status == 1
    assert "damaged" in output and blob.name in output and "Traceback" not in output
    assert not (tmp_path / "new").exists()


async def test_backup_refuses_an_existing_path_and_restore_a_non_backup(tmp_path: Path) -> None:
    (tmp_path / "there").mkdir()
    status, output = await run_gortc(
        "backup", str(tmp_path / "there"), "--data-dir", str(tmp_path / "data")
    )
    assert status == 2 and "already exists" in output
    status, output = await run_gortc(
        "restore", str(tmp_path / "there"), "--data-dir", str(tmp_path / "data")
    )
    assert status == 2 and "not a gortc backup" in output
    assert not (tmp_path / "data").exists()
