"""Every use of aiortc's and aioice's private parts, in one place.

aiortc decodes every frame it receives and encodes every frame it sends. A
forwarding SFU needs neither, and aiortc has no public way to skip them, so
this module reaches into the version it was written for (see
docs/sfu-research.md for the reading of its source):

- the receiver hands each depacketised frame to its decoder thread through a
  queue; :func:`tap_encoded_frames` swaps that queue for one that hands the
  frames to us instead (nothing is decoded, and the receiver keeps its RTCP
  receiver reports, NACKs and jitter buffer);
- a subscriber's PLI/FIR only sets a flag the sender reads when it encodes;
  :func:`on_keyframe_request` sends it to us, and :func:`request_keyframe`
  asks the publisher for one;
- the stream id in the SDP's msid is the connection's, not the track's;
  :func:`set_stream_id` makes it the publisher's, so a client can tell whose
  track is whose;
- aioice leaves 127.0.0.1 out of its host candidates and offers no setting
  for the addresses to gather on; :func:`use_host_addresses` gives it some;
- every RTP packet sent reads the NTP clock (for its abs-send-time
  extension) through ``datetime`` arithmetic, a few µs each;
  :func:`use_fast_clock` gives it the same values from ``time.time()``;
- ``createOffer`` numbers every section's payload types and header
  extensions from aiortc's own tables, even the sections the client offered
  and numbered first, which browsers refuse; :func:`offer_numbering` makes it
  use the client's numbers.

:func:`check_aiortc` runs when the SFU is built: on any other aiortc version,
or if a part used here is missing, it raises instead of letting a call fail
in some quieter way.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import inspect
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import aioice.ice
import aiortc.clock
import aiortc.rtcpeerconnection
from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    sdp,
)
from aiortc.codecs import CODECS, HEADER_EXTENSIONS, is_rtx
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"

FrameSink = Callable[[RTCRtpCodecParameters, JitterFrame], None]


class IncompatibleAiortc(RuntimeError):
    """The installed aiortc is not the one the forwarding path was written for."""


def check_aiortc(aiortc_version: str | None = None, aioice_version: str | None = None) -> None:
    """Raises IncompatibleAiortc unless the installed versions and every
    private part this module uses are what it was written against."""
    found = {
        "aiortc": aiortc_version or importlib.metadata.version("aiortc"),
        "aioice": aioice_version or importlib.metadata.version("aioice"),
    }
    wanted = {"aiortc": AIORTC_VERSION, "aioice": AIOICE_VERSION}
    for package, version in found.items():
        if version != wanted[package]:
            raise IncompatibleAiortc(
                f"gortc.media forwards media through {package} {wanted[package]}'s internals "
                f"and {package} {version} is installed: pin {package}=={wanted[package]}, "
                "or re-check gortc/media/aiortc_hooks.py against the new version and its tests"
            )
    problems = [
        name
        for name, present in (
            (
                "RTCRtpSender._send_keyframe",
                callable(getattr(RTCRtpSender, "_send_keyframe", None)),
            ),
            (
                "RTCRtpReceiver._send_rtcp_pli",
                callable(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)),
            ),
            ("Vp8Encoder.pack", callable(getattr(Vp8Encoder, "pack", None))),
            ("H264Encoder.pack", callable(getattr(H264Encoder, "pack", None))),
            ("OpusEncoder.pack", callable(getattr(OpusEncoder, "pack", None))),
            (
                "aioice.ice.get_host_addresses",
                callable(getattr(aioice.ice, "get_host_addresses", None)),
            ),
            (
                "RTCRtpReceiver._handle_rtp_packet hands frames to __decoder_queue.put",
                "self.__decoder_queue.put((codec, encoded_frame))"
                in inspect.getsource(RTCRtpReceiver._handle_rtp_packet),
            ),
            (
                "RTCPeerConnection.createOffer reads CODECS and HEADER_EXTENSIONS without awaiting",
                _reads_tables_at_once(inspect.getsource(RTCPeerConnection.createOffer)),
            ),
            (
                "aiortc.clock.current_ntp_time and current_ms",
                callable(getattr(aiortc.clock, "current_ntp_time", None))
                and callable(getattr(aiortc.clock, "current_ms", None)),
            ),
            (
                "RTCRtpSender._next_encoded_frame packs what is not a Frame",
                "self.__encoder.pack(data)" in inspect.getsource(RTCRtpSender._next_encoded_frame),
            ),
        )
        if not present
    ]
    if problems:
        raise IncompatibleAiortc("aiortc internals changed: " + ", ".join(problems))


class _FrameTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue: frames go to the sink, and
    only the stop marker (None) reaches the decoder thread, so that thread
    idles and still exits when the receiver stops."""

    def __init__(self, sink: FrameSink) -> None:
        super().__init__()
        self._sink = sink

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None, block, timeout)
            return
        codec, frame = item
        self._sink(codec, frame)


