"""The generated master secret."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from gortc.adapters.secret_key import load_or_create_secret


def test_processes_starting_together_share_one_complete_secret(tmp_path: Path) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        secrets = list(pool.map(lambda _: load_or_create_secret("", tmp_path), range(32)))
    assert len(set(secrets)) == 1
    assert len(secrets[0]) == 64
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["secret.key"]
