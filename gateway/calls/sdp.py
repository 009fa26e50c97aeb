"""Offers and answers as SDP text: what is checked before aiortc parses an offer, the codec chosen for it,
and the answer a phone stack expects: one audio codec (the one used), telephone-event when offered, one
fingerprint, `a=ptime:20`, Opus said to be mono.

aiortc's SDP parser fails with whatever its asserts and lookups raise (aiortc-notes 4.1), so an offer is
checked for the basics first. aiortc answers with every codec it shares with the offer, although it sends
with the first only, and lists three fingerprints; a bridge passes all those codecs on to the phone, and
warns on the fingerprints. The codecs are narrowed with codec preferences on the transceiver before the offer
is applied (aiortc filters the negotiated codecs by them then, and not later). The rest aiortc has no
setting for, so the answer's text is edited: it only describes what the gateway does anyway (20 ms frames,
mono audio, the sha-256 fingerprint of the certificate it uses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import MediaDescription, SessionDescription

from gateway.calls.rtp import TELEPHONE_EVENT
from gateway.errors import GatewayError

RTP_CLOCKS = {"opus": 48_000, "pcmu": 8_000, "pcma": 8_000, "g722": 8_000}
FRAME_MS = 20
OPUS_MONO = "stereo=0;sprop-stereo=0"  # the gateway's audio is mono both ways (RFC 7587 section 7.1)
HOLD_DIRECTIONS = ("sendonly", "inactive")  # the caller puts the gateway on hold (RFC 6337 section 5.3)


MAX_MEDIA_SECTIONS = 4


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


@dataclass(frozen=True)
class AudioPlan:
    """How the gateway answers an offer's audio section."""

    codec: str  # opus | g722 | pcmu | pcma: the offer's first one the gateway supports
    preferences: list[RTCRtpCodecCapability]  # for setCodecPreferences: that codec, then telephone-event
    telephone_event: int | None  # its payload type in the offer (None: not offered at the codec's clock)
    clock_rate: int  # the RTP clock of the codec, and of telephone-event beside it
    direction: str  # the offer's direction for audio

    @property
    def holds(self) -> bool:
        return self.direction in HOLD_DIRECTIONS


def plan_audio(offer_sdp: str) -> AudioPlan:
    """Choose the codec (the offer's first supported one, in the offer's order) and telephone-event."""
    try:
        media = next(m for m in SessionDescription.parse(offer_sdp).media if m.kind == "audio")
    except Exception as exc:  # asserts, KeyError, ValueError...: whatever the parser tripped on
        raise OfferError(400, "malformed_sdp", f"the offer could not be parsed ({type(exc).__name__}: {exc})") from None
    codec = _first_supported_codec(media)
    clock = RTP_CLOCKS[codec]
    events = [c.payloadType for c in media.rtp.codecs if c.name.lower() == TELEPHONE_EVENT and c.clockRate == clock]
    wanted = [codec] + ([TELEPHONE_EVENT] if events else [])
    capabilities = RTCRtpSender.getCapabilities("audio").codecs
    preferences = [c for name in wanted for c in capabilities if c.name.lower() == name and c.clockRate == clock]
    return AudioPlan(codec, preferences, events[0] if events else None, clock, media.direction or "sendrecv")


def _first_supported_codec(media: MediaDescription) -> str:
    for codec in media.rtp.codecs:
        name = codec.name.lower()
        if name in RTP_CLOCKS and codec.clockRate == RTP_CLOCKS[name]:
            return name
    raise OfferError(422, "no_common_codec", "none of the offered audio codecs is supported (opus, PCMU, PCMA, G722)")


def shape_answer(sdp: str) -> str:
    """aiortc's answer with one fingerprint (sha-256), `a=ptime:20` and mono Opus in its audio section."""
    lines: list[str] = []
    audio = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            audio = line.startswith("m=audio")
        elif line.startswith("a=fingerprint:") and not line.startswith("a=fingerprint:sha-256 "):
            continue
        lines.append(line)
        if audio and (opus := re.fullmatch(r"a=rtpmap:(\d+) opus/48000(/2)?", line, flags=re.IGNORECASE)):
            lines.append(f"a=fmtp:{opus[1]} {OPUS_MONO}")
        if audio and line.startswith("a=rtcp-mux"):
            lines.append(f"a=ptime:{FRAME_MS}")
    return "\r\n".join(lines) + "\r\n"
