"""The checks an SDP offer or answer passes before aiortc sees it.

aiortc's parser is lenient where WebRTC is not: it takes a description with
no ``v=0`` line, NUL bytes, no DTLS fingerprint or a garbled one, a transport
that is not RTP, or a BUNDLE group naming sections that do not exist, and
answers it; the connection then fails seconds later, after a room went live
or a participant joined for nothing. Where it does refuse, its message is
often an internal one (an AssertionError with no text, "'NoneType' object
has no attribute 'role'"). These checks refuse such descriptions up front,
each with a sentence a client's developer can act on (RFC 8866 for the
syntax, RFC 8829 (JSEP) and RFC 8842 for what WebRTC requires).
"""

from __future__ import annotations

import re

# a=fingerprint:<hash> <hex pairs> (RFC 8122 5); the hashes WebRTC stacks use.
_FINGERPRINT = re.compile(
    r"a=fingerprint:(sha-1|sha-224|sha-256|sha-384|sha-512) [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+"
)
_MEDIA = re.compile(r"m=(\S+) (\d+)(?:/\d+)? (\S+)( \S+)*")
# Attributes that only mean something inside a media section (RFC 8866 6,
# RFC 8843): aiortc reads them at the session level too, and gets lost.
_MEDIA_ONLY = ("a=mid:", "a=rtpmap:", "a=fmtp:", "a=rtcp-fb:", "a=ssrc:", "a=msid:")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_description(sdp: str) -> None:
    """Raises ValueError saying what makes ``sdp`` unusable for WebRTC."""
    if not sdp.strip():
        raise ValueError("it is empty")
    if _CONTROL.search(sdp):
        raise ValueError("it contains control characters")
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if lines[0] != "v=0":
        raise ValueError("it must start with the line v=0")
    media = [line for line in lines if line.startswith("m=")]
    if not any(line.startswith(("m=audio ", "m=video ")) for line in media):
        raise ValueError("it has no audio or video section (m=audio / m=video)")
    for line in media:
        match = _MEDIA.fullmatch(line)
        if match is None:
            raise ValueError(f"a media line is malformed: {line[:60]!r}")
        kind, protocol = match.group(1), match.group(3)
        if kind in ("audio", "video") and not protocol.endswith(("RTP/SAVPF", "RTP/SAVP")):
            raise ValueError(f"the {kind} section's transport {protocol[:30]!r} is not (S)RTP")
    fingerprints = [line for line in lines if line.startswith("a=fingerprint:")]
    if not fingerprints:
        raise ValueError("it has no DTLS fingerprint (a=fingerprint)")
    for line in fingerprints:
        if not _FINGERPRINT.fullmatch(line.strip()):
            raise ValueError(f"a DTLS fingerprint is malformed: {line[:60]!r}")
    first_media = lines.index(media[0])
    if any(line.startswith(_MEDIA_ONLY) for line in lines[:first_media]):
        raise ValueError("media attributes (a=mid, a=rtpmap...) come before the first m= line")
    mids = {line.removeprefix("a=mid:").strip() for line in lines if line.startswith("a=mid:")}
    for line in lines[:first_media]:
        if line.startswith("a=group:BUNDLE"):
            missing = [tag for tag in line.split()[1:] if tag not in mids]
            if missing:
                raise ValueError(f"its BUNDLE group names sections it lacks: {missing[:5]}")
