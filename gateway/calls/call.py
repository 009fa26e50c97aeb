"""One call: a caller's peer connection (replaceable on resume), its Live session, and its lifecycle.

The data path reads as one walk: `Uplink` (caller track -> 16 kHz chunks) -> `LiveSession.send_audio`;
Live audio -> `Conversation.on_live_audio` -> `Downlink` (playout buffer + paced track) -> caller.
Everything the call starts runs in its own TaskGroup and ends with it, whatever ends the call.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from enum import StrEnum
from typing import Any, Callable, Coroutine

import numpy as np
from aiortc import MediaStreamTrack
from google import genai

from gateway.calls.conversation import Conversation
from gateway.calls.dtmf import Key, Source, key_from_message
from gateway.calls.events import EventChannel, text_of
from gateway.calls.handoff import MIGRATED, Handoff
from gateway.calls.leg import Leg
from gateway.calls.tools import ToolRelay
from gateway.config import Profile, Settings
from gateway.errors import GatewayError
from gateway.live.errors import LiveFatalError
from gateway.live.session import LiveSession
from gateway.media.downlink import Downlink
from gateway.media.encoding import ENCODER_RATES, EncodingTrack
from gateway.media.uplink import Uplink
from gateway.media.vad import EnergyVad, VadConfig, VadEventKind
from gateway.rtc import close_peer

log = logging.getLogger(__name__)

WATCH_PERIOD_S = 0.1
# At hang-up, time for the last events (an error, the reason) to reach the caller before the peer closes,
# including waiting for a data channel that is still opening when a call fails right after the answer.
LAST_EVENTS_S = 3.0


class CallState(StrEnum):
    OFFERED = "offered"  # the gateway made the offer (a bridge dials a phone); waiting for the answer
    CONNECTING = "connecting"  # answered; waiting for ICE/DTLS
    ACTIVE = "active"
    DETACHED = "detached"  # the caller is gone; a resume may attach a new peer connection
    ENDED = "ended"


class _Hangup(Exception):
    """Raised inside the call's TaskGroup to cancel everything it runs."""