def tap_encoded_frames(receiver: RTCRtpReceiver, sink: FrameSink) -> None:
    """From now on, the receiver's depacketised frames go to ``sink`` (on the
    event loop, in order) instead of its decoder. Call it before the receiver
    starts, i.e. from the peer connection's ``track`` event."""
    if getattr(receiver, "_RTCRtpReceiver__started", True):
        raise IncompatibleAiortc("the receiver started before its frames could be tapped")
    if not isinstance(getattr(receiver, "_RTCRtpReceiver__decoder_queue", None), queue.Queue):
        raise IncompatibleAiortc("RTCRtpReceiver has no decoder queue to tap")
    receiver._RTCRtpReceiver__decoder_queue = _FrameTap(sink)  # type: ignore[attr-defined]


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Calls ``callback`` when the subscriber behind ``sender`` sends a PLI
    or FIR (aiortc calls ``self._send_keyframe()``, so the instance
    attribute wins over the method)."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def active_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """The SSRCs the receiver heard from in the last 10 s (public API, named
    here because it is what :func:`request_keyframe` addresses)."""
    return [source.source for source in receiver.getSynchronizationSources()]


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Sends a PLI to the publisher behind ``receiver``; False when nothing
    has been received yet (there is nobody to address)."""
    ssrcs = active_ssrcs(receiver)
    for ssrc in ssrcs:
        await receiver._send_rtcp_pli(ssrc)
    return bool(ssrcs)


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """The msid stream id the SDP gives this sender's track."""
    sender._stream_id = stream_id


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The codec the last negotiation settled on for the transceiver (the
    first of its codecs), or None before any."""
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    return codecs[0] if codecs else None


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Makes every ICE agent in this process gather host candidates on
    exactly ``addresses`` (empty: aioice's own choice, every interface but
    loopback). Process-wide, as aioice reads a module function: one gortc
    server runs per process."""
    chosen = list(addresses)
    if not chosen:
        aioice.ice.get_host_addresses = _AIOICE_HOST_ADDRESSES
        return

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured


_AIOICE_HOST_ADDRESSES = aioice.ice.get_host_addresses

# Seconds from the NTP epoch (1900) to the Unix epoch (1970).
_NTP_UNIX_OFFSET = 2_208_988_800


def _ntp_now() -> int:
    now = time.time()
    seconds = int(now)
    return ((seconds + _NTP_UNIX_OFFSET) << 32) | int((now - seconds) * (1 << 32))


def _ms_now() -> int:
    return int((time.time() + _NTP_UNIX_OFFSET) * 1000)


def use_fast_clock() -> None:
    """aiortc's NTP clock, as ``time.time()`` arithmetic instead of
    ``datetime`` objects: the sender reads it once or twice per RTP packet
    (7 % of a forwarding server's CPU in a six-party call). Same values, so
    process-wide."""
    aiortc.clock.current_ntp_time = _ntp_now
    aiortc.clock.current_ms = _ms_now


# -- offering in the client's numbering ---------------------------------------

