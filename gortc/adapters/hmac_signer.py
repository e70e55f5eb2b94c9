"""HMAC-SHA256 signatures for signed URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence


class HmacSigner:
    """Signs a list of fields with a key of its own (derived from the
    server's secret under a label used for nothing else, so a signature
    can never be taken for a token or a cookie, or the reverse)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, fields: Sequence[str]) -> str:
        mac = hmac.new(self._key, _signing_input(fields), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def verify(self, fields: Sequence[str], signature: str) -> bool:
        expected = self.sign(fields).encode("ascii")
        return hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape"))


def _signing_input(fields: Sequence[str]) -> bytes:
    # A JSON array: no field can pose as two, whatever characters it holds
    # (a separator could occur inside a file name). ASCII-escaped, so even
    # text that is not valid Unicode encodes.
    return json.dumps(list(fields), ensure_ascii=True, separators=(",", ":")).encode("ascii")
