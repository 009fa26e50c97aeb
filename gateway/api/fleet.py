"""Fleet mode's HTTP side: any replica answers for any call.

A follow-up (GET, DELETE or PATCH of `/v1/calls/<id>`, its `/events`, or a resume) for a call this replica
holds is answered here, as without a fleet. For another replica's call, the registry names the owner:
- the owner is up: the request is forwarded to it and its answer streamed back;
- the owner is gone (its heartbeat expired), or drains, and this is a resume: this replica takes the call over
  (atomically), the Live session resumes from the stored handle, and the resume is answered here;
- the owner is gone and this is not a resume: GET shows the call as `detached` (waiting for its caller), DELETE
  ends it, anything else gets `409 call_detached`.
A draining replica forwards the resumes of its own calls to the least loaded peer, which takes them over.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from gateway.api.errors import Handler
from gateway.api.events import send_history
from gateway.api.keys import CALLS, FLEET
from gateway.calls.call import Call
from gateway.calls.handoff import Handoff
from gateway.calls.history import EventHistory
from gateway.calls.manager import CallManager
from gateway.errors import GatewayError
from gateway.fleet.forward import OwnerUnreachable
from gateway.fleet.member import CallsView, FleetMember
from gateway.fleet import FleetUnavailable
from gateway.fleet.registry import REPLICA_TTL_S, CallRecord

log = logging.getLogger(__name__)

REPLICA_HEADER = "X-Gateway-Replica"  # on every answer: which replica gave it
RETRY_AFTER_S = 2
GONE_POLL_S = 0.25
MIGRATE_EVENT = "migrate"

routes = web.RouteTableDef()
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def calls_view(calls: CallManager) -> CallsView:
    """What the fleet member sees of this replica's calls."""

    def history(call_id: str) -> EventHistory:
        call = calls.lookup(call_id)  # one of `handoffs()`: here, if perhaps ending
        assert isinstance(call, Call)
        return call.events.history

    def final(call_id: str) -> tuple[dict[str, Any], tuple[str, ...]] | None:
        ended = calls.ended.get(call_id)
        return (ended.snapshot, ended.messages) if ended else None

    return CallsView(handoffs=lambda: {call_id: h.to_json() for call_id, h in calls.handoffs().items()},
                     events_sent=lambda call_id: history(call_id).added,
                     newest_events=lambda call_id, count: history(call_id).newest(count),
                     final=final, lost=calls.lost, load=lambda: (len(calls), calls.draining))


async def announce_drain(member: FleetMember, calls: CallManager, drain_s: float) -> None:
    """Tell every caller to resume elsewhere: the resume reaches a replica that takes the call over. The
    registry hears that this replica drains first, so that the others know they may take its calls."""
    try:
        await member.heartbeat()
    except FleetUnavailable as exc:
        log.warning("fleet: cannot say that this replica drains (%s); its calls stay here", exc.reason)
        return
    for call in calls:
        call.events.send({"type": MIGRATE_EVENT, "reason": "draining", "within_s": drain_s})


