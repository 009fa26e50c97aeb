"""One phone call through the bridge: a SIP leg on a Janus handle, joined to one gateway call.

Janus carries the media between the phone (plain RTP) and the gateway (WebRTC) itself; the bridge carries only
signalling, so both legs are followed at once and whichever ends first ends the other: a BYE from the phone
becomes `DELETE /v1/calls/<id>`, an `ended` event from the gateway becomes a BYE carrying the reason. A key sent
as SIP INFO goes to the call's control endpoint; RFC 2833 keys travel in the RTP, which Janus relays.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.bridges.gateway_api import GatewayClient, GatewayRefused
from gateway.bridges.janus import JanusError, JanusEvent, JanusSession
from gateway.bridges.line import Handle
from gateway.bridges.sip import decline_code, dial_outcome, dtmf_from_info, inbound_metadata, reason_header
from gateway.bridges.tasks import Backoff, first_of

log = logging.getLogger(__name__)

EVENT_QUEUE = 256  # Janus events waiting for this call; a call gets a handful a second at most
CANCEL_WAIT_S = 5.0  # after cancelling an unanswered INVITE, how long Janus gets to confirm


class DialFailed(Exception):
    """A dial that did not become a call: `code` (busy, no_answer, rejected, gateway_refused...) and the SIP
    status when the far end gave one."""

    def __init__(self, code: str, message: str, sip_status: int | None = None, sip_reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sip_status = sip_status
        self.sip_reason = sip_reason


class PhoneCall:
    """Created by the bridge for an `incomingcall` (or a dial) on `handle`; `events` receives the handle's
    Janus events. The handle is free again when `run_*` returns."""

    def __init__(self, handle: Handle, janus: JanusSession, gateway: GatewayClient, lost_s: float) -> None:
        self.handle = handle
        self.call_id: str | None = None  # the gateway's
        self.sip_call_id: str | None = None
        self.ended_by: str | None = None  # "phone" | "gateway" | "media" | "janus" | "bridge"
        self.end_reason: str | None = None
        self.events: asyncio.Queue[JanusEvent] = asyncio.Queue(EVENT_QUEUE)
        self._janus = janus
        self._gateway = gateway
        self._lost_s = lost_s
        handle.call = self

    @property
    def label(self) -> str:
        return self.call_id or f"sip:{self.sip_call_id}"

    def deliver(self, event: JanusEvent) -> None:
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("call %s: Janus events are not being read; one dropped", self.label)

    async def run_inbound(self, event: JanusEvent) -> None:
        """Answer an `incomingcall`: the gateway answers Janus's offer, Janus answers the phone."""
        result = event.data.get("result", {})
        self.sip_call_id = event.data.get("call_id") or result.get("call_id")
        account = self.handle.line.account
        try:
            if not event.jsep or event.jsep.get("type") != "offer":
                log.warning("call %s: an INVITE without SDP; declined", self.label)
                await self._decline(488, {})
                return
            metadata = inbound_metadata(account.name, result, self.sip_call_id)
            profile = account.profile_for(metadata["dialled"])
            try:
                self.call_id, answer = await self._gateway.create_call(event.jsep["sdp"], profile, metadata)
            except GatewayRefused as refusal:
                code = decline_code(refusal)
                log.warning("call %s from %s: the gateway refused it (%s); declined with %d", self.label,
                            metadata["from"], refusal, code)
                await self._decline(code, {"Retry-After": refusal.retry_after} if refusal.retry_after else {})
                return
            log.info("call %s: %s -> %s on account %s (SIP Call-ID %s)", self.call_id, metadata["from"],
                     metadata["to"], account.name, self.sip_call_id)
            try:
                await self._janus.message(self.handle.id, {"request": "accept", "autoaccept_reinvites": True},
                                          {"type": "answer", "sdp": answer})
            except JanusError as exc:
                log.info("call %s: the phone is gone before the answer (%s)", self.call_id, exc)
                self.ended_by, self.end_reason = "phone", "cancelled"
                await self._end_gateway_call()
                return
            await self.follow()
        finally:
            self.handle.call = None

    async def run_outbound(self, uri: str, profile: str | None, metadata: dict[str, Any], headers: dict[str, str],
                           ring_s: float, answered: asyncio.Future[PhoneCall]) -> None:
        """Dial `uri` with the gateway's offer; `answered` learns the outcome (or a DialFailed), then the call
        runs as any other."""
        try:
            try:
                self.call_id, offer = await self._gateway.request_offer(profile, metadata)
            except GatewayRefused as refusal:
                raise DialFailed("gateway_refused", f"the gateway would not make the call: {refusal}") from None
            try:
                await self._janus.message(self.handle.id, {"request": "call", "uri": uri, "headers": headers,
                                                           "autoaccept_reinvites": True},
                                          {"type": "offer", "sdp": offer})
            except JanusError as exc:
                raise DialFailed("rejected", f"Janus would not place the call: {exc}") from None
            await self._ring(ring_s)
        except DialFailed as failure:
            self.ended_by, self.end_reason = "phone", failure.code
            log.info("call %s: dialling %s: %s", self.label, uri, failure.message)
            await self._end_gateway_call()
            answered.set_exception(failure)
            self.handle.call = None
            return
        except BaseException:  # cancelled: Janus went away, or the bridge is stopping
            answered.set_exception(DialFailed("not_ready", "the bridge lost Janus while dialling"))
            self.handle.call = None
            raise
        log.info("call %s: %s answered on account %s", self.call_id, uri, self.handle.line.account.name)
        answered.set_result(self)
        try:
            await self.follow()
        finally:
            self.handle.call = None

    async def _ring(self, ring_s: float) -> None:
        """Until the far end answers (its SDP answer handed to the gateway); DialFailed if it never does."""
        assert self.call_id is not None
        answer_given = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ring_s
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    event = await self.events.get()
            except TimeoutError:
                await self._end_phone_leg()  # CANCEL
                await self._wait_for_hangup()
                raise DialFailed("no_answer", f"no answer within {ring_s:.0f} s", 408, "Request Timeout") from None
            result = event.data.get("result", {}) if event.kind == "event" else {}
            name = result.get("event")
            if name == "hangup":
                status = int(result.get("code") or 0)
                raise DialFailed(dial_outcome(status), f"{status} {result.get('reason')}", status, result.get("reason"))
            if name in ("progress", "accepted") and event.jsep and not answer_given:
                try:
                    await self._gateway.answer(self.call_id, event.jsep["sdp"])
                except GatewayRefused as refusal:
                    await self._end_phone_leg()
                    raise DialFailed("gateway_refused", f"the gateway refused the answer: {refusal}") from None
                answer_given = True
            if name == "accepted":
                self.sip_call_id = event.data.get("call_id")
                return

    async def _wait_for_hangup(self) -> None:
        try:
            async with asyncio.timeout(CANCEL_WAIT_S):
                while True:
                    event = await self.events.get()
                    if event.kind == "event" and event.data.get("result", {}).get("event") == "hangup":
                        return
        except TimeoutError:
            log.warning("call %s: Janus did not confirm the cancelled INVITE", self.label)

    async def follow(self) -> None:
        """Both legs are up: run until either ends, then end the other."""
        first = await first_of(self._follow_phone(), self._follow_gateway())
        if first == 0:
            await self._end_gateway_call()
        else:
            await self._end_phone_leg()
        log.info("call %s: ended by the %s (%s)", self.label, self.ended_by, self.end_reason)

    async def hang_up(self, reason: str) -> None:
        """The bridge itself ends the call (it is shutting down): both legs."""
        self.ended_by, self.end_reason = "bridge", reason
        await self._end_phone_leg()
        await self._end_gateway_call()

    async def janus_lost(self) -> None:
        """Janus went away with the SIP leg: end the gateway call so nothing is left half-open there."""
        self.ended_by, self.end_reason = "janus", "janus_lost"
        await self._end_gateway_call()

    # ----- the phone's leg -----

    async def _follow_phone(self) -> None:
        while True:
            event = await self.events.get()
            result = event.data.get("result", {}) if event.kind == "event" else {}
            name = result.get("event")
            if name == "hangup":
                self.ended_by, self.end_reason = "phone", f"{result.get('code')} {result.get('reason')}"
                return
            if event.kind == "hangup":  # the WebRTC leg died (DTLS alert, ICE failed); Janus sends the BYE
                self.ended_by, self.end_reason = "media", str(event.data.get("reason"))
                return
            if name == "info":
                await self._relay_info(result)
            elif event.kind == "event" and "error_code" in event.data:
                log.warning("call %s: Janus: %s", self.label, event.data.get("error"))
            elif event.kind in ("webrtcup", "media", "slowlink", "event"):
                log.debug("call %s: Janus %s %s", self.label, event.kind, name or "")
            else:
                log.debug("call %s: Janus event %s ignored", self.label, event.kind)

    async def _relay_info(self, result: dict[str, Any]) -> None:
        key = dtmf_from_info(result.get("type"), result.get("content"))
        if key is None:
            log.info("call %s: SIP INFO %s ignored", self.label, result.get("type"))
            return
        digit, duration_ms = key
        assert self.call_id is not None
        try:
            await self._gateway.send_event(self.call_id, {"type": "dtmf", "digit": digit, "duration_ms": duration_ms})
        except GatewayRefused as refusal:
            log.warning("call %s: DTMF %s not delivered: %s", self.label, digit, refusal)

    async def _end_phone_leg(self) -> None:
        headers = reason_header(self.end_reason) if self.ended_by == "gateway" else {}
        try:
            await self._janus.message(self.handle.id, {"request": "hangup", "headers": headers})
        except JanusError as exc:
            log.debug("call %s: hangup: %s", self.label, exc)  # the leg was already gone

    async def _decline(self, code: int, headers: dict[str, str]) -> None:
        try:
            await self._janus.message(self.handle.id, {"request": "decline", "code": code, "headers": headers})
        except JanusError as exc:
            log.info("call %s: decline: %s", self.label, exc)

    # ----- the gateway's leg -----

    async def _follow_gateway(self) -> None:
        """Until the gateway says the call ended, or it is gone (404), or unreachable for `lost_s`."""
        assert self.call_id is not None
        backoff = Backoff()
        lost_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                async for event in self._gateway.events(self.call_id):
                    lost_since = None
                    backoff.reset()
                    if event.get("type") == "ended":
                        self.ended_by, self.end_reason = "gateway", str(event.get("reason"))
                        return
            except GatewayRefused as refusal:
                if refusal.status in (404, 410):
                    if refusal.code != "call_not_found":
                        await asyncio.Event().wait()  # a gateway without an events stream: the media path tells
                    self.ended_by, self.end_reason = "gateway", "call_not_found"
                    return
                lost_since = lost_since or loop.time()
                if loop.time() - lost_since > self._lost_s:
                    self.ended_by, self.end_reason = "gateway", "gateway_lost"
                    return
                log.info("call %s: the gateway's events stream: %s; retrying", self.label, refusal)
            await backoff.wait()

    async def _end_gateway_call(self) -> None:
        if self.call_id is None:
            return
        try:
            await self._gateway.hang_up(self.call_id)
        except GatewayRefused as refusal:
            log.warning("call %s: could not end the gateway call: %s", self.label, refusal)