Numbering = tuple[
    dict[str, list[RTCRtpCodecParameters]], dict[str, list[RTCRtpHeaderExtensionParameters]]
]
_DYNAMIC_PAYLOAD_TYPES = range(96, 128)
_EXTENSION_IDS = range(1, 15)


def numbering_of(offer_sdp: str) -> Numbering:
    """aiortc's codecs and header extensions, numbered as the client's offer
    numbers them; those the client did not offer get numbers it does not use
    (in a BUNDLE, a payload type or extension id must keep one meaning
    across all sections). Browsers refuse an offer that renumbers what they
    numbered: Chrome says "RTP extension ID reassignment not supported" and
    drops packets whose payload type changed meaning."""
    description = sdp.SessionDescription.parse(offer_sdp)
    kinds = ("audio", "video")
    codecs: dict[str, list[RTCRtpCodecParameters]] = {kind: [] for kind in kinds}
    extensions: dict[str, list[RTCRtpHeaderExtensionParameters]] = {kind: [] for kind in kinds}
    taken_types: set[int] = set()
    taken_ids: dict[int, str] = {}
    for media in description.media:
        taken_types.update(c.payloadType for c in media.rtp.codecs if c.payloadType is not None)
        taken_ids.update((x.id, x.uri) for x in media.rtp.headerExtensions)
        if media.kind not in codecs:
            continue
        for codec in aiortc.rtcpeerconnection.find_common_codecs(
            CODECS[media.kind], media.rtp.codecs
        ):
            if all(c.payloadType != codec.payloadType for c in codecs[media.kind]):
                codecs[media.kind].append(codec)
        for extension in aiortc.rtcpeerconnection.find_common_header_extensions(
            HEADER_EXTENSIONS[media.kind], media.rtp.headerExtensions
        ):
            if all(x.uri != extension.uri for x in extensions[media.kind]):
                extensions[media.kind].append(extension)
    free_types = (pt for pt in _DYNAMIC_PAYLOAD_TYPES if pt not in taken_types)
    for kind in kinds:
        renumbered: dict[int | None, int] = {}
        for codec in CODECS[kind]:
            if is_rtx(codec):
                base = codec.parameters.get("apt")
                if base in renumbered:
                    extra = copy.deepcopy(codec)
                    extra.payloadType = next(free_types)
                    extra.parameters = {**codec.parameters, "apt": renumbered[base]}
                    codecs[kind].append(extra)
                continue
            if any(aiortc.rtcpeerconnection.is_codec_compatible(codec, c) for c in codecs[kind]):
                continue
            extra = copy.deepcopy(codec)
            if codec.payloadType in _DYNAMIC_PAYLOAD_TYPES:
                extra.payloadType = next(free_types)
            renumbered[codec.payloadType] = extra.payloadType  # type: ignore[assignment]
            codecs[kind].append(extra)
        by_uri = {uri: ext_id for ext_id, uri in taken_ids.items()}
        free_ids = (i for i in _EXTENSION_IDS if i not in taken_ids)
        for extension in HEADER_EXTENSIONS[kind]:
            if any(x.uri == extension.uri for x in extensions[kind]):
                continue
            ext_id = by_uri.get(extension.uri)
            if ext_id is None:
                ext_id = next(free_ids)
                taken_ids[ext_id] = extension.uri
                by_uri[extension.uri] = ext_id
            extensions[kind].append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=extension.uri))
    return codecs, extensions


@contextlib.contextmanager
def offer_numbering(numbering: Numbering) -> Iterator[None]:
    """Around ``await pc.createOffer()``: aiortc reads its tables there
    without awaiting anything (check_aiortc makes sure), so no other task
    sees them swapped."""
    module = aiortc.rtcpeerconnection
    saved = module.CODECS, module.HEADER_EXTENSIONS
    module.CODECS, module.HEADER_EXTENSIONS = numbering
    try:
        yield
    finally:
        module.CODECS, module.HEADER_EXTENSIONS = saved


def _reads_tables_at_once(source: str) -> bool:
    body = source.split('"""', 2)[-1]
    return "await " not in body and "CODECS[" in body and "HEADER_EXTENSIONS[" in body
