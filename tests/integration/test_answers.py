"""Answers a phone stack expects: one codec and telephone-event, one fingerprint, 20 ms, and marker bits only
where a talkspurt begins (captured at the caller)."""

from __future__ import annotations

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.sdp import SessionDescription

from gateway.client.signals import speech_like
from tests.fixtures import Gateway
from tests.integration.phone import Captured, capture_rtp
from tests.integration.test_call import say_and_hear_reply

# A bridge's offer for a phone: G.711 first, then the rest, and telephone-event at both clocks.
PHONE_ORDER = [("pcmu", 8000), ("pcma", 8000), ("g722", 8000), ("opus", 48_000),
               ("telephone-event", 8000), ("telephone-event", 48_000)]
# Opus first, but telephone-event at the other clock listed first.
OPUS_ORDER = [("opus", 48_000), ("pcmu", 8000), ("telephone-event", 8000), ("telephone-event", 48_000)]
MULAW_SILENCE = 0xFF  # mu-law of a zero sample


@pytest.mark.parametrize(("order", "formats", "expected"), [
    (PHONE_ORDER, "0 8 9 96 126 110", [("PCMU", 8000, 0), ("telephone-event", 8000, 126)]),
    (OPUS_ORDER, "96 0 126 110", [("opus", 48_000, 96), ("telephone-event", 48_000, 110)]),
], ids=["phone", "opus"])
async def test_an_offer_of_many_codecs_is_answered_with_its_first_one_telephone_event_and_one_fingerprint(
    gateway: Gateway, no_leaks: None, order: list[tuple[str, int]], formats: str, expected: list[tuple[str, int, int]]
) -> None:
    pc = RTCPeerConnection()
    capabilities = RTCRtpSender.getCapabilities("audio").codecs
    pc.addTransceiver("audio").setCodecPreferences(
        [c for name, rate in order for c in capabilities if c.name.lower() == name and c.clockRate == rate])
    try:
        await pc.setLocalDescription(await pc.createOffer())
        assert f" {formats}\r\n" in pc.localDescription.sdp
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{gateway.url}/whip", data=pc.localDescription.sdp,
                                 headers={"Content-Type": "application/sdp"}) as response:
                assert response.status == 201
                answer = await response.text()
                location = response.headers["Location"]
            (audio,) = SessionDescription.parse(answer).media
            assert [(c.name, c.clockRate, c.payloadType) for c in audio.rtp.codecs] == expected
            lines = answer.splitlines()
            assert [line.split()[0] for line in lines if line.startswith("a=fingerprint")] == ["a=fingerprint:sha-256"]
            assert "a=ptime:20" in lines
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            async with http.delete(f"{gateway.url}{location}") as response:
                assert response.status == 204
    finally:
        await pc.close()


def silent(packet: Captured) -> bool:
    return all(byte == MULAW_SILENCE for byte in packet.payload)


async def test_the_marker_bit_is_set_on_the_first_packet_of_each_talkspurt_only(gateway: Gateway, make_caller) -> None:
    caller = make_caller(codec="pcmu")  # G.711: silence can be read straight from the payload
    await caller.connect()
    packets = capture_rtp(caller.pc)
    await caller.wait_for("ready")
    await caller.connected.wait()
    await say_and_hear_reply(caller, speech_like(0.8, seed=91))
    playout = gateway.calls.get(caller.call_id).downlink.stats()

    marked = [i for i, packet in enumerate(packets) if packet.marker]
    assert playout["replies"] == 1
    talkspurts = 1 + playout["replies"] + playout["underruns"]
    # A pause in sending (the loop late by 100 ms under load, which the paced track counts as a resync) is one too.
    assert talkspurts <= len(marked) <= talkspurts + playout["resyncs"], f"marked packets {marked}"
    assert marked[0] == 0, "the stream's first packet starts a talkspurt"
    voiced = next(i for i, packet in enumerate(packets) if not silent(packet))
    reply = max(i for i in marked if i <= voiced)
    assert voiced - reply < 25, f"the reply's first audio (packet {voiced}) should follow a mark closely: {marked}"
