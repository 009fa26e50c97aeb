"""The per-client token bucket behind 429, on a controllable clock."""

from __future__ import annotations

import pytest

from gateway.api.ratelimit import CallRateLimiter


def test_a_client_gets_its_burst_then_the_rate(clock) -> None:
    limiter = CallRateLimiter(per_minute=30, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(2.0)  # one token every 2 s
    clock.advance(1.5)
    assert limiter.take("a") == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(2.0)
    assert limiter.refused == 3


def test_refused_requests_do_not_push_the_wait_further(clock) -> None:
    limiter = CallRateLimiter(per_minute=60, burst=1, clock=clock)
    assert limiter.take("a") == 0.0
    waits = [limiter.take("a") for _ in range(5)]
    assert waits == [pytest.approx(1.0)] * 5
    clock.advance(1.0)
    assert limiter.take("a") == 0.0


def test_clients_have_their_own_buckets_and_refill_only_to_the_burst(clock) -> None:
    limiter = CallRateLimiter(per_minute=60, burst=2, clock=clock)
    assert limiter.take("a") == limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0
    clock.advance(3600)
    assert [limiter.take("a") > 0 for _ in range(3)] == [False, False, True]


def test_the_client_table_is_bounded_forgetting_the_longest_unseen(clock) -> None:
    limiter = CallRateLimiter(per_minute=60, burst=1, max_clients=2, clock=clock)
    for client in ("a", "b", "a", "c"):  # "c" pushes out "b", seen longest ago
        limiter.take(client)
    assert limiter.take("a") > 0 and limiter.take("c") > 0
    assert limiter.take("b") == 0.0


def test_a_rate_of_zero_turns_the_limit_off(clock) -> None:
    limiter = CallRateLimiter(per_minute=0, burst=1, clock=clock)
    assert not limiter.enabled
    assert all(limiter.take("a") == 0.0 for _ in range(100))
