"""The Python ceiling for the fan-out benchmark: an aiohttp server that, for
each incoming message, builds ONE unmasked server frame (header + payload)
and writes it with ``transport.write`` to every transport of the room, with
no queue and no per-socket ``send_str``.

A client joins the room named in its URL (``/ws?room=R000``). Every text
message is a benchmark payload starting with ``@@`` and a four-character
room id (``@@R000|...``); it goes to every client of that room, sender
included. Prints ``ready on http://HOST:PORT`` on stderr.

Usage: python bench/fanout/bare_aiohttp.py [--port N]
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys

from aiohttp import WSMsgType, web

ROOMS: dict[str, set[asyncio.Transport]] = {}


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (FIN + opcode 1)."""
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, length) + payload
    return struct.pack("!BBQ", 0x81, 127, length) + payload


async def websocket(request: web.Request) -> web.StreamResponse:
    room_id = request.query.get("room", "")
    if len(room_id) != 4:
        raise web.HTTPBadRequest(text="room must be four characters")
    ws = web.WebSocketResponse(compress=False, max_msg_size=512)
    await ws.prepare(request)
    transport = request.transport
    assert transport is not None
    room = ROOMS.setdefault(room_id, set())
    room.add(transport)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            payload = message.data.encode()
            if payload[:2] != b"@@":
                continue
            frame = text_frame(payload)
            for target in ROOMS.get(payload[2:6].decode(), ()):
                if not target.is_closing():
                    target.write(frame)
    finally:
        room.discard(transport)
    return ws


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_get("/ws", websocket)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    print(f"ready on http://{host}:{bound}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    # The same loop as `gortc serve` runs on by default (server.event_loop),
    # so that the floor and gortc are measured alike.
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(args.port))
