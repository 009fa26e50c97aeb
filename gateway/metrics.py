"""Prometheus metrics, read from the call manager at scrape time (prometheus-client does the text format).

A collector per application (not the global registry) keeps several apps in one process, as in tests,
from sharing figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.api.ratelimit import CallRateLimiter
from gateway.calls.manager import CallManager

if TYPE_CHECKING:  # fleet mode loads it (gateway/app.py)
    from gateway.fleet.member import FleetMember


class GatewayCollector:
    def __init__(self, calls: CallManager, limiter: CallRateLimiter, fleet: FleetMember | None) -> None:
        self._calls = calls
        self._limiter = limiter
        self._fleet = fleet

    def collect(self) -> Iterator[Metric]:
        calls = self._calls
        yield GaugeMetricFamily("gateway_calls_active", "Calls in progress", value=len(calls))
        yield GaugeMetricFamily("gateway_draining", "1 while the gateway is draining", value=int(calls.draining))
        yield CounterMetricFamily("gateway_calls_created", "Calls created", value=calls.created_total)
        ended = CounterMetricFamily("gateway_calls_ended", "Calls ended, by reason", labels=["reason"])
        for reason, count in sorted(calls.ended_by_reason.items()):
            ended.add_metric([reason], count)
        yield ended
        yield CounterMetricFamily("gateway_calls_rate_limited", "Call requests refused with 429",
                                  value=self._limiter.refused)
        totals = calls.totals()
        for name, help_text in (
            ("live_reconnects", "Live connections re-established after a failure"),
            ("live_handovers", "Live connections replaced after a GoAway"),
            ("playout_underruns", "Gaps inside model replies (playout buffer ran dry)"),
        ):
            yield CounterMetricFamily(f"gateway_{name}", help_text, value=totals.get(name, 0))
        if self._fleet is not None:
            routed = CounterMetricFamily("gateway_fleet_requests", "Follow-ups of calls in fleet mode, by route: "
                                         "local, received (forwarded here), forwarded (to the owner), takeover, "
                                         "handed_over (a draining replica's resume), orphan", labels=["route"])
            for route, count in sorted(self._fleet.requests.items()):
                routed.add_metric([route], count)
            yield routed
            yield CounterMetricFamily("gateway_fleet_redis_round_trips", "Round trips to Redis (pipelines)",
                                      value=self._fleet.registry.round_trips)
            yield CounterMetricFamily("gateway_fleet_redis_commands", "Commands sent to Redis",
                                      value=self._fleet.registry.commands)


def registry_for(calls: CallManager, limiter: CallRateLimiter, fleet: FleetMember | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(GatewayCollector(calls, limiter, fleet))  # type: ignore[arg-type]
    return registry
