"""Health, readiness, metrics, and the profile list the demo page offers."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.access import visible_profiles
from gateway.api.keys import CALLS, EMULATED, METRICS, SETTINGS
from gateway.calls.manager import RETRY_AFTER_S
from gateway.errors import GatewayError

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.StreamResponse:
    calls = request.app[CALLS]
    if calls.draining:
        raise GatewayError(503, "draining", "shutting down", {"Retry-After": str(RETRY_AFTER_S)})
    if not calls.accepting:
        raise GatewayError(503, "at_capacity", "at the call limit", {"Retry-After": str(RETRY_AFTER_S)})
    return web.json_response({"status": "ready", "calls": len(calls)})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.StreamResponse:
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/v1/profiles")
async def profiles(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    names = visible_profiles(request, list(settings.profiles))  # a client token sees only its own
    return web.json_response(
        {
            "profiles": [settings.profiles[name].public() for name in names],
            "default": "default" if "default" in names else (names or [None])[0],
            "emulator": request.app[EMULATED],
        }
    )
