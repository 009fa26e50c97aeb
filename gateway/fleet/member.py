"""One replica's membership of the fleet: its heartbeat, and the mirror of its calls' handoffs in Redis.

The member knows nothing of calls beyond a few callables (`CallsView`): the handoffs of the calls in progress
(JSON), their events histories, the final snapshot and history of one that ended, and `lost(call_id)` for a call another
replica has taken over. Every 100 ms the mirror writes what changed (new events, a changed handoff; one round
trip for all calls); every second the heartbeat says the replica is up, with its load, keeps its calls'
records from expiring, and learns which calls it no longer owns. When
Redis is unreachable both go on trying, the calls go on, and nothing waits longer than a command's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.fleet.forward import Forwarder
from gateway.fleet import FleetUnavailable
from gateway.fleet.registry import REPLICA_TTL_S, CallChange, Final, Registry, Replica

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
MIRROR_S = 0.1

Handoffs = Callable[[], Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class CallsView:
    """What the member may see and do of this replica's calls."""

    handoffs: Handoffs  # call id -> JSON handoff, for every call in progress
    events_sent: Callable[[str], int]  # how many events a call has sent so far
    newest_events: Callable[[str, int], list[str]]  # a call's newest n events (fewer if it keeps fewer), as JSON
    final: Callable[[str], Final | None]  # an ended call's snapshot and history, if it is remembered
    lost: Callable[[str], object]  # another replica owns this call now: stop it here
    load: Callable[[], tuple[int, bool]]  # (calls in progress, draining)


class FleetMember:
    def __init__(self, registry: Registry, url: str, max_calls: int, *, grace_s: float, keep_ended_s: float,
                 history_size: int) -> None:
        self.registry = registry
        self.id = registry.replica_id
        self.url = url
        self.forwarder = Forwarder(registry.secret)
        self.requests: Counter[str] = Counter()  # follow-ups by route (local, forwarded, received, takeover...)
        self.call_ttl_s = grace_s + REPLICA_TTL_S  # a dead owner's callers get the whole grace window
        self.keep_ended_s = keep_ended_s
        self._max_calls = max_calls
        self._calls: CallsView | None = None
        self._history_size = history_size
        self._written: dict[str, Mapping[str, Any]] = {}  # what Redis holds for each call of ours
        self._events_written: dict[str, int] = {}  # how many of each call's events
        self._tasks: list[asyncio.Task[None]] = []
        self._mirroring = asyncio.Lock()  # one write of changes at a time, or two could append the same events
        self._reachable = True

    @classmethod
    async def join(cls, redis_url: str, url: str, max_calls: int, *, grace_s: float, keep_ended_s: float,
                   history_size: int) -> FleetMember:
        """Reach Redis (FleetUnavailable if it does not answer) as a new replica with an id of its own."""
        replica_id = f"{socket.gethostname()}-{secrets.token_hex(3)}"
        registry = await Registry.connect(redis_url, replica_id)
        member = cls(registry, url, max_calls, grace_s=grace_s, keep_ended_s=keep_ended_s, history_size=history_size)
        log.info("fleet: replica %s at %s joined", replica_id, url)
        return member

    def start(self, calls: CallsView) -> None:
        """Begin the heartbeat and the mirror of `calls`."""
        self._calls = calls
        self._tasks = [asyncio.create_task(self._every(HEARTBEAT_S, self.heartbeat), name="fleet-heartbeat"),
                       asyncio.create_task(self._every(MIRROR_S, self.mirror), name="fleet-mirror")]

    async def stop(self) -> None:
        """Write the last changes (the calls that ended), leave the fleet, close the connections."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            if self._calls is not None:
                await self.mirror()
            await self.registry.leave()
        except FleetUnavailable as exc:
            log.warning("fleet: could not leave cleanly: %s", exc.reason)
        await self.forwarder.close()
        await self.registry.close()

    def me(self) -> Replica:
        assert self._calls is not None
        calls, draining = self._calls.load()
        return Replica(self.id, self.url, calls, self._max_calls, draining)

    async def heartbeat(self) -> None:
        lost, missing = await self.registry.heartbeat(self.me(), list(self._written), self.call_ttl_s)
        for call_id in missing:  # Redis lost the record (a restart without persistence): write it again
            self._forget(call_id)
        self._lose(lost)

    async def mirror(self, only: str | None = None) -> None:
        """Write what changed since the last write (handoffs, new events), and mark the calls that ended."""
        async with self._mirroring:
            await self._mirror(only)

    async def _mirror(self, only: str | None) -> None:
        assert self._calls is not None
        current = {i: h for i, h in self._calls.handoffs().items() if only in (None, i)}
        changes = {i: change for i, h in current.items() if (change := self._change(i, h)) is not None}
        ended = {i: self._calls.final(i) for i in self._written if i not in current and only in (None, i)}
        if not changes and not ended:
            return
        lost = await self.registry.publish(changes, self.call_ttl_s, self._history_size, ended, self.keep_ended_s)
        for call_id, change in changes.items():
            self._written[call_id] = current[call_id]
            self._events_written[call_id] = change.upto
        for call_id in ended:
            self._forget(call_id)
        self._lose(lost)

    def _change(self, call_id: str, handoff: Mapping[str, Any]) -> CallChange | None:
        """What to write for a call: nothing, or its handoff if changed and its new events. A call not written
        yet (new, taken over, or lost by Redis) gets its whole history."""
        assert self._calls is not None
        total = self._calls.events_sent(call_id)
        if call_id not in self._written:
            return CallChange(handoff, self._calls.newest_events(call_id, self._history_size), total, replace=True)
        new = total - self._events_written[call_id]
        changed = self._written[call_id] != handoff
        if not changed and not new:
            return None
        whole = new >= self._history_size  # more came than the history keeps: write it whole
        events = self._calls.newest_events(call_id, self._history_size if whole else new)
        return CallChange(handoff if changed else None, events, total, replace=whole)

    def _forget(self, call_id: str) -> None:
        self._written.pop(call_id, None)
        self._events_written.pop(call_id, None)

    async def publish(self, call_id: str) -> None:
        """Write one call's handoff now (a new call, or a new resume token), so that every replica knows it
        before its answer leaves; if Redis is away, the mirror writes it later."""
        try:
            await self.mirror(only=call_id)
        except FleetUnavailable as exc:
            log.warning("call %s: not yet in the fleet registry: %s", call_id, exc.reason)

    async def peer_with_room(self) -> Replica | None:
        """The least loaded other replica that takes calls, if any."""
        peers = [r for r in await self.registry.replicas() if r.id != self.id and r.has_room]
        return min(peers, key=lambda r: r.calls / max(1, r.max_calls), default=None)

    def _lose(self, lost: list[str]) -> None:
        assert self._calls is not None
        for call_id in lost:
            log.info("call %s: another replica has taken it over", call_id)
            self._forget(call_id)
            self._calls.lost(call_id)

    async def _every(self, period_s: float, step: Callable[[], Any]) -> None:
        while True:
            try:
                await step()
                if not self._reachable:
                    log.info("fleet: Redis answers again")
                self._reachable = True
            except FleetUnavailable as exc:
                if self._reachable:
                    log.warning("fleet: %s; calls in progress go on, follow-ups for other replicas' calls get 503",
                                exc.reason)
                self._reachable = False
            await asyncio.sleep(period_s)
