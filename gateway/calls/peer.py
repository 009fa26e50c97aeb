"""The caller's WebRTC peer connection: ICE configuration, applying an offer (the first, or a re-offer on
the same connection), answering, trickle ICE, and the RTP taps every gateway peer gets.

Anything aiortc rejects in an offer becomes a 400 or 422 here (the text checks are in sdp.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.exceptions import OperationError
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp

from gateway.calls.dtmf import Key
from gateway.calls.rtp import TalkspurtMarker, TelephoneEventTap
from gateway.calls.sdp import AudioPlan, OfferError, plan_audio, shape_answer
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

NO_PORT_RETRY_AFTER_S = 5


def rtc_configuration(ice_servers: Sequence[dict[str, Any]], relay_only: bool) -> RTCConfiguration:
    """No ICE servers unless configured: aiortc's default STUN lookup costs seconds where it is unreachable."""
    return RTCConfiguration(
        iceServers=[RTCIceServer(**server) for server in ice_servers],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL,
    )


async def apply_offer(pc: RTCPeerConnection, sdp: str) -> tuple[RTCRtpTransceiver, AudioPlan]:
    """Set the remote offer and answer audio send-receive; returns the audio transceiver (its sender still
    without a track on a first offer) and the plan. Raises OfferError for what aiortc refuses."""
    plan = plan_audio(sdp)
    if not pc.getTransceivers():  # a first offer: narrow the codecs before aiortc negotiates them
        pc.addTransceiver("audio", direction="sendrecv").setCodecPreferences(plan.preferences)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except OperationError:
        raise OfferError(422, "no_common_codec", "none of the offered audio codecs can be used on this call") from None
    except Exception as exc:  # asserts, KeyError, ValueError...: whatever the parser tripped on
        raise OfferError(400, "malformed_sdp", f"the offer could not be parsed ({type(exc).__name__}: {exc})") from None
    audio = None
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio" and audio is None:
            audio = transceiver
        else:
            transceiver.direction = "inactive"  # we only do audio; do not receive (and decode) video
    if audio is None:
        raise OfferError(422, "no_audio", "the offer has no audio section")
    audio.direction = "sendrecv"  # the track is set on the sender once the answer exists (see Call.attach)
    return audio, plan


async def create_answer(pc: RTCPeerConnection) -> str:
    """Create and set the answer; returns its SDP (aiortc gathers every candidate first: no local trickle)."""
    await pc.setLocalDescription(await pc.createAnswer())
    sdp = pc.localDescription.sdp
    if "a=candidate:" not in sdp:  # every port of GATEWAY_ICE_PORT_RANGE in use, or no TURN relay reachable
        raise GatewayError(503, "no_media_port", "the gateway could not open a media port (its UDP port range is "
                           "all in use, or no TURN relay answered); try again later",
                           {"Retry-After": str(NO_PORT_RETRY_AFTER_S)})
    return shape_answer(sdp)


def tap_audio(audio: RTCRtpTransceiver, plan: AudioPlan, on_key: Callable[[Key], None],
              talking: Callable[[], bool]) -> None:
    """DTMF in (when negotiated) and talkspurt marker bits out, on a newly answered peer connection (see rtp.py)."""
    if plan.telephone_event is not None:
        TelephoneEventTap(audio.receiver, plan.telephone_event, plan.clock_rate, on_key)
    TalkspurtMarker(audio.sender.transport, talking)


async def add_remote_candidates(pc: RTCPeerConnection, sdpfrag: str) -> int:
    """Trickle ICE (RFC 8840 sdpfrag): add each `a=candidate` line; returns how many were added."""
    mid = None
    added = 0
    for line in sdpfrag.splitlines():
        line = line.strip()
        if line.startswith("a=mid:"):
            mid = line[len("a=mid:"):]
        elif line.startswith("a=candidate:"):
            try:
                candidate = candidate_from_sdp(line[len("a=candidate:"):])
            except Exception:
                raise OfferError(400, "malformed_candidate", f"cannot parse {line[:80]!r}") from None
            candidate.sdpMid = mid
            candidate.sdpMLineIndex = 0 if mid is None else None
            await pc.addIceCandidate(candidate)
            added += 1
        elif line == "a=end-of-candidates":
            await pc.addIceCandidate(None)
    return added
