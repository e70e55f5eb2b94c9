"""The server's master secret, and the keys derived from it."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


def load_or_create_secret(configured: str, data_dir: Path) -> bytes:
    """The configured secret, or the one in <data_dir>/secret.key, created
    on first start (readable by the owner only). Never a built-in default."""
    if configured:
        return configured.encode("utf-8")
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text(encoding="ascii").strip().encode("ascii")
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    # O_EXCL: two processes starting at once cannot both write one.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip().encode("ascii")
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secret + "\n")
    return secret.encode("ascii")


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so one leak does not expose the others."""
    return hmac.new(secret, f"gortc/{purpose}".encode(), hashlib.sha256).digest()
