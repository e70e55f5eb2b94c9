"""``gortc backup`` and ``restore`` on a deployment whose files are in an
object store: refused, pointing to the store's own tools (the bucket is
never touched, nor the secret shown)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.integration.test_cli import clean_environment, gortc


async def test_backup_and_restore_refuse_files_in_an_object_store(tmp_path: Path) -> None:
    env = clean_environment(
        GORTC_SERVER_DATA_DIR=str(tmp_path / "data"),
        GORTC_STORAGE_URL="s3://team-files",
        GORTC_STORAGE_ENDPOINT="http://127.0.0.1:9",
        GORTC_STORAGE_ACCESS_KEY="an-access-key",
        GORTC_STORAGE_SECRET_KEY="s3cr3t-never-shown",
    )

    backup = await gortc("backup", str(tmp_path / "copy"), env=env)
    restore = await gortc("restore", str(tmp_path / "copy"), env=env)

    for refused in (backup, restore):
        assert refused.returncode == 2
        assert "s3://team-files" in refused.stderr
        assert "store's own tools" in refused.stderr
        assert "s3cr3t-never-shown" not in refused.stdout + refused.stderr
    assert not (tmp_path / "copy").exists()


async def test_serve_says_so_when_the_bucket_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = clean_environment(
        GORTC_SERVER_DATA_DIR=str(tmp_path / "data"),
        GORTC_LIVE_RTMP_PORT="0",
        GORTC_STORAGE_URL="s3://team-files",
        GORTC_STORAGE_ENDPOINT=f"http://127.0.0.1:{closed}",
        GORTC_STORAGE_ACCESS_KEY="an-access-key",
        GORTC_STORAGE_SECRET_KEY="s3cr3t-never-shown",
    )

    started = time.monotonic()
    served = await gortc("serve", "--port", "0", env=env)

    assert served.returncode == 2
    assert time.monotonic() - started < 30
    [line] = [line for line in served.stderr.splitlines() if line.startswith("gortc:")]
    assert "storage.url s3://team-files: the bucket cannot be used" in line
    assert "s3cr3t-never-shown" not in served.stdout + served.stderr
