"""Garbage collection for a long-running gateway: short full passes, often, instead of long ones, rarely.

A call's objects form reference cycles (the call and its event handlers, aiortc's peer connection and its
transports, the downlink and its track), so an ended call is freed by the cyclic collector, not by reference
counting. CPython runs its full pass rarely (about every 3 minutes under 10 churning calls, measured with
tests/bench/soak.py), and it walks every object in the process, about 120,000 of them from the imports alone
(modules, classes, the SDK's pydantic schemas): 60-120 ms on our VM, a stall every call's 20 ms pacing
feels. Meanwhile the ended calls pile up, 30-40 MiB of them, and the allocator keeps the high-water mark:
that was the soak's creep (the heap grew by about 1 MiB a minute while what was in use went up and down).

So the startup objects are moved out of the collector's sight (`gc.freeze()`), and the full pass runs every
COLLECT_EVERY_S: it then walks only what calls made, and at most that long's worth of ended calls is waiting.
After each pass glibc's `malloc_trim(0)` hands the free pages inside the heap back to the kernel: the heap's
size otherwise still creeps with fragmentation while what is in use stays flat.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

log = logging.getLogger(__name__)

COLLECT_EVERY_S = 10.0


async def collected_garbage(app: web.Application) -> AsyncIterator[None]:
    """An aiohttp cleanup context, entered after the others: freeze what startup made, then collect on a timer."""
    gc.collect()
    gc.freeze()
    log.debug("%d startup objects exempted from garbage collection", gc.get_freeze_count())
    task = asyncio.create_task(_collect_every(COLLECT_EVERY_S), name="garbage-collection")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _collect_every(seconds: float) -> None:
    trim = heap_trimmer()
    while True:
        await asyncio.sleep(seconds)
        gc.collect()
        trim()


def heap_trimmer() -> Callable[[], object]:
    """glibc's malloc_trim(0), or a no-op where the C library has none (musl)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        log.info("no malloc_trim in this C library: freed heap pages stay with the process")
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)
