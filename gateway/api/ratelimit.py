"""Per-client limits on placing calls: a token bucket per client address, refused with 429 and `Retry-After`.

Every call costs a Gemini Live session, so one client hammering `POST /v1/calls` should be slowed down long
before `max_calls` turns everyone else away. A client may place `burst` calls at once, then `per_minute`
calls a minute. A client is its address and, when it sends one, its token: a call spends from both buckets,
so a token leaked to many addresses is held to the same rate as one address. The table of clients is bounded:
the client seen longest ago is forgotten first (it comes back with a full bucket, which errs on the side of
letting callers in).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.api.access import GRANT, OPEN
from gateway.api.errors import Handler
from gateway.errors import GatewayError


class CallRateLimiter:
    """`take(client)` spends one of the client's tokens, or says how long until it has one."""

    def __init__(self, per_minute: float, burst: int, *, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_minute / 60.0
        self.burst = max(1, burst)
        self.max_clients = max_clients
        self.refused = 0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, as of)

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def take(self, *clients: str) -> float:
        """0.0 if the call may be placed now (a token is spent from every client's bucket), else the seconds
        until it may (nothing is spent)."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        levels = {}
        for client in clients:
            tokens, as_of = self._buckets.pop(client, (float(self.burst), now))
            levels[client] = min(float(self.burst), tokens + (now - as_of) * self.per_second)
        wait = max((1.0 - tokens) / self.per_second for tokens in levels.values())
        if wait > 0:
            self.refused += 1
        for client, tokens in levels.items():
            self._buckets[client] = (tokens - 1.0 if wait <= 0 else tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return max(wait, 0.0)


def limit_call_creation(
    limiter: CallRateLimiter, client_ip_header: str | None
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware (after access_control): `POST /v1/calls` and `POST /whip` spend a token of the client's
    address and of its credential; none left is a 429."""

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and request.path in ("/v1/calls", "/whip"):
            grant = request.get(GRANT, OPEN)
            token = (f"token:{grant.who}",) if grant.counted else ()
            wait = limiter.take(client_address(request, client_ip_header), *token)
            if wait > 0:
                seconds = math.ceil(wait)
                raise GatewayError(429, "rate_limited", f"too many calls from this client; retry in {seconds} s",
                                   {"Retry-After": str(seconds)})
        return await handler(request)

    return rate_limit


def client_address(request: web.Request, header: str | None) -> str:
    """Who the caller is: the peer address, or the last entry of `header` as set by a proxy we trust."""
    if header and (value := request.headers.get(header)):
        return value.rsplit(",", 1)[-1].strip()
    return request.remote or "unknown"
