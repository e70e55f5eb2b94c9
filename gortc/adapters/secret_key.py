"""The server's master secret, and the keys derived from it."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from gortc.config import ConfigError

MIN_SECRET_LENGTH = 32


def load_or_create_secret(configured: str, data_dir: Path) -> bytes:
    """The configured secret, or the one in <data_dir>/secret.key, created
    on first start (readable by the owner only). Never a built-in default."""
    if configured:
        return configured.encode("utf-8")
    path = data_dir / "secret.key"
    if not path.exists():
        _create_secret_file(path)
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{path} holds no usable secret; delete it to have a new one made")
    return secret.encode("ascii")


def _create_secret_file(path: Path) -> None:
    # Written whole under a temporary name, then linked into place: a
    # second process starting at the same moment either wins the link or
    # reads the complete file, never an empty one.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".secret.key.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        # If the other process linked first, its secret is the one.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so one leak does not expose the others."""
    return hmac.new(secret, f"gortc/{purpose}".encode(), hashlib.sha256).digest()
