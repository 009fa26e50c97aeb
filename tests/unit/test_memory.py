"""The gateway's garbage collection: the startup objects are frozen out of every pass, and the full pass runs on
a timer (then the heap is trimmed), so the cycles an ended call leaves are freed within COLLECT_EVERY_S even
with automatic collection off.

Run in a child process: freezing is process-wide, and the test process's own leak checks walk gc.get_objects().
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import asyncio, gc, json, weakref
from aiohttp import web
import gateway.app
from gateway import memory

memory.COLLECT_EVERY_S = 0.2

class Node:
    pass

async def main():
    app = web.Application()
    app.cleanup_ctx.append(memory.collected_garbage)
    runner = web.AppRunner(app)
    await runner.setup()  # enters the cleanup contexts, as run_app does at startup
    frozen, walked = gc.get_freeze_count(), len(gc.get_objects())
    gc.disable()  # from here on only the timer collects
    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    await asyncio.sleep(0.6)
    collected = alive() is None
    await runner.cleanup()
    trimmed = memory.heap_trimmer()()  # glibc: 1 if it gave pages back, 0 if none were free
    print(json.dumps({"frozen": frozen, "walked": walked, "collected": collected, "trimmed": trimmed}))

asyncio.run(main())
"""


def test_startup_objects_are_frozen_and_a_timer_collects_what_calls_leave() -> None:
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    figures = json.loads(result.stdout)
    assert figures["frozen"] > 50_000, "the gateway's imports should be tens of thousands of objects"
    assert figures["walked"] < 5_000, "a full collection still walks the startup objects"
    assert figures["collected"], "a reference cycle was still there after three timer periods"
    assert figures["trimmed"] in (0, 1, None), "malloc_trim answers 0 or 1 (None: a C library without it)"
