"""Closing an aiortc peer connection, even a half-negotiated one.

``RTCPeerConnection.close()`` stops each transceiver's DTLS and ICE
transports in turn and assumes every transceiver has one. A garbled offer
that aiortc accepted but could not answer (a BUNDLE group naming a section
that is not there, say) leaves a transceiver without a transport; close()
then raises at that transceiver, and the transports after it, with their
UDP sockets and tasks, are never stopped. Here they are stopped one by one
through their public objects when close() fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)


async def close_quietly(pc: RTCPeerConnection) -> None:
    """Closes ``pc`` and everything it opened; never raises."""
    try:
        # Shielded: aiortc shares one future among concurrent close() calls,
        # and a cancelled waiter would cancel it for all of them.
        await asyncio.shield(pc.close())
        return
    except Exception as exc:
        log.info("closing a half-negotiated peer connection by hand (%r)", exc)
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is None:
            continue
        with contextlib.suppress(Exception):
            await dtls.stop()
        with contextlib.suppress(Exception):
            await dtls.transport.stop()
