"""A call's events for those without its data channel (phone bridges, backends): a server-sent event stream,
and a control endpoint taking the caller's messages.

`GET /v1/calls/<id>/events` sends the call's history, then each event as it is sent, one SSE `data:` line
each, exactly the JSON the data channel carries; it ends after `ended`. `POST /v1/calls/<id>/events` takes one
caller message, as the data channel would, and answers bad ones with a 4xx instead of an `error` event.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from gateway.api.keys import CALLS
from gateway.calls.ended import EndedCall
from gateway.calls.events import BadMessage
from gateway.errors import GatewayError

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
CONTROL_TYPES = ("text", "tool_result", "dtmf", "hangup")
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from timing the stream out
KEEPALIVE = b": keepalive\n\n"

routes = web.RouteTableDef()


@routes.get("/v1/calls/{call_id}/events")
async def stream_events(request: web.Request) -> web.StreamResponse:
    call = request.app[CALLS].lookup(request.match_info["call_id"])
    if isinstance(call, EndedCall):
        return await send_history(request, call.messages)
    response = _event_stream()
    backlog, reader = call.events.history.follow()
    try:
        await response.prepare(request)
        for event, message in backlog:
            await response.write(_sse(message))
            if event["type"] == "ended":
                return response
        while True:
            item = await reader.next(KEEPALIVE_S)
            if item is None:
                if reader.lagging:
                    break  # it fell too far behind: cut off (the history is there to read again)
                await response.write(KEEPALIVE)
                continue
            event, message = item
            await response.write(_sse(message))
            if event["type"] == "ended":
                break
    except ConnectionResetError:  # the reader went away
        pass
    finally:
        reader.close()
    return response


@routes.post("/v1/calls/{call_id}/events")
async def control(request: web.Request) -> web.StreamResponse:
    call_id = request.match_info["call_id"]
    call = request.app[CALLS].lookup(call_id)
    if request.content_type != JSON:
        raise GatewayError(415, "unsupported_media_type", f"send one {JSON} message, not {request.content_type!r}")
    if isinstance(call, EndedCall) or call.ended:
        raise GatewayError(409, "call_ended", f"call {call_id!r} has ended")
    try:
        call.events.receive(await request.text(), CONTROL_TYPES)
    except BadMessage as exc:
        raise GatewayError(413 if exc.code == "too_large" else 400, exc.code, exc.message) from None
    return web.Response(status=204)


async def send_history(request: web.Request, messages: Iterable[str]) -> web.StreamResponse:
    """The stream of a call that has ended: its history, then the end of the stream."""
    response = _event_stream()
    await response.prepare(request)
    for message in messages:
        await response.write(_sse(message))
    return response


def _event_stream() -> web.StreamResponse:
    return web.StreamResponse(headers={"Content-Type": EVENT_STREAM, "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})  # nginx: pass each event on at once


def _sse(message: str) -> bytes:
    return f"data: {message}\n\n".encode()
