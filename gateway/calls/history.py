"""What a call has said: its events, the newest `size` of them kept, and the readers following it live.

This feeds the server-side stream (`GET /v1/calls/<id>/events`): a reader gets the history, then every event
as it is sent, exactly as the data channel carries them. The history is a plain list of JSON-able dicts, so a
call's record can be stored and moved. A reader that falls READER_LIMIT events behind is cut off (it may
reconnect and read the history again) rather than holding memory for ever.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Iterable
from typing import Any

READER_LIMIT = 1000

Event = dict[str, Any]


class Reader:
    """One follower of the stream: events as (dict, compact JSON), waiting in a bounded queue."""

    def __init__(self, history: EventHistory) -> None:
        self._history = history
        self._pending: deque[tuple[Event, str]] = deque()
        self._arrived = asyncio.Event()
        self.lagging = False

    def push(self, event: Event, message: str) -> None:
        if len(self._pending) >= READER_LIMIT:
            self.lagging = True
            self._pending.clear()
            self.close()
        else:
            self._pending.append((event, message))
        self._arrived.set()

    async def next(self, timeout_s: float) -> tuple[Event, str] | None:
        """The next event, or None if none came within `timeout_s` or the reader was cut off."""
        if not self._pending and not self.lagging:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout_s)
            except TimeoutError:
                return None
        return self._pending.popleft() if self._pending else None

    def close(self) -> None:
        self._history.readers.discard(self)

    def push_nothing(self) -> None:
        """Wake the stream's writer (it finds the reader cut off)."""
        self._arrived.set()


class EventHistory:
    def __init__(self, size: int) -> None:
        self._events: deque[tuple[Event, str]] = deque(maxlen=max(0, size))
        self.readers: set[Reader] = set()
        self.added = 0  # events ever added (fleet mode mirrors the new ones)

    @property
    def events(self) -> list[Event]:
        return [event for event, _ in self._events]

    @property
    def messages(self) -> list[str]:
        """The events as the compact JSON the data channel carried."""
        return [message for _, message in self._events]

    def add(self, event: Event, message: str) -> None:
        self.added += 1
        self._events.append((event, message))
        for reader in list(self.readers):
            reader.push(event, message)

    def newest(self, count: int) -> list[str]:
        """The newest `count` events (as many as are kept, if fewer), oldest first, as compact JSON."""
        return [message for _, message in itertools.islice(reversed(self._events), count)][::-1]

    def restore(self, messages: Iterable[str]) -> None:
        """The history of the same call on another replica (before anyone reads it here)."""
        for message in messages:
            self.add(json.loads(message), message)

    def cut_off(self) -> None:
        """End every reader's stream without `ended`: the call goes on on another replica, read it there."""
        for reader in list(self.readers):
            reader.lagging = True
            reader.close()
            reader.push_nothing()

    def follow(self) -> tuple[list[tuple[Event, str]], Reader]:
        """The history so far and a reader for what comes next: nothing lost or repeated between the two."""
        reader = Reader(self)
        self.readers.add(reader)
        return list(self._events), reader
