"""What each client token has done: how many calls it created (for `max_calls`) and which they are.

`TokenUses` is the interface; `LocalTokenUses` keeps it in this process, which is exact for one gateway. Behind
a load balancer each replica counts on its own (a token could create `max_calls` calls on each, and follow up
only on the replica that holds its call) until a shared store backs the same interface. Entries live as long
as their token and no longer: past its expiry a token is refused before its uses are consulted.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

MAX_TOKENS = 100_000


class TokenUses(Protocol):
    async def claim(self, token_id: str, max_calls: int, expires_at: float) -> bool:
        """Spend one of the token's calls; False when all `max_calls` are spent."""

    async def release(self, token_id: str) -> None:
        """Give back a call claimed for a request that created none."""

    async def bind(self, token_id: str, call_id: str) -> None:
        """The claimed call was created: `call_id` is the token's."""

    async def owns(self, token_id: str, call_id: str) -> bool:
        """Did this token create that call?"""


@dataclass
class _Uses:
    expires_at: float
    claimed: int = 0
    calls: set[str] = field(default_factory=set)


class LocalTokenUses:
    """In-process `TokenUses`: bounded (`max_tokens`), each entry forgotten once its token expires."""

    def __init__(self, max_tokens: int = MAX_TOKENS, clock: Callable[[], float] = time.time) -> None:
        self.max_tokens = max_tokens
        self._clock = clock
        self._uses: dict[str, _Uses] = {}
        self._expiries: list[tuple[float, str]] = []  # a heap, to forget expired tokens in order

    def __len__(self) -> int:
        return len(self._uses)

    async def claim(self, token_id: str, max_calls: int, expires_at: float) -> bool:
        self._forget_expired()
        uses = self._uses.get(token_id)
        if uses is None:
            uses = self._uses[token_id] = _Uses(expires_at)
            heapq.heappush(self._expiries, (expires_at, token_id))
            self._keep_bound()
        if uses.claimed >= max_calls:
            return False
        uses.claimed += 1
        return True

    async def release(self, token_id: str) -> None:
        uses = self._uses.get(token_id)
        if uses is not None and uses.claimed > len(uses.calls):
            uses.claimed -= 1

    async def bind(self, token_id: str, call_id: str) -> None:
        uses = self._uses.get(token_id)
        if uses is not None:
            uses.calls.add(call_id)

    async def owns(self, token_id: str, call_id: str) -> bool:
        uses = self._uses.get(token_id)
        return uses is not None and call_id in uses.calls

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            _, token_id = heapq.heappop(self._expiries)
            self._uses.pop(token_id, None)

    def _keep_bound(self) -> None:
        """Beyond the bound, forget the token nearest its expiry (the least use is left in it)."""
        while len(self._uses) > self.max_tokens:
            _, token_id = heapq.heappop(self._expiries)
            self._uses.pop(token_id, None)
            log.warning("client token uses: over %d tokens at once; forgot the one expiring first", self.max_tokens)
