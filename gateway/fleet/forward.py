"""Forwarding a request to the replica that holds its call, and streaming the answer back as it comes.

The body goes up whole (follow-ups are small, and a body read once can be sent again), the answer comes back
chunk by chunk, so an events stream (SSE) flows through as the owner writes it. The forwarded request keeps its
credentials (the owner checks them, and counts the client's rate limit) and carries `X-Gateway-Hop` with the
fleet's secret: the owner answers it itself, never forwards it again.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

HOP_HEADER = "X-Gateway-Hop"
CONNECT_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 60.0  # a resume's answer waits for ICE gathering; streams have no deadline
# Headers about one connection, not the request (RFC 9110 7.6.1), and those aiohttp sets itself.
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                            "trailer", "transfer-encoding", "upgrade", "host", "content-length",
                            HOP_HEADER.lower()})


class OwnerUnreachable(Exception):
    """No answer at all came from the owner (refused, reset, timed out before its answer began)."""


class Forwarder:
    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._http = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))

    def is_hop(self, request: web.Request) -> bool:
        """Did another replica of this fleet forward `request`?"""
        return hmac.compare_digest(request.headers.get(HOP_HEADER, "").encode(), self._secret.encode())

    async def forward(self, request: web.Request, base_url: str, *, streaming: bool,
                      answered: Callable[[], object] = lambda: None) -> web.StreamResponse:
        """`request` as `base_url` answers it; OwnerUnreachable if no answer begins. `answered()` is called
        once the answer begins (a stream's may last as long as its call)."""
        body = await request.read() if request.body_exists else None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        headers[HOP_HEADER] = self._secret
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S,
                                        sock_read=None if streaming else ANSWER_TIMEOUT_S)
        try:
            upstream = await self._http.request(request.method, base_url + request.path_qs, headers=headers,
                                                data=body, timeout=timeout, allow_redirects=False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OwnerUnreachable(f"{base_url}: {exc or type(exc).__name__}") from None
        answered()
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _NOT_FORWARDED or name.lower() == "content-length":
                    response.headers.add(name, value)
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except ConnectionResetError:  # our client went away (an events reader closing its stream)
                return response
            except (aiohttp.ClientError, TimeoutError) as exc:  # the owner went away mid-answer: end ours too
                log.warning("forwarded %s %s: the owner stopped answering: %s", request.method, request.path, exc)
                return response
            await response.write_eof()
        return response

    async def post(self, url: str) -> tuple[int, Any]:
        """An internal request to another replica: its status and JSON body; OwnerUnreachable without one."""
        timeout = aiohttp.ClientTimeout(total=ANSWER_TIMEOUT_S, sock_connect=CONNECT_TIMEOUT_S)
        try:
            async with self._http.post(url, headers={HOP_HEADER: self._secret}, timeout=timeout) as response:
                body = await response.json() if response.content_type == "application/json" else None
                return response.status, body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OwnerUnreachable(f"{url}: {exc or type(exc).__name__}") from None

    async def close(self) -> None:
        await self._http.close()
