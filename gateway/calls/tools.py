"""Function calling relayed to the caller: Live's `toolCall` becomes a `tool_call` event, the caller's
`tool_result` event becomes the `toolResponse`. Calls the caller never answers time out with an error result
(the model would otherwise wait forever); `toolCallCancellation` is passed on and forgets the call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.genai import types

from gateway.calls.events import EventChannel

log = logging.getLogger(__name__)

TOOL_TIMEOUT_S = 30.0


@dataclass
class PendingTool:
    name: str
    deadline: float


class ToolRelay:
    def __init__(
        self,
        events: EventChannel,
        respond: Callable[[list[types.FunctionResponse]], bool],
        clock: Callable[[], float],
        timeout_s: float = TOOL_TIMEOUT_S,
    ) -> None:
        self._events = events
        self._respond = respond
        self._clock = clock
        self._timeout_s = timeout_s
        self._pending: dict[str, PendingTool] = {}

    def on_tool_call(self, calls: list[types.FunctionCall]) -> None:
        for fc in calls:
            if fc.id:
                self._pending[fc.id] = PendingTool(fc.name or "", self._clock() + self._timeout_s)
            self._events.send({"type": "tool_call", "id": fc.id, "name": fc.name, "args": fc.args or {}})

    def on_cancellation(self, ids: list[str]) -> None:
        for call_id in ids:
            self._pending.pop(call_id, None)
        self._events.send({"type": "tool_cancelled", "ids": ids})

    def on_result(self, event: dict[str, Any]) -> None:
        """The caller's `tool_result` event: `{"id": ..., "result": <object or value>}`."""
        call_id = event.get("id")
        pending = self._pending.pop(call_id, None) if isinstance(call_id, str) else None
        if pending is None:
            raise ValueError(f"no tool call is waiting with id {call_id!r}")
        result = event.get("result")
        response = result if isinstance(result, dict) else {"result": result}
        self._respond([types.FunctionResponse(id=call_id, name=pending.name, response=response)])

    def expire(self, now: float) -> None:
        for call_id, pending in list(self._pending.items()):
            if now > pending.deadline:
                del self._pending[call_id]
                log.info("tool call %s (%s) timed out", call_id, pending.name)
                self._events.error("tool_timeout", f"no result for tool call {call_id} ({pending.name})")
                error = {"error": "the tool did not answer in time"}
                self._respond([types.FunctionResponse(id=call_id, name=pending.name, response=error)])
