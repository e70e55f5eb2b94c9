"""schemathesis hooks for the API fuzz run (loaded by ``st`` through the
``hooks`` key of tests/e2e/schemathesis.toml).

Signs the fuzzer in as a real client does, with a Bearer access token or with
the web client's session cookie (``FUZZ_AUTH`` = ``bearer`` or ``cookie``), and
signs in again whenever the server answers 401: the fuzzer itself ends its
sign-in now and then (``POST /auth/logout``, ``DELETE /sessions/{id}``).
"""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis

BASE_URL = os.environ["FUZZ_BASE_URL"]
LOGIN = os.environ["FUZZ_LOGIN"]
PASSWORD = os.environ["FUZZ_PASSWORD"]
MODE = os.environ.get("FUZZ_AUTH", "bearer")
COOKIE = "gortc_session"

# WHIP and WHEP carry SDP: text, sent as it is.
schemathesis.serializer.alias("application/sdp", "text/plain")


@schemathesis.auth(refresh_interval=600)
class SignIn:
    """A fresh credential per sign-in; cached until the server refuses it."""

    def get(self, case: Any, context: Any) -> str:
        credentials = {"login": LOGIN, "password": PASSWORD}
        if MODE == "cookie":
            # The cookie sign-in refuses other sites' pages (login CSRF): say where we are.
            response = requests.post(
                f"{BASE_URL}/api/v1/auth/session",
                json=credentials,
                headers={"Origin": BASE_URL},
                timeout=10,
            )
            response.raise_for_status()
            return response.cookies[COOKIE]
        response = requests.post(f"{BASE_URL}/api/v1/auth/login", json=credentials, timeout=10)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def set(self, case: Any, data: str, context: Any) -> None:
        if MODE == "cookie":
            case.cookies[COOKIE] = data
            # Cookie-authenticated changes must come from our own origin (CSRF rule).
            case.headers["Origin"] = BASE_URL
        else:
            case.headers["Authorization"] = f"Bearer {data}"
