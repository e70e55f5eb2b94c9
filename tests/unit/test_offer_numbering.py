"""The SFU's offers keep the numbering of the client's first offer: browsers
refuse a payload type or header extension id that changes meaning."""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCSessionDescription, sdp

from gortc.media import aiortc_hooks

# The shape of Chrome's numbering (opus 111, VP8 96 + rtx 97, H.264 102,
# ssrc-audio-level 1, sdes:mid 4), unlike aiortc's own (opus 96, VP8 97, mid 1).
CHROME_LIKE_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic: WMS *",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=rtpmap:111 opus/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 goog-remb",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:102 H264/90000",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "",
    ]
)


def _meanings(
    description: sdp.SessionDescription,
) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    types: dict[int, set[str]] = {}
    ids: dict[int, set[str]] = {}
    for media in description.media:
        for codec in media.rtp.codecs:
            assert codec.payloadType is not None
            types.setdefault(codec.payloadType, set()).add(f"{codec.mimeType}/{codec.clockRate}")
        for extension in media.rtp.headerExtensions:
            ids.setdefault(extension.id, set()).add(extension.uri)
    return types, ids


def test_the_client_s_numbers_are_kept_and_new_ones_do_not_collide() -> None:
    codecs, extensions = aiortc_hooks.numbering_of(CHROME_LIKE_OFFER)
    video = [(c.mimeType, c.payloadType) for c in codecs["video"] if c.mimeType != "video/rtx"]
    assert [pt for mime, pt in video if mime == "video/VP8"] == [96]
    assert 102 in [pt for mime, pt in video if mime == "video/H264"]  # the client's H.264
    assert {c.payloadType for c in codecs["audio"] if c.mimeType == "audio/opus"} == {111}
    assert {x.uri: x.id for x in extensions["video"]}["urn:ietf:params:rtp-hdrext:sdes:mid"] == 4
    taken = {0, 8, 9, 96, 97, 102, 111}
    added = [c.payloadType for kind in codecs.values() for c in kind]
    assert len(added) == len(set(added))  # one meaning per number, across kinds
    for codec in codecs["video"]:
        if codec.mimeType == "video/rtx":
            assert codec.parameters["apt"] in {c.payloadType for c in codecs["video"]}
    assert all(pt in taken or pt >= 96 for pt in added)


async def test_a_renegotiation_offer_keeps_what_the_client_numbered() -> None:
    pc = RTCPeerConnection()
    try:
        await pc.setRemoteDescription(RTCSessionDescription(CHROME_LIKE_OFFER, "offer"))
        numbering = aiortc_hooks.numbering_of(CHROME_LIKE_OFFER)
        await pc.setLocalDescription(await pc.createAnswer())
        pc.addTransceiver("video", direction="sendonly")
        pc.addTransceiver("audio", direction="sendonly")
        with aiortc_hooks.offer_numbering(numbering):
            offer = await pc.createOffer()
        types, ids = _meanings(sdp.SessionDescription.parse(offer.sdp))
        assert all(len(meanings) == 1 for meanings in types.values()), types
        assert all(len(uris) == 1 for uris in ids.values()), ids
        assert types[111] == {"audio/opus/48000"}
        assert types[96] == {"video/VP8/90000"}
        assert ids[4] == {"urn:ietf:params:rtp-hdrext:sdes:mid"}
        assert ids[1] == {"urn:ietf:params:rtp-hdrext:ssrc-audio-level"}
        # Without it, aiortc renumbers the client's sections (what Chrome refuses).
        plain = await pc.createOffer()
        types, ids = _meanings(sdp.SessionDescription.parse(plain.sdp))
        assert any(len(uris) > 1 for uris in ids.values()) or 111 not in types
    finally:
        await pc.close()
