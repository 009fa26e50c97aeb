"""The caller's WebRTC peer connection: offer checks, ICE configuration, answering, codec.

aiortc's SDP parser fails with whatever its asserts and lookups raise (aiortc-notes 4.1), so an offer is
checked for the basics first, and anything aiortc still rejects becomes a 400 or 422 here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import SessionDescription, candidate_from_sdp

from gateway.errors import GatewayError

log = logging.getLogger(__name__)

MAX_MEDIA_SECTIONS = 4
# Sample rate of the PCM each codec's encoder takes (G.722 runs at 16 kHz though its RTP clock says 8 kHz).
CODEC_RATES = {"opus": 48_000, "pcmu": 8_000, "pcma": 8_000, "g722": 16_000}
NO_PORT_RETRY_AFTER_S = 5


class OfferError(GatewayError):
    """An offer we cannot answer: 400 (malformed) or 422 (well-formed but unusable)."""


def check_offer(sdp: str) -> None:
    """Reject what is plainly not a usable audio offer, before aiortc parses it."""
    if not sdp.lstrip().startswith("v=0"):
        raise OfferError(400, "malformed_sdp", "the offer is not SDP (it must start with 'v=0')")
    kinds = re.findall(r"^m=(\w+) ", sdp, flags=re.MULTILINE)
    if not kinds:
        raise OfferError(400, "malformed_sdp", "the offer has no media sections")
    if len(kinds) > MAX_MEDIA_SECTIONS:
        raise OfferError(422, "too_many_media", f"the offer has {len(kinds)} media sections (at most 4)")
    audio = kinds.count("audio")
    if audio == 0:
        raise OfferError(422, "no_audio", "the offer has no audio section")
    if audio > 1:
        raise OfferError(422, "too_many_audio", "the offer has more than one audio section (one is supported)")



def rtc_configuration(ice_servers: Sequence[dict[str, Any]], relay_only: bool) -> RTCConfiguration:
    """No ICE servers unless configured: aiortc's default STUN lookup costs seconds where it is unreachable."""
    return RTCConfiguration(
        iceServers=[RTCIceServer(**server) for server in ice_servers],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL,
    )


async def apply_offer(pc: RTCPeerConnection, sdp: str) -> tuple[RTCRtpSender, str]:
    """Set the remote offer and answer audio send-receive; returns the audio sender (still without a track)
    and the codec it will use. Raises OfferError for what aiortc refuses."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except OperationError:
        raise OfferError(
            422, "no_common_codec", "none of the offered audio codecs is supported (opus, PCMU, PCMA, G722)"
        ) from None
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
    return audio.sender, _first_supported_codec(sdp)


def _first_supported_codec(sdp: str) -> str:
    """The codec aiortc will send with: the first offered one it supports, in the offer's order."""
    for media in SessionDescription.parse(sdp).media:
        if media.kind == "audio":
            for codec in media.rtp.codecs:
                name = codec.name.lower()
                if name in CODEC_RATES and (name != "opus" or codec.clockRate == 48_000):
                    return name
    raise OfferError(422, "no_common_codec", "no audio codec could be negotiated")


async def create_answer(pc: RTCPeerConnection) -> str:
    """Create and set the answer; returns its SDP (aiortc gathers every candidate first: no local trickle)."""
    await pc.setLocalDescription(await pc.createAnswer())
    sdp = pc.localDescription.sdp
    if "a=candidate:" not in sdp:  # every port of GATEWAY_ICE_PORT_RANGE in use, or no TURN relay reachable
        raise GatewayError(503, "no_media_port", "the gateway could not open a media port (its UDP port range is "
                           "all in use, or no TURN relay answered); try again later",
                           {"Retry-After": str(NO_PORT_RETRY_AFTER_S)})
    return sdp



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
