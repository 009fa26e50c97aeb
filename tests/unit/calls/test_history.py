"""A call's event history: bounded, followed live by several readers, none of them holding memory for ever."""

from __future__ import annotations

import asyncio
import json

from gateway.calls import history
from gateway.calls.history import EventHistory


def add(events: EventHistory, n: int) -> None:
    event = {"type": "transcript", "text": f"turn {n}"}
    events.add(event, json.dumps(event, separators=(",", ":")))


async def test_a_reader_gets_the_history_then_what_comes_next_with_nothing_lost_or_repeated() -> None:
    events = EventHistory(size=3)
    for n in range(5):
        add(events, n)
    backlog, first = events.follow()
    _, second = events.follow()
    add(events, 5)
    assert [e["text"] for e, _ in backlog] == ["turn 2", "turn 3", "turn 4"], "only the newest are kept"
    for reader in (first, second):
        event, message = await reader.next(1.0)
        assert event["text"] == "turn 5" and json.loads(message) == event
    assert [e["text"] for e in events.events] == ["turn 3", "turn 4", "turn 5"]
    assert json.loads(events.messages[-1]) == events.events[-1]


async def test_a_quiet_stream_times_out_and_a_closed_reader_gets_nothing_more() -> None:
    events = EventHistory(size=10)
    _, reader = events.follow()
    assert await reader.next(0.05) is None
    reader.close()
    add(events, 1)
    assert await reader.next(0.05) is None and not events.readers


async def test_a_reader_that_falls_too_far_behind_is_cut_off(monkeypatch) -> None:
    monkeypatch.setattr(history, "READER_LIMIT", 3)
    events = EventHistory(size=10)
    _, reader = events.follow()
    for n in range(4):
        add(events, n)
    assert reader.lagging and not events.readers
    assert await asyncio.wait_for(reader.next(5.0), 1.0) is None, "a cut-off reader must not wait"