async def mark_replica(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: a forwarded answer keeps the owner's name."""
    response.headers.setdefault(REPLICA_HEADER, request.app[FLEET].id)


def fleet_routing(check_access: Middleware) -> Middleware:
    """The middleware, placed before `check_access`: a forwarded request is checked by the replica that answers
    it, and what this replica answers from the registry itself is checked here with `check_access`."""

    @web.middleware
    async def route(request: web.Request, handler: Handler) -> web.StreamResponse:
        member, calls = request.app[FLEET], request.app[CALLS]
        target = await _follow_up(request)
        if target is None:
            response = await handler(request)
            if response.status == 201 and (location := response.headers.get("Location", "")).startswith("/v1/calls/"):
                await member.publish(location.removeprefix("/v1/calls/"))  # a new call: known fleet-wide at once
            return response
        call_id, resume = target
        hop = member.forwarder.is_hop(request)
        if not calls.holds(call_id):
            return await _elsewhere(request, handler, check_access, call_id, resume=resume, hop=hop)
        if resume and calls.draining and not hop and (peer := await _peer(member)) is not None:
            handed_over = _count(member, "handed_over")
            return await member.forwarder.forward(request, peer.url, streaming=False, answered=handed_over)
        member.requests["received" if hop else "local"] += 1
        return await _answered(request, handler, member, call_id)

    return route


async def _elsewhere(request: web.Request, handler: Handler, check_access: Middleware, call_id: str,
                     *, resume: bool, hop: bool) -> web.StreamResponse:
    """A follow-up of a call this replica does not hold: forwarded, taken over, or answered from the registry."""
    member, calls = request.app[FLEET], request.app[CALLS]
    for _ in range(3):  # the record may change under us (another replica wins a takeover): look again
        record = await _lookup(member, call_id)
        if record is None or record.owner_id == member.id or hop and not resume:
            return await handler(request)  # unknown here too (or just ended here): the handler answers
        if record.ended is not None:
            return await check_access(request, lambda r: _ended(r, member, record))
        owner = record.owner
        if owner is not None and not (resume and owner.draining):
            if hop:
                return await handler(request)  # never a second hop
            try:
                return await member.forwarder.forward(request, owner.url, streaming=_streams(request),
                                                      answered=_count(member, "forwarded"))
            except OwnerUnreachable as exc:
                log.warning("call %s: its replica %s does not answer (%s)", call_id, owner.id, exc)
                await _wait_until_gone(member, record)
                continue
        if not resume:
            try:
                return await check_access(request, lambda r: _orphan(r, member, record))
            except _Lost:  # it changed hands meanwhile
                continue
        if await _take_over(request, member, calls, record):
            return await _answered(request, handler, member, call_id)
    raise GatewayError(503, "fleet_busy", "the call moved between replicas while this request was routed",
                       {"Retry-After": str(RETRY_AFTER_S)})


@routes.post("/fleet/v1/calls/{call_id}/release")
async def release(request: web.Request) -> web.StreamResponse:
    """Internal: another replica takes this call over; stop it here and hand over its final state."""
    if FLEET not in request.app or not request.app[FLEET].forwarder.is_hop(request):
        raise GatewayError(403, "forbidden", "only another replica of this fleet may ask for a call")
    handoff = await request.app[CALLS].release(request.match_info["call_id"])
    if handoff is None:
        raise GatewayError(404, "call_not_found", "this replica does not hold that call")
    return web.json_response(handoff.to_json())


async def _answered(request: web.Request, handler: Handler, member: FleetMember, call_id: str) -> web.StreamResponse:
    response = await handler(request)
    if request.method == "POST" and response.status == 201:
        await member.publish(call_id)  # the new resume token's hash, before the caller can use it elsewhere
    return response


async def _take_over(request: web.Request, member: FleetMember, calls: CallManager, record: CallRecord) -> bool:
    """Make this replica the call's owner for the resume in `request`; False if another replica won."""
    resume = await _resume_of(request)
    if resume is None or record.handoff is None:
        return True  # malformed, or nothing to go on from: the handler gives the answer (400 or 404)
    token, offer = resume
    try:
        handoff = Handoff.from_json(record.handoff)
    except ValueError as exc:
        log.warning("call %s: unusable handoff in the registry: %s", record.call_id, exc)
        return True
    handoff = replace(handoff, events=tuple(await member.registry.events(record.call_id)))

    async def claim() -> Handoff | None:
        if not await member.registry.claim(record.call_id, record.owner_id, member.call_ttl_s):
            raise _Lost
        member.requests["takeover"] += 1
        log.info("call %s: taking it over from replica %s", record.call_id, record.owner_id)
        return await _release(member, record) if record.owner is not None else None

    try:
        await calls.adopt(handoff, token, offer, claim)
    except _Lost:
        return False
    return True


async def _release(member: FleetMember, record: CallRecord) -> Handoff | None:
    """Ask the draining owner to stop the call and give its final state; None if it cannot."""
    assert record.owner is not None
    try:
        status, body = await member.forwarder.post(f"{record.owner.url}/fleet/v1/calls/{record.call_id}/release")
        return Handoff.from_json(body) if status == 200 else None
    except (OwnerUnreachable, ValueError) as exc:
        log.info("call %s: replica %s did not hand it over (%s); going on from the registry", record.call_id,
                 record.owner_id, exc)
        return None


async def _orphan(request: web.Request, member: FleetMember, record: CallRecord) -> web.StreamResponse:
    """A follow-up for a call whose replica is gone and which nobody has resumed yet; _Lost if the record changed
    meanwhile (its replica came back, or another took the call over)."""
    member.requests["orphan"] += 1
    stored = record.handoff or {}
    if request.method == "GET" and request.path == f"/v1/calls/{record.call_id}":
        return web.json_response({"call_id": record.call_id, "state": "detached", "profile": stored.get("profile"),
                                  "created_at": stored.get("created_at"), "attachments": stored.get("attachments"),
                                  "metadata": stored.get("metadata", {}), "end_reason": None, "replica": None})
    if request.method == "DELETE" and request.path == f"/v1/calls/{record.call_id}":
        snapshot = {"call_id": record.call_id, "state": "ended", "end_reason": "hangup",
                    "profile": stored.get("profile"), "created_at": stored.get("created_at")}
        if not await member.registry.end_orphan(record.call_id, record.owner_id, snapshot, member.keep_ended_s):
            raise _Lost
        return web.Response(status=204)
    raise GatewayError(409, "call_detached", "the replica that held this call is gone; resume the call "
                       "(POST /v1/calls with resume) to go on with it")


async def _ended(request: web.Request, member: FleetMember, record: CallRecord) -> web.StreamResponse:
    """A call that ended (on any replica), from the snapshot and history its owner left in the registry."""
    call_path, events_path = f"/v1/calls/{record.call_id}", f"/v1/calls/{record.call_id}/events"
    if request.method == "GET" and request.path == call_path:
        return web.json_response(record.ended)
    if request.method == "GET" and request.path == events_path:
        return await send_history(request, await member.registry.events(record.call_id))
    if request.method == "DELETE" and request.path == call_path:
        return web.Response(status=204)
    if request.method == "POST" and request.path == events_path:
        raise GatewayError(409, "call_ended", f"call {record.call_id!r} has ended")
    raise GatewayError(404, "call_not_found", f"call {record.call_id!r} has ended")


async def _wait_until_gone(member: FleetMember, record: CallRecord) -> None:
    """The owner does not answer: wait (bounded) until its heartbeat expires, or say it is unreachable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPLICA_TTL_S + 1.0
    while loop.time() < deadline:
        await asyncio.sleep(GONE_POLL_S)
        now = await _lookup(member, record.call_id)
        if now is None or now.owner is None or now.owner_id != record.owner_id:
            return
    raise GatewayError(503, "owner_unreachable", "the replica holding this call is up but does not answer",
                       {"Retry-After": str(RETRY_AFTER_S)})


async def _follow_up(request: web.Request) -> tuple[str, bool] | None:
    """(call id, is a resume) if `request` is a follow-up of one call."""
    parts = request.path.strip("/").split("/")
    if parts[:2] == ["v1", "calls"] and (len(parts) == 3 or parts[3:] == ["events"]):
        return parts[2], False
    if request.method != "POST" or request.path != "/v1/calls":
        return None
    if "resume" in request.query:
        return request.query["resume"], True
    if request.content_type == "application/json":
        resume = (await _json_body(request)).get("resume")
        if isinstance(resume, dict) and isinstance(resume.get("call_id"), str):
            return resume["call_id"], True
    return None


async def _resume_of(request: web.Request) -> tuple[str, str] | None:
    """(token, offer) of a resume in JSON or SDP form, or None if it is malformed (the handler says how)."""
    if request.content_type == "application/json":
        body = await _json_body(request)
        resume, sdp = body.get("resume"), body.get("sdp")
        token = resume.get("token") if isinstance(resume, dict) else None
        return (token, sdp) if isinstance(token, str) and isinstance(sdp, str) else None
    token = request.headers.get("Resume-Token")
    return (token, await request.text()) if token else None


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _count(member: FleetMember, route: str) -> Callable[[], None]:
    def count() -> None:
        member.requests[route] += 1

    return count


def _streams(request: web.Request) -> bool:
    return request.method == "GET" and request.path.endswith("/events")


async def _peer(member: FleetMember) -> Any:
    try:
        return await member.peer_with_room()
    except FleetUnavailable:
        return None  # nobody to hand over to: the resume is answered here, until the drain ends


async def _lookup(member: FleetMember, call_id: str) -> CallRecord | None:
    return await member.registry.lookup(call_id)  # FleetUnavailable: a 503 fleet_unavailable


class _Lost(Exception):
    """Another replica won the takeover, or the record changed under us."""
