"""What every connection of one emulator shares: settings, resumption handles, queued faults."""

from __future__ import annotations

import itertools
import random
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import EmulatorConfig, TimingMode
from .conversation import HandleStore
from .wire import UNAVAILABLE, Close

if TYPE_CHECKING:
    from .connection import EmulatedConnection


MAX_CLOSED_KEPT = 200  # closed connections kept for inspection (control API, tests); older ones are forgotten


@dataclass(frozen=True)
class SetupRefusal:
    """A queued `refuse_setup` fault: the next setup is answered with this close instead of setupComplete."""

    close: Close = UNAVAILABLE


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.mode = TimingMode(config.mode)
        self.tool_calls = config.tool_calls
        self.handles = HandleStore()
        self.connections: list[EmulatedConnection] = []
        self.refusals: deque[SetupRefusal] = deque()
        self._connection_ids = itertools.count(1)
        self._lineages = itertools.count(1)

    def add_connection(self, conn: EmulatedConnection) -> None:
        """Track a new connection; forget the oldest closed ones beyond MAX_CLOSED_KEPT, so a long run stays bounded."""
        self.connections.append(conn)
        closed = [c for c in self.connections if not c.is_open]
        if len(closed) > MAX_CLOSED_KEPT:
            forgotten = {id(c) for c in closed[: len(closed) - MAX_CLOSED_KEPT]}
            self.connections = [c for c in self.connections if id(c) not in forgotten]

    def next_connection_id(self) -> int:
        return next(self._connection_ids)

    def new_lineage(self) -> int:
        return next(self._lineages)

    def rng_for(self, connection_id: int) -> random.Random:
        """Per-connection randomness: with a seed, connection N behaves the same in every run."""
        if self.config.seed is None:
            return random.Random()
        return random.Random(f"{self.config.seed}:{connection_id}")

    def take_refusal(self) -> SetupRefusal | None:
        return self.refusals.popleft() if self.refusals else None

    def lineage_in_use(self, lineage: int) -> bool:
        return any(conn.is_open and conn.lineage == lineage for conn in self.connections)
