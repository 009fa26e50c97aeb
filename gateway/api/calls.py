"""The calls API (design.md section 4): create, resume, inspect, renegotiate, trickle and end calls."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from gateway.api.access import call_terms
from gateway.api.bodies import json_object
from gateway.api.keys import CALLS, SETTINGS
from gateway.calls import report
from gateway.calls.call import Call
from gateway.calls.ended import EndedCall
from gateway.calls.peer import add_remote_candidates
from gateway.errors import GatewayError
from gateway.turn import ice_server_links, ice_servers

SDP = "application/sdp"
JSON = "application/json"
SDPFRAG = "application/trickle-ice-sdpfrag"
RESUME_TOKEN = "Resume-Token"  # the SDP form's resume token, in the 201 and in a resume request

routes = web.RouteTableDef()


@routes.post("/v1/calls")
async def create_call(request: web.Request) -> web.StreamResponse:
    if request.content_type == SDP:
        return await _sdp_call(request)
    if request.content_type != JSON:
        raise GatewayError(415, "unsupported_media_type", f"send {JSON} or {SDP}, not {request.content_type!r}")
    body = await json_object(request)
    if "resume" in body:
        return await _resume(request, body)
    offering = body.get("type") == "offer_request"  # the gateway makes the offer (a bridge dials a phone)
    if not offering and (body.get("type") != "offer" or not isinstance(body.get("sdp"), str)):
        raise GatewayError(400, "bad_request", 'the body needs "type": "offer" and an "sdp" string, or '
                                               '"type": "offer_request"')
    profile = body.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise GatewayError(400, "bad_request", '"profile" must be a string')
    profile, metadata = call_terms(request, profile, body.get("metadata", {}))  # access.py: scopes and caps
    call, sdp = await request.app[CALLS].create(None if offering else body["sdp"], profile)
    call.metadata = metadata
    return _json_answer(request, call, sdp, "offer" if offering else "answer")


@routes.post("/v1/calls/{call_id}/answer")
async def take_answer(request: web.Request) -> web.StreamResponse:
    """The far end's answer to a call the gateway offered (`"type": "offer_request"`)."""
    if request.content_type != SDP:
        raise GatewayError(415, "unsupported_media_type", f"send the answer as {SDP}")
    await request.app[CALLS].take_answer(request.match_info["call_id"], await request.text())
    return web.Response(status=204)


@routes.post("/whip")
async def whip(request: web.Request) -> web.StreamResponse:
    if request.content_type != SDP:
        raise GatewayError(415, "unsupported_media_type", f"WHIP takes {SDP}, not {request.content_type!r}")
    return await _sdp_call(request)


@routes.get("/v1/calls/{call_id}")
async def get_call(request: web.Request) -> web.StreamResponse:
    call = request.app[CALLS].lookup(request.match_info["call_id"])
    if isinstance(call, EndedCall):
        return web.json_response(call.snapshot)
    return web.json_response(report.snapshot(call))


@routes.delete("/v1/calls/{call_id}")
async def delete_call(request: web.Request) -> web.StreamResponse:
    await request.app[CALLS].hang_up(request.match_info["call_id"], "hangup")
    return web.Response(status=204)


@routes.patch("/v1/calls/{call_id}")
async def update_call(request: web.Request) -> web.StreamResponse:
    """Trickle ICE candidates (`application/trickle-ice-sdpfrag`) or a new offer (`application/sdp`: hold)."""
    call = request.app[CALLS].get(request.match_info["call_id"])
    if request.content_type not in (SDPFRAG, SDP):
        raise GatewayError(415, "unsupported_media_type", f"send {SDPFRAG} (trickle ICE) or {SDP} (a new offer)")
    if_match = request.headers.get("If-Match")
    if if_match not in (None, "*", _etag(call)):
        raise GatewayError(412, "precondition_failed", "the ETag does not match this call's session")
    if request.content_type == SDP:
        call, answer = await request.app[CALLS].renegotiate(call.id, await request.text())
        return web.Response(status=200, text=answer, content_type=SDP, headers={"ETag": _etag(call)})
    if call.leg is None:
        raise GatewayError(409, "no_peer", "the call has no peer connection to add candidates to")
    await add_remote_candidates(call.leg.pc, await request.text())
    return web.Response(status=204)


async def _sdp_call(request: web.Request) -> web.StreamResponse:
    """A new call, or with `?resume=<call_id>` and the Resume-Token header, a resume: the body is the offer."""
    offer = await request.text()
    resume = request.query.get("resume")
    if resume is None:
        profile, metadata = call_terms(request, request.query.get("profile"), {})
        call, answer = await request.app[CALLS].create(offer, profile)
        call.metadata = metadata
    elif not (token := request.headers.get(RESUME_TOKEN)):
        raise GatewayError(400, "bad_request", f"a resume needs the {RESUME_TOKEN} header of the previous answer")
    else:
        call, answer = await request.app[CALLS].resume(resume, token, offer)
    headers = CIMultiDict({"Location": _location(call), "ETag": _etag(call), RESUME_TOKEN: call.resume_token})
    for link in ice_server_links(ice_servers(request.app[SETTINGS], call.id)):  # WHIP: TURN for this caller
        headers.add("Link", link)
    return web.Response(status=201, text=answer, content_type=SDP, headers=headers)


async def _resume(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    resume = body["resume"]
    if not isinstance(resume, dict) or not all(isinstance(resume.get(k), str) for k in ("call_id", "token")):
        raise GatewayError(400, "bad_request", '"resume" needs "call_id" and "token" strings')
    if not isinstance(body.get("sdp"), str):
        raise GatewayError(400, "bad_request", 'a resume needs the new peer connection\'s "sdp" offer')
    call, answer = await request.app[CALLS].resume(resume["call_id"], resume["token"], body["sdp"])
    return _json_answer(request, call, answer)


def _json_answer(request: web.Request, call: Call, sdp: str, kind: str = "answer") -> web.Response:
    return web.json_response(
        {"call_id": call.id, "type": kind, "sdp": sdp, "resume_token": call.resume_token,
         "ice_servers": ice_servers(request.app[SETTINGS], call.id)},  # TURN credentials for this caller
        status=201,
        headers={"Location": _location(call), "ETag": _etag(call)},
    )


def _location(call: Call) -> str:
    return f"/v1/calls/{call.id}"


def _etag(call: Call) -> str:
    return f'"{call.id}.{call.attachments}"'
