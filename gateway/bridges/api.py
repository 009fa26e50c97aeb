"""The bridge's own HTTP API: its health, and (README "SIP bridge") dialling out."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.bridges.bridge import SipBridge
from gateway.bridges.settings import BridgeSettings

BRIDGE = web.AppKey("bridge", SipBridge)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_api(bridge: SipBridge, settings: BridgeSettings) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[_errors_and_auth(settings.api_tokens)])
    app[BRIDGE] = bridge
    app.router.add_get("/healthz", health)
    return app


async def health(request: web.Request) -> web.StreamResponse:
    """`200` while Janus is connected and every account registered, else `503`; with each line's state."""
    bridge = request.app[BRIDGE]
    lines = [{"account": line.account.name, "uri": line.uri, "calls": sum(h.call is not None for h in line.handles),
              "max_calls": len(line.handles)} for line in bridge.lines]
    ready = bridge.ready.is_set()
    return web.json_response({"janus": "ready" if ready else "connecting", "lines": lines}, status=200 if ready else 503)


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
