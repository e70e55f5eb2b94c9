"""RTMP ingest: OBS and ffmpeg publish H.264 + AAC to
``rtmp://host:port/<app>/<stream key>``; see :mod:`gortc.media.rtmp.server`."""

from gortc.media.rtmp.errors import PublishRefused, RtmpProtocolError
from gortc.media.rtmp.server import PublishAuthorizer, RtmpServer, RtmpSettings

__all__ = ["PublishAuthorizer", "PublishRefused", "RtmpProtocolError", "RtmpServer", "RtmpSettings"]
