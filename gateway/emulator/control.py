"""The emulator's HTTPS control API: list connections and inject faults, for users running it standalone.

GET  /emulator/connections  -> JSON list of connections (id, call_id, model, open, turn, audio_in_s, ...)
POST /emulator/faults       {"fault": "drop"|"close"|"stall"|"unstall"|"refuse_setup", "connection": <id>|"all",
                             "code": 1011, "reason": "...", "seconds": 2.0, "count": 1}
Errors: {"error": {"code": "...", "message": "..."}} with 400 (bad request) or 404 (unknown connection).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from aiohttp import web

from .connection import EmulatedConnection
from .state import EmulatorState, SetupRefusal
from .wire import INTERNAL, UNAVAILABLE, Close

STATE = web.AppKey("emulator_state", EmulatorState)
SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


class FaultKind(StrEnum):
    DROP = "drop"  # abort the TCP connection, no close frame (client: 1006)
    CLOSE = "close"  # close frame with code and reason
    STALL = "stall"  # send and process nothing for `seconds` (null = until unstall)
    UNSTALL = "unstall"
    REFUSE_SETUP = "refuse_setup"  # the next `count` setups are closed with code and reason


class BadRequest(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def error_response(code: str, message: str, status: int) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def valid_close_code(code: Any) -> bool:
    return isinstance(code, int) and not isinstance(code, bool) and (
        code in SENDABLE_CLOSE_CODES or 3000 <= code <= 4999
    )


def _close_from(body: dict[str, Any], default: Close) -> Close:
    code = body.get("code", default.code)
    reason = body.get("reason", default.reason if code == default.code else "")
    if not valid_close_code(code):
        raise BadRequest("invalid_code", f"code must be a sendable WebSocket close code, not {code!r}")
    if not isinstance(reason, str):
        raise BadRequest("invalid_reason", "reason must be a string")
    return Close(code, reason)


def _targets(state: EmulatorState, selector: Any) -> list[EmulatedConnection]:
    if selector == "all":
        return [conn for conn in state.connections if conn.is_open]
    if not isinstance(selector, int) or isinstance(selector, bool):
        raise BadRequest("invalid_connection", 'connection must be a connection id or "all"')
    for conn in state.connections:
        if conn.id == selector and conn.is_open:
            return [conn]
    raise BadRequest("unknown_connection", f"no open connection {selector}", status=404)


async def _apply(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    try:
        fault = FaultKind(body.get("fault"))
    except ValueError:
        raise BadRequest("invalid_fault", f"fault must be one of {', '.join(FaultKind)}") from None
    if fault is FaultKind.REFUSE_SETUP:
        count = body.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
            raise BadRequest("invalid_count", "count must be an integer from 1 to 1000")
        state.refusals.extend([SetupRefusal(_close_from(body, UNAVAILABLE))] * count)
        return {"fault": fault, "pending": len(state.refusals)}
    seconds = body.get("seconds")
    if fault is FaultKind.STALL and seconds is not None:
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 < seconds <= 3600:
            raise BadRequest("invalid_seconds", "seconds must be a number in (0, 3600] or null")
    close = _close_from(body, INTERNAL) if fault is FaultKind.CLOSE else None
    targets = _targets(state, body.get("connection"))
    for conn in targets:
        match fault:
            case FaultKind.DROP:
                await conn.drop()
            case FaultKind.CLOSE:
                assert close is not None
                await conn.close(close.code, close.reason)
            case FaultKind.STALL:
                conn.stall(seconds)
            case FaultKind.UNSTALL:
                conn.unstall()
    return {"fault": fault, "connections": [conn.id for conn in targets]}


async def list_connections(request: web.Request) -> web.Response:
    return web.json_response([conn.describe() for conn in request.app[STATE].connections])


async def inject_fault(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read())
    except ValueError as exc:
        return error_response("malformed", f"the body is not valid JSON: {exc}", 400)
    try:
        if not isinstance(body, dict):
            raise BadRequest("malformed", "the body must be a JSON object")
        return web.json_response(await _apply(request.app[STATE], body))
    except BadRequest as exc:
        return error_response(exc.code, str(exc), exc.status)


def add_routes(app: web.Application, state: EmulatorState) -> None:
    app[STATE] = state
    app.router.add_get("/emulator/connections", list_connections)
    app.router.add_post("/emulator/faults", inject_fault)
