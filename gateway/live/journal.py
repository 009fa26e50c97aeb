"""The caller's audio that no resumption handle covers yet, so a new Live connection can be given all of it.

A handle is a snapshot of the conversation when the server issued it. Audio sent after that moment is not in
the snapshot: if the connection then drops, or we move to a new one, that audio is replayed to the new
connection. Audio that arrives while no connection is up waits here too. Nothing the caller said is lost,
within the bound (the oldest audio goes first, and is counted).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)

BYTES_PER_SECOND = 16_000 * 2  # 16 kHz s16le mono


@dataclass
class Chunk:
    pcm: bytes
    captured_at: float  # monotonic time the newest audio in it left the caller's decoder
    sent: bool = False  # written to a Live connection at least once (a replay is not a new send)


class UplinkJournal:
    def __init__(self, max_s: float = 30.0) -> None:
        self._chunks: deque[Chunk] = deque()
        self._bytes = 0
        self._max_bytes = int(max_s * BYTES_PER_SECOND)
        self._next = 0  # index of the next chunk to send on the current connection
        self._ready = asyncio.Event()
        self.dropped_bytes = 0

    def append(self, pcm: bytes, captured_at: float) -> None:
        """New caller audio (16 kHz s16le). Never blocks."""
        self._chunks.append(Chunk(pcm, captured_at))
        self._bytes += len(pcm)
        while self._bytes > self._max_bytes:
            oldest = self._chunks.popleft()
            self._bytes -= len(oldest.pcm)
            if self.dropped_bytes == 0:
                log.warning("uplink journal full: dropping the oldest unsent or uncovered audio")
            self.dropped_bytes += len(oldest.pcm)
            self._next = max(0, self._next - 1)
        self._ready.set()

    def checkpoint(self) -> None:
        """A resumable handle arrived on the current connection: what was sent so far is in its snapshot."""
        for _ in range(self._next):
            self._bytes -= len(self._chunks.popleft().pcm)
        self._next = 0

    def rewind(self) -> None:
        """A new connection took over: everything since the last checkpoint must be sent again."""
        self._next = 0
        if self._chunks:
            self._ready.set()

    async def next_chunk(self) -> Chunk:
        """The next chunk to send on the current connection, waiting for one if needed."""
        while self._next >= len(self._chunks):
            self._ready.clear()
            await self._ready.wait()
        chunk = self._chunks[self._next]
        self._next += 1
        return chunk

    @property
    def pending_s(self) -> float:
        """Audio queued but not yet sent on the current connection."""
        unsent = sum(len(c.pcm) for c in list(self._chunks)[self._next :])
        return unsent / BYTES_PER_SECOND