class Call:
    def __init__(
        self,
        profile: Profile,
        settings: Settings,
        client: genai.Client,
        *,
        on_ended: Callable[[Call], None] = lambda call: None,
        clock: Callable[[], float] = time.monotonic,
        handoff: Handoff | None = None,
        resume_token: str | None = None,
    ) -> None:
        """A new call, or one that goes on from another replica's `handoff` (resumed with `resume_token`)."""
        self.id = handoff.call_id if handoff else secrets.token_urlsafe(12)
        self.profile = profile
        self.settings = settings
        self.resume_token = resume_token or secrets.token_urlsafe(24)
        self.state = CallState.CONNECTING
        self.created_at = time.time()
        self.ended_at: float | None = None
        self.end_reason: str | None = None
        self.metadata: dict[str, Any] = {}  # the caller's, from POST /v1/calls; shown by GET, never interpreted
        self.attachments = 0
        self._clock = clock
        self._started_at = clock()
        self._on_ended = on_ended
        handlers = {"text": self._on_text, "ping": self._on_ping, "tool_result": lambda e: self.tools.on_result(e),
                    "dtmf": self._on_dtmf, "hangup": lambda e: self.end("caller_hangup")}
        self.events = EventChannel(self.id, handlers, clock, settings.events_backlog)
        self.tools = ToolRelay(self.events, lambda responses: self.live.send_tool_responses(responses), clock)
        self.conversation = Conversation(
            self.events, self.tools, local_barge_in=profile.local_barge_in, ready_event=self._ready_event, clock=clock
        )
        self._caller_vad = EnergyVad(
            16_000,
            VadConfig(
                start_threshold_dbfs=profile.local_barge_in_threshold_dbfs,
                end_threshold_dbfs=profile.local_barge_in_threshold_dbfs - 5,
                start_ms=60,
                end_ms=300,
            ),
        )
        self.live = LiveSession(
            client,
            profile,
            self.id,
            self.conversation,
            retry_budget_s=settings.live_retry_budget_s,
            stall_s=settings.live_stall_s,
            caller_speaking=lambda: self._caller_vad.speaking,
        )
        self.leg: Leg | None = None
        self.downlink: Downlink | None = None
        self.attach_lock = asyncio.Lock()  # one offer at a time (a resume spends the token exactly once)
        self._tg: asyncio.TaskGroup | None = None
        self._running = asyncio.Event()
        self._ended = asyncio.Event()
        self._caller_spoke_at = self._started_at  # with the model's last audio, for the idle timeout
        self._grace_until: float | None = None
        if handoff is not None:
            self._go_on_from(handoff)

    def _go_on_from(self, handoff: Handoff) -> None:
        """Start as a detached call of another replica's: its conversation, waiting for the caller's resume."""
        self.created_at, self.metadata, self.attachments = handoff.created_at, dict(handoff.metadata), handoff.attachments
        self.live.restore(handoff.live_handle, handoff.transcript)
        self.events.history.restore(handoff.events)
        self.state = CallState.DETACHED
        self.conversation.muted = True
        self._grace_until = self._clock() + self.settings.caller_grace_s

    # ----- lifecycle -----

    async def run(self) -> None:
        """The call's whole life. Returns once it has ended and everything it started is gone."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._running.set()
                tg.create_task(self._run_live(), name=f"call-live-{self.id}")
                tg.create_task(self._watch(), name=f"call-watch-{self.id}")
                await self._ended.wait()
                raise _Hangup
        except* _Hangup:
            pass
        except* Exception:
            log.exception("call %s: failed", self.id)
            self.end_reason = self.end_reason or "internal_error"
        finally:
            await self._teardown()

    def end(self, reason: str) -> None:
        """End the call (idempotent); `run()` then tears everything down."""
        if self.end_reason is None:
            self.end_reason = reason
            log.info("call %s: ending (%s)", self.id, reason)
        self._ended.set()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def attach(self, offer_sdp: str) -> str:
        """Answer `offer_sdp` with a new peer connection for this call; returns the answer SDP.

        Used for the first offer and for a resume. Raises OfferError (and leaves the call as it was) if the
        offer cannot be answered.
        """
        leg = await self._new_leg(offer_sdp)
        sender, answer = await leg.answer(offer_sdp, lambda key: self._on_key(key, "rfc4733"), self._talking,
                                          clock=self._clock, call_id=self.id)
        # Only now, with an answer to give, touch the outbound audio: a failed offer leaves the call as it was.
        self._send_replies(sender, leg)
        previous, self.leg = self.leg, leg
        if previous is not None:
            self._spawn(close_peer(previous.pc), "close-previous-peer")
        self.events.detach()
        self.conversation.muted = False
        self.state = CallState.CONNECTING
        self._grace_until = None
        self.attachments += 1
        log.info("call %s: peer connection %d answered (%s)", self.id, self.attachments, leg.codec)
        return answer

    async def offer(self) -> str:
        """The gateway's own offer (a bridge dials a phone), the profile's codecs in order; see `take_answer`."""
        leg = await self._new_leg(None)
        offer = await leg.offer(self.profile.codecs)
        self.leg, self.state = leg, CallState.OFFERED
        return offer

    async def take_answer(self, answer_sdp: str) -> None:
        """The answer to `offer`: media starts (the connect timeout runs from now)."""
        leg = self.leg
        if self.state is not CallState.OFFERED or leg is None:
            raise GatewayError(409, "not_offered", "this call is not waiting for an answer")
        sender = await leg.take_answer(answer_sdp, lambda key: self._on_key(key, "rfc4733"), self._talking,
                                       clock=self._clock, call_id=self.id)
        self._send_replies(sender, leg)
        leg.created_at, self.state = self._clock(), CallState.CONNECTING
        self.attachments += 1
        log.info("call %s: the gateway's offer was answered (%s)", self.id, leg.codec)

    def _send_replies(self, sender: Any, leg: Leg) -> None:
        """Point `sender` at the replies, encoded from the rate the leg's negotiated codec wants."""
        sender.replaceTrack(EncodingTrack(self._outbound_track(ENCODER_RATES[leg.codec]), leg.codec))

    async def _new_leg(self, offer_sdp: str | None) -> Leg:
        await self._running.wait()
        leg = Leg.open(self.settings, offer_sdp, self._clock(), self.id)
        leg.pc.on("track", lambda track: self._on_track(leg, track))
        leg.pc.on("datachannel", lambda channel: self.leg is leg and self.events.attach(channel))
        leg.pc.on("connectionstatechange", lambda: self._on_connection_state(leg))
        return leg

    async def renegotiate(self, offer_sdp: str) -> str:
        """A new offer on the caller's current peer connection; returns the answer. A bridge sends one to put
        the call on hold (`a=sendonly` or `a=inactive`: the uplink to Live is muted, the call stays) and off."""
        async with self.attach_lock:
            leg = self.leg
            if self.ended or leg is None or self.state is CallState.DETACHED:
                raise GatewayError(409, "no_peer", "the call has no peer connection to renegotiate")
            was_on_hold = leg.on_hold
            answer = await leg.reoffer(offer_sdp)
        if leg.on_hold != was_on_hold:
            log.info("call %s: %s", self.id, "on hold" if leg.on_hold else "off hold")
            self.conversation.muted = leg.on_hold
            if leg.on_hold and self.downlink is not None:
                self.downlink.interrupt()  # nobody hears it; do not play a stale reply after the hold
        return answer

    def rotate_resume_token(self) -> None:
        """A resume spent the token: the next resume needs the new one."""
        self.resume_token = secrets.token_urlsafe(24)

    def _outbound_track(self, rate: int) -> MediaStreamTrack:
        if self.downlink is not None and self.downlink.out_rate == rate:
            return self.downlink.new_track()
        if self.downlink is not None:
            self.downlink.track.stop()
        self.downlink = self.conversation.downlink = Downlink(rate, call_id=self.id)
        return self.downlink.track

    def _detach(self, why: str) -> None:
        """The caller is gone: keep the conversation for a grace window in which it may resume."""
        if self.state in (CallState.DETACHED, CallState.ENDED) or self.leg is None:
            return
        log.info("call %s: caller detached (%s); %.0f s to resume", self.id, why, self.settings.caller_grace_s)
        self.state = CallState.DETACHED
        self._grace_until = self._clock() + self.settings.caller_grace_s
        self.events.detach()
        self.conversation.muted = True
        if self.downlink is not None:
            self.downlink.interrupt()  # nobody is listening; do not play stale audio on resume
        self._spawn(close_peer(self.leg.pc), "close-detached-peer")

    async def _teardown(self) -> None:
        self._tg = None
        detached = self.state is CallState.DETACHED
        self.state = CallState.ENDED
        self.ended_at = time.time()
        migrated = self.end_reason == MIGRATED  # the conversation goes on elsewhere: nothing has ended
        if not migrated:
            self.events.send({"type": "ended", "reason": self.end_reason})
        try:
            if self.leg is not None:
                # A bridge following the events stream gets the moment to end its leg itself, with the reason.
                if (self.leg.has_events or self.events.history.readers) and not detached and not migrated:
                    await self._deliver_last_events()
                await close_peer(self.leg.pc)
        finally:
            if self.downlink is not None:
                self.downlink.track.stop()
            log.info("call %s: ended (%s) after %.1f s", self.id, self.end_reason, self.duration_s)
            self._on_ended(self)

    async def _deliver_last_events(self) -> None:
        """Wait (bounded) until the events channel is open and has sent everything queued."""
        deadline = self._clock() + LAST_EVENTS_S
        while self._clock() < deadline:
            channel = self.events.channel
            if channel is not None and channel.readyState == "open" and self.events.backlog == 0:
                if channel.bufferedAmount == 0:
                    return
            elif self.leg is not None and self.leg.pc.connectionState in ("failed", "closed"):
                return
            await asyncio.sleep(0.02)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        assert self._tg is not None, "the call is not running"
        self._tg.create_task(coro, name=f"{name}-{self.id}")

    async def _run_live(self) -> None:
        try:
            await self.live.run()
        except LiveFatalError as exc:
            log.warning("call %s: %s", self.id, exc.message)
            self.events.error(exc.code, exc.message)
            self.end(exc.code)

    async def _watch(self) -> None:
        """Limits and liveness, checked a few times a second."""
        settings = self.settings
        while True:
            await asyncio.sleep(WATCH_PERIOD_S)
            now = self._clock()
            if now - self._started_at > settings.max_call_s:
                self.events.error("max_duration", f"calls are limited to {settings.max_call_s:.0f} s")
                self.end("max_duration")
            elif now - max(self._caller_spoke_at, self.conversation.last_model_audio_at) > settings.idle_timeout_s:
                self.events.error("idle_timeout", f"nothing was said for {settings.idle_timeout_s:.0f} s")
                self.end("idle_timeout")
            elif self.state is CallState.DETACHED and self._grace_until is not None and now > self._grace_until:
                self.end("caller_gone")
            elif self.state is CallState.OFFERED and self.leg and now - self.leg.created_at > settings.answer_timeout_s:
                self.end("no_answer")
            elif self.state is CallState.CONNECTING and self.leg and now - self.leg.created_at > settings.connect_timeout_s:
                if self.attachments == 1:
                    self.end("connect_timeout")
                else:
                    self._detach("resumed peer connection never connected")
            elif self.state is CallState.ACTIVE and await self._caller_silent_for(now) > settings.caller_silence_s:
                self._detach(f"nothing at all from the caller for {settings.caller_silence_s:.0f} s")
            self.tools.expire(now)
            self.conversation.refresh()

    async def _caller_silent_for(self, now: float) -> float:
        """How long nothing at all came from the caller: no packet of any kind, no data-channel message."""
        assert self.leg is not None
        return min(await self.leg.silent_for(now), now - self.events.last_activity)

    # ----- caller side -----

    def _on_connection_state(self, leg: Leg) -> None:
        state = leg.pc.connectionState
        if leg is not self.leg or self.ended:
            return
        if state == "connected" and self.state is CallState.CONNECTING:
            leg.connected_at = self._clock()
            self.state = CallState.ACTIVE
            log.info("call %s: media connected", self.id)
        elif state in ("failed", "closed") and self.state in (CallState.ACTIVE, CallState.CONNECTING):
            self._detach(f"peer connection {state}")

    def _on_track(self, leg: Leg, track: MediaStreamTrack) -> None:
        if track.kind != "audio" or leg.uplink is not None:
            log.info("call %s: ignoring %s track", self.id, track.kind)
            return
        leg.uplink = Uplink(track, self._on_caller_audio, call_id=self.id)
        self._spawn(leg.uplink.run(), "uplink")

    def _talking(self) -> bool:
        """Reply audio is being sent to the caller (the marker bit's talkspurts)."""
        return self.downlink is not None and self.downlink.buffer.playing

    def _on_caller_audio(self, pcm16: bytes, captured_at: float) -> None:
        """A chunk of caller audio, 16 kHz: to Live, and through the local VAD; nothing while on hold."""
        if self.leg is not None and self.leg.on_hold:
            return
        self.live.send_audio(pcm16, captured_at)
        for event in self._caller_vad.process(np.frombuffer(pcm16, dtype=np.int16)):
            if event.kind is VadEventKind.START:
                self.conversation.caller_started_speaking()
            else:
                self.live.expect_reply()
        if self._caller_vad.speaking:
            self._caller_spoke_at = self._clock()

    def _on_text(self, event: dict[str, Any]) -> None:
        self._send_text(text_of(event))

    def _on_dtmf(self, event: dict[str, Any]) -> None:
        self._on_key(key_from_message(event), "control")

    def _on_key(self, key: Key, source: Source) -> None:
        """A key the caller pressed, whichever way it came: one `dtmf` event, and the model told if wanted."""
        log.info("call %s: key %s (%s, %d ms)", self.id, key.digit, source, key.duration_ms)
        self.events.send(key.event(source))
        if self.profile.dtmf_to_model:
            self._send_text(key.as_text())

    def _send_text(self, text: str) -> None:
        if not self.live.send_text(text):
            self.events.error("busy", "too much input is waiting for the Live API; try again")
        self.live.expect_reply()
        self._caller_spoke_at = self._clock()

    def _on_ping(self, event: dict[str, Any]) -> None:
        self.events.send({"type": "pong", "id": event.get("id"), "time": time.time()})

    def _ready_event(self) -> dict[str, Any]:
        return {"type": "ready", "call_id": self.id, "profile": self.profile.name, "model": self.profile.model,
                "codec": self.leg.codec if self.leg else None, "resume_token": self.resume_token}

    @property
    def duration_s(self) -> float:
        return self._clock() - self._started_at
