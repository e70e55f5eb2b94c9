"""A small WebSocket client for tests: frames as dicts, bounded waits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

WAIT_SECONDS = 5.0


class WsClient:
    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ready: dict[str, Any] = {}

    @classmethod
    async def open(cls, client: TestClient, tokens: dict[str, Any]) -> WsClient:
        ws = await client.ws_connect(
            "/api/v1/ws", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        opened = cls(ws)
        opened.ready = await opened.next("ready")
        return opened

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def receive(self, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        if message.type is not WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {message.type} {message.data!r}")
        return json.loads(message.data)  # type: ignore[no-any-return]

    async def next(self, *types: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """The next frame of one of ``types``, skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.receive(timeout)
                if frame["type"] in types:
                    return frame

    async def collect(
        self, kind: str, count: int, timeout: float = WAIT_SECONDS
    ) -> list[dict[str, Any]]:
        return [await self.next(kind, timeout=timeout) for _ in range(count)]

    async def silent(self, seconds: float = 0.3, *, ignore: tuple[str, ...] = ()) -> None:
        """Asserts nothing (but ``ignore``d types) arrives for a while."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    frame = await self.receive(seconds)
                    if frame["type"] not in ignore:
                        raise AssertionError(f"unexpected frame {frame}")
        except TimeoutError:
            return

    async def closed(self, timeout: float = WAIT_SECONDS) -> tuple[int | None, str]:
        """Waits for the server to close; (close code, reason)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                    return self.ws.close_code, str(message.extra or "")
                if message.type is WSMsgType.ERROR:
                    return self.ws.close_code, "error"

    async def close(self) -> None:
        await self.ws.close()
