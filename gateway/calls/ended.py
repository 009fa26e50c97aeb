"""Calls remembered after they end: why and how each ended, for those who were not on its data channel.

A phone leg has no data channel, so the reason a call ended (`max_duration`, `caller_gone`...) would otherwise
be lost the moment it ends. Each ended call leaves its final snapshot and its event history (ending with
`ended`) for `keep_s`; at most `max_calls` are kept, the oldest forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EndedCall:
    call_id: str
    snapshot: dict[str, Any]  # as GET /v1/calls/<id> showed it, "state": "ended"
    messages: tuple[str, ...]  # its event history as compact JSON, the last one `ended`
    ended_at: float  # clock time
    resume_token: str  # still authorises follow-ups (GET, events, DELETE) on the ended call


class EndedCalls:
    def __init__(self, max_calls: int, keep_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_calls = max_calls
        self._keep_s = keep_s
        self._clock = clock
        self._calls: OrderedDict[str, EndedCall] = OrderedDict()  # in the order they ended

    def remember(self, call_id: str, snapshot: dict[str, Any], messages: tuple[str, ...], resume_token: str) -> None:
        if self._max_calls <= 0:
            return
        self._calls[call_id] = EndedCall(call_id, snapshot, messages, self._clock(), resume_token)
        while len(self._calls) > self._max_calls:
            self._calls.popitem(last=False)

    def get(self, call_id: str) -> EndedCall | None:
        self._expire()
        return self._calls.get(call_id)

    def _expire(self) -> None:
        cutoff = self._clock() - self._keep_s
        while self._calls and next(iter(self._calls.values())).ended_at < cutoff:
            self._calls.popitem(last=False)
