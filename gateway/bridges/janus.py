"""A client of Janus's WebSocket API: one connection, one Janus session, plugin handles and their events.

Janus destroys a session whose transport closes (unless `reclaim_session_timeout` is set), so this object
lives exactly as long as its WebSocket: when `closed` is set, every handle on it is gone and the owner starts
again with a new one. Requests to a plugin are asynchronous in Janus: the `ack` comes first and the plugin's
answer later, as an event with the same transaction; `message()` waits for that event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

KEEPALIVE_S = 25.0  # Janus ends a session after 60 s without a request (session_timeout)
REQUEST_TIMEOUT_S = 10.0


class JanusError(Exception):
    """Janus refused a request, did not answer it in time, or the connection is gone."""


@dataclass(frozen=True)
class JanusEvent:
    """Something Janus says about one handle: a plugin event, or a core one (webrtcup, hangup, media...)."""

    handle_id: int
    kind: str  # "event" for the plugin's own events; otherwise the core's `janus` field
    data: dict[str, Any]  # plugindata.data for "event"; the whole message otherwise
    jsep: dict[str, Any] | None = None


class JanusSession:
    """`async with JanusSession(url, on_event) as janus:` connects, creates the session and keeps it alive."""

    def __init__(self, url: str, on_event: Callable[[JanusEvent], None]) -> None:
        self.url = url
        self.session_id = 0
        self.closed = asyncio.Event()
        self._on_event = on_event
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> JanusSession:
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(self.url, protocols=("janus-protocol",), heartbeat=None,
                                                   timeout=aiohttp.ClientWSTimeout(ws_close=2.0))
            self._tasks.append(asyncio.create_task(self._read(), name="janus-read"))
            created = await self._request({"janus": "create"})
            self.session_id = created["data"]["id"]
        except BaseException:
            await self.close()
            raise
        self._tasks.append(asyncio.create_task(self._keepalive(), name="janus-keepalive"))
        log.info("Janus session %d on %s", self.session_id, self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the WebSocket (Janus then destroys the session and its handles); idempotent."""
        self.closed.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._fail_waiting("the Janus connection closed")
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    async def attach(self, plugin: str) -> int:
        """A new handle on `plugin`; returns its id."""
        answer = await self._request({"janus": "attach", "session_id": self.session_id, "plugin": plugin})
        return int(answer["data"]["id"])

    async def detach(self, handle_id: int) -> None:
        await self._request({"janus": "detach", "session_id": self.session_id, "handle_id": handle_id})

    async def message(self, handle_id: int, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send `body` to the handle's plugin; returns the plugin's answer (its event data). Raises JanusError
        when Janus or the plugin refuses it (`error_code` in the answer)."""
        message: dict[str, Any] = {"janus": "message", "session_id": self.session_id, "handle_id": handle_id,
                                   "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        answer = await self._request(message)
        data = answer.get("plugindata", {}).get("data", {})
        if "error_code" in data:
            raise JanusError(f"{body.get('request')}: {data.get('error')} ({data['error_code']})")
        return data

    async def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self._ws is None or self.closed.is_set():
            raise JanusError("not connected to Janus")
        transaction = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future
        try:
            await self._ws.send_json({**message, "transaction": transaction})
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                answer = await future
        except (TimeoutError, ConnectionError, aiohttp.ClientError) as exc:
            raise JanusError(f"{message['janus']}: no answer from Janus ({type(exc).__name__})") from None
        finally:
            self._waiting.pop(transaction, None)
        if answer.get("janus") == "error":
            error = answer.get("error", {})
            raise JanusError(f"{message['janus']}: {error.get('reason')} ({error.get('code')})")
        return answer

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    self._dispatch(json.loads(frame.data))
                except (ValueError, KeyError, TypeError, AttributeError):
                    log.warning("Janus sent something unreadable; ignored: %.200s", frame.data)
        finally:
            if not self.closed.is_set():
                log.warning("the connection to Janus at %s closed", self.url)
            self.closed.set()
            self._fail_waiting("the Janus connection closed")

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        future = self._waiting.get(message.get("transaction") or "")
        if kind == "ack":
            return  # the plugin's answer follows as an event with the same transaction
        if future is not None and not future.done() and kind in ("success", "error", "event"):
            future.set_result(message)  # the requester handles the answer; later events go to on_event
            return
        if "sender" not in message:
            if kind == "timeout":
                log.warning("Janus timed out session %s", message.get("session_id"))
            return
        data = message.get("plugindata", {}).get("data", {}) if kind == "event" else message
        self._on_event(JanusEvent(int(message["sender"]), str(kind), data, message.get("jsep")))

    async def _keepalive(self) -> None:
        assert self._ws is not None
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            # Janus answers a keepalive with a bare ack, so nothing waits for it; a dead socket ends _read.
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await self._ws.send_json({"janus": "keepalive", "session_id": self.session_id,
                                          "transaction": secrets.token_hex(8)})

    def _fail_waiting(self, why: str) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(JanusError(why))
