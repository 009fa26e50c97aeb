"""The codec chosen for an offer, and the answer's text as a phone stack expects it."""

from __future__ import annotations

import pytest

from gateway.calls.rtp import register_telephone_event
from gateway.calls.sdp import OfferError, plan_audio, shape_answer

register_telephone_event()

OFFER = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE audio
m=audio 9 UDP/TLS/RTP/SAVPF {formats}
c=IN IP4 127.0.0.1
a={direction}
a=mid:audio
a=rtcp-mux
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
a=setup:actpass
"""


def offer(*rtpmaps: str, direction: str = "sendrecv") -> str:
    """An audio offer listing `rtpmaps` ("0 PCMU/8000", ...) in that order."""
    formats = " ".join(rtpmap.split()[0] for rtpmap in rtpmaps)
    return OFFER.format(formats=formats, direction=direction) + "".join(f"a=rtpmap:{r}\n" for r in rtpmaps)


# What Janus's SIP plugin offers for a phone that speaks G.711 and sends RFC 4733 keys.
JANUS_LIKE = offer("0 PCMU/8000", "8 PCMA/8000", "9 G722/8000", "111 opus/48000/2", "101 telephone-event/8000")


def test_the_offers_first_codec_is_chosen_with_telephone_event_at_its_clock_rate() -> None:
    plan = plan_audio(JANUS_LIKE)
    assert (plan.codec, plan.telephone_event, plan.clock_rate) == ("pcmu", 101, 8000)
    assert [(c.name.lower(), c.clockRate) for c in plan.preferences] == [("pcmu", 8000), ("telephone-event", 8000)]
    assert not plan.holds


def test_beside_opus_only_telephone_event_at_48_khz_is_taken() -> None:
    both = offer("111 opus/48000/2", "110 telephone-event/48000", "126 telephone-event/8000")
    assert (plan_audio(both).codec, plan_audio(both).telephone_event) == ("opus", 110)
    narrow_only = offer("111 opus/48000/2", "126 telephone-event/8000")
    plan = plan_audio(narrow_only)
    assert plan.telephone_event is None and [c.name for c in plan.preferences] == ["opus"]


@pytest.mark.parametrize("direction", ["sendonly", "inactive"])
def test_an_offer_that_sends_only_or_nothing_puts_the_gateway_on_hold(direction: str) -> None:
    assert plan_audio(offer("0 PCMU/8000", direction=direction)).holds


def test_an_offer_without_a_supported_codec_is_refused_with_422() -> None:
    with pytest.raises(OfferError) as refused:
        plan_audio(offer("18 G729/8000"))
    assert (refused.value.status, refused.value.code) == (422, "no_common_codec")


def test_the_answer_keeps_one_fingerprint_and_says_20_ms_and_mono_opus() -> None:
    answer = shape_answer(
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96 110\r\na=rtcp-mux\r\na=rtpmap:96 opus/48000/2\r\n"
        "a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-15\r\n"
        "a=fingerprint:sha-256 AA\r\na=fingerprint:sha-384 BB\r\na=fingerprint:sha-512 CC\r\n"
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=rtcp-mux\r\na=fingerprint:sha-512 CC\r\n"
    )
    lines = answer.splitlines()
    assert [line for line in lines if line.startswith("a=fingerprint")] == ["a=fingerprint:sha-256 AA"]
    assert lines.count("a=ptime:20") == 1 and "a=fmtp:96 stereo=0;sprop-stereo=0" in lines
    assert answer.endswith("\r\n")
