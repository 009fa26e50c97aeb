"""`make soak`: does the gateway grow (memory, file descriptors, threads) as calls come and go for a long time?

    .venv/bin/python tests/bench/soak.py [--minutes 10] [--calls 10] [--call-seconds 60] [--live-lifetime 45]

Memory growth is a known plague of Python voice gateways (landscape.md pain point 10: unconsumed aiortc tracks,
unbounded queues, ~1 MB/min of native growth per Gemini Live session). Here a `gateway serve` process talks to
an emulator that sends goAway every `--live-lifetime` seconds, so Live handovers happen throughout. `--calls`
slots each place a call that talks in utterance/silence cycles for 0.5-1.5 x `--call-seconds`, hang up and
place the next. Every 30 s the gateway's RSS, open file descriptors and threads are printed. At the end, with
every call ended: RSS, descriptors and threads against the idle gateway after its warm-up call, and the RSS
slope over the second half of the run. It reports and never gates; figures go to bench-results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: make `tests.bench` importable

from gateway.client.caller import CallRefused  # noqa: E402
from gateway.rtc import restrict_host_addresses  # noqa: E402
from tests.bench import phases, scenarios  # noqa: E402
from tests.bench.phases import progress  # noqa: E402
from tests.bench.procs import REPO, Processes, Server, run_interruptible  # noqa: E402

SAMPLE_EVERY_S = 30.0
SEED = 3


def footprint(server: Server) -> dict[str, float]:
    """RSS (MiB), open file descriptors and threads of a server process, from /proc."""
    status = Path(f"/proc/{server.pid}/status").read_text()
    threads = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:"))
    return {"rss_mib": round(server.rss_mib(), 1), "fds": len(os.listdir(f"/proc/{server.pid}/fd")),
            "threads": threads}


async def gateway_counters(url: str) -> dict[str, float]:
    """The gateway's own counters from /metrics: calls created and ended, Live handovers and reconnects."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    counters: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                counters[sample.name.removeprefix("gateway_").removesuffix("_total")] += sample.value
    return dict(counters)


async def call_slot(url: str, slot: int, until: float, call_s: float, tally: Counter[str]) -> None:
    """Place calls one after another until `until`, each talking for about `call_s`."""
    rng = random.Random(SEED + slot)
    for number in itertools.count():
        seconds = min(call_s * rng.uniform(0.5, 1.5), until - time.monotonic())
        if seconds < 5:
            return
        try:
            async with scenarios.calls(url, 1) as (caller,):
                scenarios.queue_talk(caller, seconds, seed=slot * 1000 + number)
                await asyncio.sleep(seconds)
                tally["replies"] += len(caller.of_type("turn_complete"))
                tally["errors_seen_by_callers"] += len(caller.of_type("error"))
            tally["calls"] += 1
        except (CallRefused, aiohttp.ClientError, OSError, TimeoutError) as exc:
            tally["failed_calls"] += 1
            progress(f"slot {slot}: call failed: {type(exc).__name__}: {exc}")


async def soak(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    restrict_host_addresses(["127.0.0.1"])
    async with Processes(log_dir) as procs:
        emulator = await procs.emulator("burst", SEED, lifetime_s=args.live_lifetime)
        gateway = await procs.gateway(emulator)
        await phases.warm_up(gateway)
        idle = footprint(gateway)
        progress(f"idle after warm-up: {idle}; {args.calls} call slots for {args.minutes:g} min")
        began = time.monotonic()
        until = began + 60 * args.minutes
        tally: Counter[str] = Counter()
        slots = asyncio.gather(*(call_slot(gateway.url, n, until, args.call_seconds, tally) for n in range(args.calls)))
        samples = []
        while True:
            await asyncio.wait([slots], timeout=SAMPLE_EVERY_S)
            if slots.done():
                break
            sample = {"minute": round((time.monotonic() - began) / 60, 2), **footprint(gateway),
                      "calls_placed": tally["calls"]}
            samples.append(sample)
            progress(f"{sample}")
        await slots
        await phases.wait_for_no_calls(gateway.url)
        await asyncio.sleep(2)  # let closed sockets and finished threads go
        final = footprint(gateway)
        counters = await gateway_counters(gateway.url)
    half = [s for s in samples if s["minute"] >= args.minutes / 2]
    slope = float(np.polyfit([s["minute"] for s in half], [s["rss_mib"] for s in half], 1)[0]) if len(half) > 2 else None
    return {
        "minutes": args.minutes, "call_slots": args.calls, "call_seconds": args.call_seconds,
        "live_lifetime_s": args.live_lifetime, "callers": dict(tally), "gateway_counters": counters,
        "idle_after_warm_up": idle, "idle_at_end": final,
        "growth": {key: round(final[key] - idle[key], 1) for key in idle},
        "rss_slope_second_half_mib_per_min": None if slope is None else round(slope, 3),
        "peak_rss_mib": max(s["rss_mib"] for s in samples), "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long calls keep coming (default 10)")
    parser.add_argument("--calls", type=int, default=10, help="concurrent call slots (default 10)")
    parser.add_argument("--call-seconds", type=float, default=60.0, help="mean call length (default 60)")
    parser.add_argument("--live-lifetime", type=float, default=45.0,
                        help="the emulator's connection lifetime: a Live handover this often per call (default 45)")
    parser.add_argument("--json", type=Path, default=REPO / "bench-results" / "soak.json", help="where to write")
    args = parser.parse_args()
    results = run_interruptible("soak", soak(args, args.json.parent / "logs"))
    if results is None:
        return 130
    results["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    summary = {k: v for k, v in results.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    print(f"figures in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
