"""Fleet mode: replicas behind one load balancer share a call registry in Redis (see registry.py).

What a process needs before it knows whether it is in a fleet lives here, free of redis-py: `gateway serve`
catches FleetUnavailable without loading the Redis client that only fleet mode uses.
"""

from __future__ import annotations

from gateway.errors import GatewayError

RETRY_AFTER_S = 2


class FleetUnavailable(GatewayError):
    """Redis did not answer in time, or refused: the fleet cannot be consulted right now (a 503 for a client)."""

    def __init__(self, reason: str) -> None:
        super().__init__(503, "fleet_unavailable", f"the fleet's registry cannot be reached ({reason}); calls held "
                         "by other replicas cannot be reached from here", {"Retry-After": str(RETRY_AFTER_S)})
        self.reason = reason
