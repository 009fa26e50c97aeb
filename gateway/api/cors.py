"""Browser origins (GATEWAY_ALLOWED_ORIGINS): CORS for the allowed ones, 403 for every other.

A page on another site must not place calls on a gateway's account just because its visitor's browser can
reach it. Browsers name the page's site in `Origin` (on every cross-origin request, and on same-origin POSTs
too); requests without one (backends, bridges, curl) are not a browser's and pass untouched. The gateway's
own origin (the demo page) is always allowed: an `Origin` whose host is the request's own `Host`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from aiohttp import web

from gateway.api.access import is_api_path
from gateway.api.errors import Handler
from gateway.errors import GatewayError

ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, If-Match, Resume-Token"
EXPOSE_HEADERS = "Location, ETag, Resume-Token, Link, Retry-After"
MAX_AGE_S = 600
ACCEPT_POST = {"/v1/calls": "application/sdp, application/json", "/whip": "application/sdp"}


class Origins:
    """Which browser origins may use the API: the gateway's own, and `allowed` ("*" = any)."""

    def __init__(self, allowed: Sequence[str]) -> None:
        self.any = "*" in allowed
        self.allowed = {origin.rstrip("/").lower() for origin in allowed}

    def allows(self, origin: str, request: web.Request) -> bool:
        origin = origin.rstrip("/").lower()
        return self.any or origin in self.allowed or urlsplit(origin).netloc == request.host.lower()


def origin_check(origins: Origins) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware: refuse API requests from other origins (403 `origin_not_allowed`); answer preflights."""

    @web.middleware
    async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or not is_api_path(request.path):
            return await handler(request)
        if not origins.allows(origin, request):
            raise GatewayError(403, "origin_not_allowed", "this gateway does not take calls from pages on that site")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            headers = {"Access-Control-Allow-Methods": ALLOW_METHODS, "Access-Control-Allow-Headers": ALLOW_HEADERS,
                       "Access-Control-Max-Age": str(MAX_AGE_S)}
            if request.path in ACCEPT_POST:
                headers["Accept-Post"] = ACCEPT_POST[request.path]
            return web.Response(status=204, headers=headers)
        return await handler(request)

    return check_origin


def cors_headers(origins: Origins) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """`on_response_prepare`: the CORS grant on every API answer to an allowed origin, errors and event
    streams included (a middleware would miss a stream's headers, already sent)."""

    async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is None or not is_api_path(request.path) or not origins.allows(origin, request):
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response.headers.add("Vary", "Origin")

    return add_cors_headers
