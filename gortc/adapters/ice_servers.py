"""The STUN and TURN servers clients are told to use."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

from gortc.entities.calls import IceServer


class ConfiguredIceServers:
    """From configuration. With a TURN shared secret, each user gets an
    expiring user name ``<expiry>:<user_id>`` and the password
    base64(HMAC-SHA1(secret, user name)): the "TURN REST API" credentials
    coturn checks with ``use-auth-secret`` and ``static-auth-secret``."""

    def __init__(
        self,
        *,
        stun_urls: Sequence[str],
        turn_urls: Sequence[str],
        turn_username: str = "",
        turn_password: str = "",
        turn_secret: str = "",
        credential_seconds: int = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stun = tuple(stun_urls)
        self._turn = tuple(turn_urls)
        self._username = turn_username
        self._password = turn_password
        self._secret = turn_secret.encode()
        self._lifetime = credential_seconds
        self._clock = clock

    def servers_for(self, user_id: str) -> list[IceServer]:
        servers: list[IceServer] = []
        if self._stun:
            servers.append(IceServer(urls=self._stun))
        if self._turn:
            if self._secret:
                username = f"{int(self._clock()) + self._lifetime}:{user_id}"
                digest = hmac.new(self._secret, username.encode(), hashlib.sha1).digest()
                servers.append(
                    IceServer(self._turn, username, base64.b64encode(digest).decode("ascii"))
                )
            else:
                servers.append(
                    IceServer(self._turn, self._username or None, self._password or None)
                )
        return servers
