"""One peer connection of a call (the first, or one attached by a resume): answered, tapped and watched.

A call outlives its legs: a resume replaces the leg and keeps the conversation. A leg knows its codec,
whether the caller has put it on hold, and when anything was last heard from its peer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver

from gateway.calls.dtmf import Key
from gateway.calls.liveness import PeerLiveness
from gateway.calls.outbound import apply_answer, create_offer
from gateway.calls.peer import apply_offer, create_answer, rtc_configuration, tap_audio
from gateway.config import Settings
from gateway.media.uplink import Uplink
from gateway.rtc import close_peer
from gateway.turn import gateway_ice_servers


@dataclass
class Leg:
    pc: RTCPeerConnection
    created_at: float
    has_events: bool  # the offer negotiated a data channel
    codec: str = ""
    liveness: PeerLiveness | None = None  # once answered
    connected_at: float | None = None
    uplink: Uplink | None = None
    on_hold: bool = False  # a re-offer said sendonly or inactive: the caller put the gateway on hold
    offered: RTCRtpTransceiver | None = None  # the gateway offered this leg: its audio, until the answer

    @classmethod
    def open(cls, settings: Settings, offer_sdp: str | None, now: float, call_id: str) -> Leg:
        """A new peer connection for `offer_sdp` (None: one the gateway offers), with this call's own TURN
        credentials; set its event handlers, then `answer` (or `offer`)."""
        ice_servers = gateway_ice_servers(settings, call_id)
        pc = RTCPeerConnection(rtc_configuration(ice_servers, settings.ice_relay_only))
        return cls(pc=pc, created_at=now, has_events=offer_sdp is not None and "m=application" in offer_sdp)

    async def offer(self, codecs: Sequence[str]) -> str:
        """The gateway's offer for this leg (audio only, `codecs` in order); `take_answer` completes it."""
        try:
            self.offered, offer = await create_offer(self.pc, codecs)
        except BaseException:
            await close_peer(self.pc)
            raise
        return offer

    async def take_answer(self, answer_sdp: str, on_key: Callable[[Key], None], talking: Callable[[], bool], *,
                          clock: Callable[[], float], call_id: str) -> RTCRtpSender:
        """The far end's answer to `offer`: the audio sender (no track yet). Raises OfferError if unusable."""
        assert self.offered is not None
        plan = await apply_answer(self.pc, answer_sdp)
        self.codec = plan.codec
        self.liveness = PeerLiveness(self.pc, clock, call_id)
        tap_audio(self.offered, plan, on_key, talking)
        return self.offered.sender

    async def answer(self, offer_sdp: str, on_key: Callable[[Key], None], talking: Callable[[], bool], *,
                     clock: Callable[[], float], call_id: str) -> tuple[RTCRtpSender, str]:
        """Answer the offer: the audio sender (no track yet) and the answer SDP. Raises OfferError, with the
        peer connection closed, if the offer cannot be answered."""
        try:
            audio, plan = await apply_offer(self.pc, offer_sdp)
            answer = await create_answer(self.pc)
        except BaseException:
            await close_peer(self.pc)
            raise
        self.codec = plan.codec
        self.liveness = PeerLiveness(self.pc, clock, call_id)
        tap_audio(audio, plan, on_key, talking)
        return audio.sender, answer

    async def reoffer(self, offer_sdp: str) -> str:
        """Apply a new offer on this peer connection and return the answer; `on_hold` follows its direction."""
        _, plan = await apply_offer(self.pc, offer_sdp)
        answer = await create_answer(self.pc)
        self.on_hold = plan.holds
        return answer

    async def silent_for(self, now: float) -> float:
        """How long no packet of any kind came from the peer (data-channel messages are the call's to add)."""
        assert self.connected_at is not None and self.liveness is not None
        await self.liveness.poll()
        return now - max(self.connected_at, self.liveness.heard_at)
