"""The errors of the RTMP ingest."""

from __future__ import annotations


class RtmpProtocolError(Exception):
    """The peer broke the protocol (or one of our limits): its connection is
    closed, nothing else is affected."""


class PublishRefused(Exception):
    """Raised by a :class:`~gortc.media.rtmp.server.PublishAuthorizer` to turn
    a publisher away. ``reason`` is shown to the publisher (ffmpeg prints it
    as "Server error: <reason>"), so it must not disclose anything secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
