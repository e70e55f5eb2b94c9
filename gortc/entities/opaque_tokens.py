"""Random bearer secrets (refresh tokens, mailed links, invite codes).

Only their SHA-256 is ever stored: a leaked database hands out no working
token. The secrets carry 256 bits, so an unsalted fast hash is enough.
"""

from __future__ import annotations

import hashlib
import secrets


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def hash_opaque_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
