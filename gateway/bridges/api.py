"""The bridge's own HTTP API: its health, and (README "SIP bridge") dialling out."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.bridges.bridge import SipBridge
from gateway.bridges.phone_call import DialFailed
from gateway.bridges.settings import BridgeSettings

BRIDGE = web.AppKey("bridge", SipBridge)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_api(bridge: SipBridge, settings: BridgeSettings) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[_errors_and_auth(settings.api_tokens)])
    app[BRIDGE] = bridge
    app.router.add_get("/healthz", health)
    app.router.add_post("/v1/dial", dial)
    return app


# How a failed dial is answered: the far end's refusals are 409 (the request was fine, the line was not).
DIAL_FAILURES = {"busy": 409, "no_answer": 409, "rejected": 409, "gateway_refused": 502, "not_ready": 503,
                 "no_line": 503, "unknown_account": 404, "bad_target": 400}


async def dial(request: web.Request) -> web.StreamResponse:
    """`POST /v1/dial {"to", "account"?, "profile"?, "metadata"?, "headers"?, "ring_seconds"?}`: waits until
    the far end answers (`201` with the gateway's call id) or does not (`409` with the SIP status)."""
    if request.content_type != "application/json":
        return error(415, "unsupported_media_type", "send application/json")
    try:
        body = json.loads(await request.text())
    except ValueError:
        return error(400, "bad_json", "the body is not valid JSON")
    problem = _dial_problem(body)
    if problem:
        return error(400, "bad_request", problem)
    try:
        call = await request.app[BRIDGE].dial(
            body["to"], account=body.get("account"), profile=body.get("profile"), metadata=body.get("metadata"),
            headers=body.get("headers"), ring_s=body.get("ring_seconds"))
    except DialFailed as failure:
        extra = {"sip_status": failure.sip_status, "sip_reason": failure.sip_reason} if failure.sip_status else {}
        return error(DIAL_FAILURES.get(failure.code, 502), failure.code, failure.message, **extra)
    return web.json_response({"call_id": call.call_id, "sip_call_id": call.sip_call_id, "to": body["to"],
                              "account": call.handle.line.account.name}, status=201)


def _dial_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("to"), str):
        return 'the body needs a "to" string (a SIP URI or a number)'
    for key, kind in (("account", str), ("profile", str), ("metadata", dict), ("headers", dict),
                      ("ring_seconds", (int, float))):
        if key in body and not isinstance(body[key], kind):
            return f'"{key}" has the wrong type'
    if not 1 <= body.get("ring_seconds", 30) <= 300:
        return '"ring_seconds" must be between 1 and 300'
    if not all(isinstance(v, str) and k.lower().startswith("x-") for k, v in body.get("headers", {}).items()):
        return '"headers" may only hold X- headers with string values'
    return None


async def health(request: web.Request) -> web.StreamResponse:
    """`200` while Janus is connected and every account registered, else `503`; with each line's state."""
    bridge = request.app[BRIDGE]
    lines = [{"account": line.account.name, "uri": line.uri, "calls": sum(h.call is not None for h in line.handles),
              "max_calls": len(line.handles), **({"error": line.error} if line.error else {})}
             for line in bridge.lines]
    ready = bridge.ready.is_set()
    return web.json_response({"janus": "ready" if ready else "connecting", "lines": lines},
                             status=200 if ready else 503)


def error(status: int, code: str, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


def _errors_and_auth(tokens: tuple[str, ...]) -> Callable[..., Awaitable[web.StreamResponse]]:
    accepted = [token.encode() for token in tokens]

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if accepted and request.path.startswith("/v1/"):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.strip().encode(), t) for t in accepted):
                return error(401, "unauthorized", "send 'Authorization: Bearer <token>'")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error(exc.status, "bad_request" if exc.status < 500 else "error", exc.reason)

    return middleware
