"""Peer connections the gateway offers itself: for a phone a bridge dials out to.

A SIP call out needs an SDP offer before the phone rings (Janus's SIP plugin sends no offerless INVITE), and
the media must end at the gateway, so the gateway makes the offer and the bridge brings the phone's answer
back. The offer lists the profile's codecs in its order and telephone-event beside them; its text is shaped
like the gateway's answers (one fingerprint, 20 ms, mono Opus).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from gateway.calls.rtp import TELEPHONE_EVENT
from gateway.calls.sdp import RTP_CLOCKS, AudioPlan, OfferError, plan_audio, shape_answer


def offer_preferences(codecs: Sequence[str]) -> list[RTCRtpCodecCapability]:
    """The codecs in the profile's order, then telephone-event at each clock they use."""
    capabilities = RTCRtpSender.getCapabilities("audio").codecs
    chosen = [c for name in codecs for c in capabilities if c.name.lower() == name and c.clockRate == RTP_CLOCKS[name]]
    clocks = sorted({RTP_CLOCKS[name] for name in codecs}, reverse=True)
    events = [c for clock in clocks for c in capabilities if c.name.lower() == TELEPHONE_EVENT and c.clockRate == clock]
    return chosen + events


async def create_offer(pc: RTCPeerConnection, codecs: Sequence[str]) -> tuple[RTCRtpTransceiver, str]:
    """An audio send-receive offer on a new peer connection (every candidate gathered first)."""
    audio = pc.addTransceiver("audio", direction="sendrecv")
    audio.setCodecPreferences(offer_preferences(codecs))
    await pc.setLocalDescription(await pc.createOffer())
    return audio, shape_answer(pc.localDescription.sdp)


async def apply_answer(pc: RTCPeerConnection, answer_sdp: str) -> AudioPlan:
    """Set the far end's answer; returns the codec it chose (its first) and its telephone-event."""
    if not answer_sdp.lstrip().startswith("v=0"):
        raise OfferError(400, "malformed_sdp", "the answer is not SDP (it must start with 'v=0')")
    plan = plan_audio(answer_sdp)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
    except Exception as exc:  # aiortc's parser and checks raise whatever they trip on
        raise OfferError(422, "unusable_answer", f"the answer cannot be used ({type(exc).__name__}: {exc})") from None
    return plan
