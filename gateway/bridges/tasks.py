"""Small asyncio helpers the bridge's pieces share."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine
from typing import Any


async def first_of(*coros: Coroutine[Any, Any, Any]) -> int:
    """Run `coros` together until one returns (or raises); cancel and await the others. Returns which one
    finished first (its index); its exception, if any, propagates."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    first = next(i for i, task in enumerate(tasks) if task in done)
    if not tasks[first].cancelled() and tasks[first].exception() is not None:
        raise tasks[first].exception()  # type: ignore[misc]
    return first


class Backoff:
    """Exponential backoff with jitter for reconnects: 0.5 s doubling to `cap_s`, reset after a success."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 5.0) -> None:
        self._first_s = first_s
        self._cap_s = cap_s
        self._next_s = first_s

    def reset(self) -> None:
        self._next_s = self._first_s

    async def wait(self) -> None:
        delay = self._next_s * random.uniform(0.8, 1.2)
        self._next_s = min(self._next_s * 2, self._cap_s)
        await asyncio.sleep(delay)
