"""What the emulated model remembers, and the resumption handles that snapshot it."""

from __future__ import annotations

import copy
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

HANDLE_TTL_S = 2 * 3600.0  # "tokens valid 2 h after the last session terminates" (live-session docs)
MAX_HANDLES = 100_000  # oldest handles are forgotten beyond this, so a long-running emulator stays bounded


@dataclass
class Conversation:
    """The state a resumption handle carries. `turn` counts model replies and is what "reply N" shows."""

    turn: int = 0
    audio_in_samples: int = 0  # 16 kHz samples of user audio in this conversation's lineage
    history: list[dict[str, Any]] = field(default_factory=list)  # Content dicts, role user|model

    def record(self, role: str, text: str) -> None:
        self.history.append({"role": role, "parts": [{"text": text}]})

    def seed(self, turns: list[dict[str, Any]]) -> None:
        """Add turns from `clientContent` (turnComplete false); the counter follows the model turns."""
        self.history.extend(copy.deepcopy(turns))
        self.turn = sum(1 for content in self.history if content.get("role") == "model")

    def snapshot(self) -> Conversation:
        return copy.deepcopy(self)


@dataclass(frozen=True)
class _Entry:
    snapshot: Conversation
    lineage: int  # which conversation this is, across reconnections
    expires_at: float


class HandleStore:
    """Emulator-wide handles. A handle is an immutable snapshot and may be used any number of times."""

    def __init__(self, ttl_s: float = HANDLE_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def issue(self, conversation: Conversation, lineage: int) -> str:
        now = self._clock()
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.expires_at > now and len(self._entries) < MAX_HANDLES:
                break
            self._entries.popitem(last=False)
        handle = secrets.token_urlsafe(24)
        self._entries[handle] = _Entry(conversation.snapshot(), lineage, now + self._ttl_s)
        return handle

    def restore(self, handle: str) -> tuple[Conversation, int] | None:
        """A fresh copy of the conversation behind `handle` and its lineage; None if unknown or expired."""
        entry = self._entries.get(handle)
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry.snapshot.snapshot(), entry.lineage

    def expire_all(self) -> None:
        """Forget every handle, as if their 2 hours had passed."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
