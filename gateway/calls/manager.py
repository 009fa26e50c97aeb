"""The session manager: every call of this process, from offer to hang-up, the limits around them, and the
calls remembered for a while after they end."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from google import genai

from gateway.calls import report
from gateway.calls.call import Call, CallState
from gateway.calls.ended import EndedCall, EndedCalls
from gateway.calls.handoff import MIGRATED, Handoff, handoff_of
from gateway.calls.rtp import register_telephone_event
from gateway.calls.sdp import check_offer
from gateway.config import Settings
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5


class CallManager:
    """Owns every call task: each is awaited on hang-up and on shutdown, so none outlives the app."""

    def __init__(self, settings: Settings, client: genai.Client) -> None:
        self.settings = settings
        self._client = client
        self._calls: dict[str, Call] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.draining = False
        self.ended_by_reason: Counter[str] = Counter()
        self.created_total = 0
        self._ended_counters: Counter[str] = Counter()
        self.ended = EndedCalls(settings.ended_calls, settings.ended_call_s)
        register_telephone_event()  # process-wide: aiortc learns telephone-event (see calls/rtp.py)

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._calls.values()))

    @property
    def accepting(self) -> bool:
        return not self.draining and len(self._calls) < self.settings.max_calls

    def holds(self, call_id: str) -> bool:
        """Is this call in progress here?"""
        call = self._calls.get(call_id)
        return call is not None and not call.ended

    def get(self, call_id: str) -> Call:
        """A call in progress; 404 for one that ended (even if remembered) or never existed."""
        call = self._calls.get(call_id)
        if call is None or call.ended:
            raise GatewayError(404, "call_not_found", f"no call {call_id!r} (it ended or never existed)")
        return call

    def lookup(self, call_id: str) -> Call | EndedCall:
        """A call in progress (or ending), or one remembered after its end; 404 for any other."""
        call = self._calls.get(call_id) or self.ended.get(call_id)
        if call is None:
            raise GatewayError(404, "call_not_found", f"no call {call_id!r} (it never existed, or ended long ago)")
        return call

    async def create(self, offer_sdp: str | None, profile_name: str | None) -> tuple[Call, str]:
        """A new call answering `offer_sdp`, returned with the answer SDP; or, with no offer, one whose peer
        connection the gateway offers (a phone a bridge dials), returned with the offer (see `take_answer`)."""
        if offer_sdp is not None:
            check_offer(offer_sdp)
        self._check_capacity()
        name = profile_name or "default"
        profile = self.settings.profiles.get(name)
        if profile is None:
            raise GatewayError(400, "unknown_profile", f"no profile {name!r}; see GET /v1/profiles")
        call = Call(profile, self.settings, self._client, on_ended=self._forget)
        self._calls[call.id] = call
        self._tasks[call.id] = asyncio.create_task(call.run(), name=f"call-{call.id}")
        try:
            async with call.attach_lock:
                sdp = await call.attach(offer_sdp) if offer_sdp is not None else await call.offer()
        except BaseException:
            call.end("bad_offer")
            await self._finish(call.id)
            raise
        self.created_total += 1
        return call, sdp

    async def take_answer(self, call_id: str, answer_sdp: str) -> Call:
        """The far end's answer to a call the gateway offered."""
        call = self.get(call_id)
        async with call.attach_lock:
            await call.take_answer(answer_sdp)
        return call

    async def resume(self, call_id: str, token: str, offer_sdp: str) -> tuple[Call, str]:
        """Attach a new peer connection to a call in its grace window; spends the token, returns a new one."""
        check_offer(offer_sdp)
        call = self.get(call_id)
        async with call.attach_lock:
            if call.ended:
                raise GatewayError(404, "call_not_found", f"call {call_id!r} has ended")
            if not hmac.compare_digest(call.resume_token.encode(), token.encode()):
                raise GatewayError(403, "bad_resume_token", "the resume token is not valid for this call")
            if call.state is CallState.DETACHED:
                log.info("call %s: resuming", call.id)
            answer = await call.attach(offer_sdp)
            call.rotate_resume_token()
        return call, answer

    async def adopt(self, handoff: Handoff, token: str, offer_sdp: str,
                    claim: Callable[[], Awaitable[Handoff | None]]) -> Call:
        """Go on here with another replica's call (that replica is gone or draining), detached until the
        caller's resume (with `token` and `offer_sdp`) attaches to it.

        Everything that could refuse the resume is checked before `claim()` makes this replica the call's
        owner (it raises if another replica won, and may return a fresher handoff from the old owner).
        """
        check_offer(offer_sdp)
        if not handoff.accepts(token):
            raise GatewayError(403, "bad_resume_token", "the resume token is not valid for this call")
        self._check_capacity()
        profile = self.settings.profiles.get(handoff.profile)
        if profile is None:
            raise GatewayError(409, "unknown_profile", f"the call's profile {handoff.profile!r} is not known here")
        handoff = await claim() or handoff
        call = Call(profile, self.settings, self._client, on_ended=self._forget, handoff=handoff, resume_token=token)
        self._calls[call.id] = call
        self._tasks[call.id] = asyncio.create_task(call.run(), name=f"call-{call.id}")
        log.info("call %s: taken over from another replica", call.id)
        return call

    def handoffs(self) -> dict[str, Handoff]:
        """What another replica would need to go on with each call here, until it is over (remembered as
        ended, or taken over by another replica)."""
        return {call.id: handoff_of(call) for call in self._calls.values() if call.end_reason != MIGRATED}

    def lost(self, call_id: str) -> Call | None:
        """Another replica owns this call now: stop it here, without telling anyone it `ended`."""
        call = self._calls.get(call_id)
        if call is None or call.ended:
            return None
        call.end(MIGRATED)
        call.events.history.cut_off()  # its event streams end here; their readers find it on its new replica
        return call

    async def release(self, call_id: str) -> Handoff | None:
        """Another replica takes this call over: stop it here and give its final handoff."""
        call = self.lost(call_id)
        if call is None:
            return None
        await self._finish(call_id)
        return handoff_of(call, with_events=True)

    async def renegotiate(self, call_id: str, offer_sdp: str) -> tuple[Call, str]:
        """A new offer on a call's current peer connection (hold and its end); returns the answer SDP."""
        check_offer(offer_sdp)
        call = self.get(call_id)
        return call, await call.renegotiate(offer_sdp)

    async def hang_up(self, call_id: str, reason: str = "hangup") -> None:
        """End a call and wait until everything it held is released; a call that already ended stays so."""
        call = self.lookup(call_id)
        if isinstance(call, Call):
            call.end(reason)
            await self._finish(call_id)

    async def drain(self, timeout_s: float, cut_short: asyncio.Event | None = None) -> None:
        """Stop taking calls; give those in progress up to `timeout_s` to end (less once `cut_short` is set),
        then end the rest with `server_shutdown`. The calls stay fully served meanwhile."""
        self.draining = True
        calls = list(self._tasks.values())
        if calls:
            log.info("draining: %d calls in progress, waiting up to %.0f s", len(calls), timeout_s)
            waits = [asyncio.ensure_future(asyncio.wait(calls))]
            if cut_short is not None:
                waits.append(asyncio.ensure_future(cut_short.wait()))
            try:
                await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            if self._calls:
                log.info("drain over: ending %d call(s)", len(self._calls))
        await self.close()

    async def close(self) -> None:
        """End every call and wait for all of them."""
        for call in list(self._calls.values()):
            call.end("server_shutdown")
        await asyncio.gather(*(self._finish(call_id) for call_id in list(self._tasks)))

    def totals(self) -> Counter[str]:
        """Counters summed over every call this process has had (for /metrics)."""
        totals = Counter(self._ended_counters)
        for call in self._calls.values():
            totals.update(report.counters(call))
        return totals

    def _check_capacity(self) -> None:
        if self.draining:
            raise GatewayError(503, "draining", "this gateway is shutting down; try another",
                               {"Retry-After": str(RETRY_AFTER_S)})
        if len(self._calls) >= self.settings.max_calls:
            raise GatewayError(503, "at_capacity", f"this gateway is at its limit of {self.settings.max_calls} calls",
                               {"Retry-After": str(RETRY_AFTER_S)})

    async def _finish(self, call_id: str) -> None:
        task = self._tasks.get(call_id)
        if task is not None:
            await asyncio.shield(task)

    def _forget(self, call: Call) -> None:
        self._calls.pop(call.id, None)
        self._tasks.pop(call.id, None)
        self.ended_by_reason[call.end_reason or "unknown"] += 1
        self._ended_counters.update(report.counters(call))
        if call.end_reason != MIGRATED:  # a call another replica took over has not ended
            snapshot = report.snapshot(call)
            self.ended.remember(call.id, snapshot, tuple(call.events.history.messages), call.resume_token)
