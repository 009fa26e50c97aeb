"""Ended calls are remembered for a while, and only so many of them."""

from __future__ import annotations

from gateway.calls.ended import EndedCalls


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_ended_call_is_kept_for_its_time_then_forgotten() -> None:
    clock = Clock()
    ended = EndedCalls(max_calls=10, keep_s=600, clock=clock)
    ended.remember("a", {"state": "ended", "end_reason": "max_duration"}, ('{"type":"ended"}',), "token-a")
    clock.now += 599
    record = ended.get("a")
    assert record is not None and record.snapshot["end_reason"] == "max_duration"
    clock.now += 2
    assert ended.get("a") is None


def test_beyond_the_limit_the_oldest_is_forgotten_first() -> None:
    ended = EndedCalls(max_calls=2, keep_s=600, clock=Clock())
    for call_id in "abc":
        ended.remember(call_id, {}, (), call_id)
    assert [ended.get(c) is not None for c in "abc"] == [False, True, True]
    none_kept = EndedCalls(max_calls=0, keep_s=600, clock=Clock())
    none_kept.remember("a", {}, (), "a")
    assert none_kept.get("a") is None
