"""The bridge's side of the gateway's HTTP API (README "HTTP API"): the bridge is one more HTTP client.

Every call it makes is one the gateway documents for any client: create a call from an SDP offer, follow its
events (server-sent events), post DTMF and hang-ups to it, end it. `base_url` may be a load balancer in front
of several gateways; follow-ups go to the call's `Location`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)  # an answer gathers ICE candidates first: allow for it
EVENTS_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=40)  # keepalives come every 15 s


class GatewayRefused(Exception):
    """The gateway answered with an error (or could not be reached: `status` 0)."""

    def __init__(self, status: int, code: str, message: str, retry_after: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class GatewayClient:
    def __init__(self, base_url: str, http: aiohttp.ClientSession, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def create_call(self, offer_sdp: str, profile: str | None, metadata: dict[str, Any]) -> tuple[str, str]:
        """A new call answering `offer_sdp`; returns its id and the answer SDP."""
        body: dict[str, Any] = {"type": "offer", "sdp": offer_sdp, "metadata": metadata}
        if profile:
            body["profile"] = profile
        answer = await self._json("POST", "/v1/calls", json=body)
        return answer["call_id"], answer["sdp"]

    async def request_offer(self, profile: str | None, metadata: dict[str, Any]) -> tuple[str, str]:
        """A new call whose peer connection the gateway offers (for a phone the bridge dials); returns its id
        and the offer SDP. The call waits for `answer()`."""
        body: dict[str, Any] = {"type": "offer_request", "metadata": metadata}
        if profile:
            body["profile"] = profile
        offer = await self._json("POST", "/v1/calls", json=body)
        return offer["call_id"], offer["sdp"]

    async def answer(self, call_id: str, answer_sdp: str) -> None:
        """The far end's answer to the gateway's offer."""
        await self._json("POST", f"/v1/calls/{call_id}/answer", data=answer_sdp,
                         headers={**self._headers, "Content-Type": "application/sdp"})

    async def hang_up(self, call_id: str) -> None:
        """End the call; one that already ended (404) is fine."""
        try:
            await self._json("DELETE", f"/v1/calls/{call_id}")
        except GatewayRefused as exc:
            if exc.status != 404:
                raise

    async def send_event(self, call_id: str, event: dict[str, Any]) -> None:
        """One caller->gateway message (`dtmf`, `text`, `hangup`...) on the call's control endpoint."""
        await self._json("POST", f"/v1/calls/{call_id}/events", json=event)

    async def call_state(self, call_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/v1/calls/{call_id}")

    async def events(self, call_id: str) -> AsyncIterator[dict[str, Any]]:
        """The call's events, its history first, as the gateway's SSE stream carries them; ends after `ended`
        or when the stream closes. Raises GatewayRefused if the stream cannot be opened."""
        try:
            async with self._http.get(f"{self.base_url}/v1/calls/{call_id}/events", headers=self._headers,
                                      timeout=EVENTS_TIMEOUT) as response:
                if response.status != 200:
                    raise await _refusal(response)
                async for raw in response.content:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if not line.startswith("data:"):
                        continue  # `: keepalive` comments and blank separators
                    try:
                        event = json.loads(line[5:])
                    except ValueError:
                        log.warning("call %s: unreadable event from the gateway: %.200s", call_id, line)
                        continue
                    if isinstance(event, dict):
                        yield event
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise GatewayRefused(0, "unreachable", f"the events stream failed ({type(exc).__name__})") from None

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("headers", self._headers)
        try:
            async with self._http.request(method, self.base_url + path, timeout=REQUEST_TIMEOUT,
                                          **kwargs) as response:
                if response.status >= 400:
                    raise await _refusal(response)
                if response.status == 204 or response.content_type != "application/json":
                    return {}
                return await response.json()
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise GatewayRefused(0, "unreachable", f"{method} {path}: {type(exc).__name__}: {exc}") from None


async def _refusal(response: aiohttp.ClientResponse) -> GatewayRefused:
    code, message = "error", response.reason or ""
    try:
        error = (await response.json()).get("error", {})
        code, message = error.get("code", code), error.get("message", message)
    except (ValueError, aiohttp.ContentTypeError, AttributeError):
        pass
    return GatewayRefused(response.status, code, message, response.headers.get("Retry-After"))
