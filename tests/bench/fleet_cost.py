"""`make bench`, fleet phase: what fleet mode (GATEWAY_REDIS_URL) costs a replica.

    .venv/bin/python tests/bench/fleet_cost.py [--calls N] [--seconds S] [--json PATH]
                                                (default JSON: bench-results/fleet.json)

Starts Debian's redis-server, a standalone emulator, and side by side a plain gateway and a fleet-mode one
(plus a second fleet replica, idle, for forwarding), all on 127.0.0.1. Then:
1. CPU per call-second: N calls on each gateway at once, the same talk (utterance/silence cycles), over the same
   window, so the VM's drifting speed affects both alike; redis-server's CPU beside them.
2. Redis round trips: per call over its whole life (create, each handoff change, hang-up), and per second of an
   idle replica (its heartbeat), from the replica's own counter (`gateway_fleet_redis_round_trips`).
3. Follow-up latency: `GET /v1/calls/<id>` to the call's owner and to the other replica (forwarded), p50/p95.
It reports and never gates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: make `tests` importable

from gateway.rtc import restrict_host_addresses  # noqa: E402
from tests.bench.procs import REPO, cpu_seconds, run_interruptible  # noqa: E402
from tests.bench.scenarios import calls, queue_talk  # noqa: E402
from tests.fleet.cluster import Cluster, Program, Replica, healthy  # noqa: E402
from tests.gateway_process import free_port  # noqa: E402

IDLE_S = 5.0
GETS = 200


async def redis_use(url: str) -> tuple[int, int]:
    """(round trips, commands) the replica at `url` has sent to Redis so far."""
    found = {}
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        for line in (await response.text()).splitlines():
            for name in ("round_trips", "commands"):
                if line.startswith(f"gateway_fleet_redis_{name}_total "):
                    found[name] = int(float(line.split()[-1]))
    return found["round_trips"], found["commands"]


async def round_trips(url: str) -> int:
    return (await redis_use(url))[0]


async def timed_gets(urls: dict[str, str], count: int) -> dict[str, dict[str, float]]:
    """GET each of `urls` in turn, `count` times, so that both see the same load; p50 and p95 of each."""
    took: dict[str, list[float]] = {name: [] for name in urls}
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            for name, url in urls.items():
                start = time.perf_counter()
                async with http.get(url) as response:
                    await response.read()
                    assert response.status == 200, response.status
                took[name].append(1000 * (time.perf_counter() - start))
    return {name: {"p50_ms": round(statistics.median(values), 2),
                   "p95_ms": round(sorted(values)[int(0.95 * len(values))], 2)} for name, values in took.items()}


async def measure(cluster: Cluster, plain: Replica, count: int, seconds: float) -> dict[str, Any]:
    fleet, other = cluster.gateways
    assert plain.program and fleet.program and cluster.redis
    pids = {"plain": plain.program.process.pid, "fleet": fleet.program.process.pid,
            "redis": cluster.redis.process.pid}
    idle_before = await round_trips(fleet.url)
    await asyncio.sleep(IDLE_S)
    idle_per_s = (await round_trips(fleet.url) - idle_before) / IDLE_S

    (before_calls, commands_before), since = await redis_use(fleet.url), time.monotonic()
    async with calls(plain.url, count) as plain_calls, calls(fleet.url, count) as fleet_calls:
        for index, caller in enumerate(plain_calls + fleet_calls):
            queue_talk(caller, seconds, seed=index % count)
        cpu_before, start = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - start
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        path = f"/v1/calls/{fleet_calls[0].call_id}"
        forwarding_before, forwarding_since = await round_trips(other.url), time.monotonic()
        latency = await timed_gets({"owner": fleet.url + path, "forwarded": other.url + path}, GETS)
        heartbeats = idle_per_s * (time.monotonic() - forwarding_since)
        per_forward = (await round_trips(other.url) - forwarding_before - heartbeats) / GETS
        life_s = time.monotonic() - start
    await asyncio.sleep(1.0)  # the hang-ups' records are written by the next mirror pass
    after_calls, commands_after = await redis_use(fleet.url)
    idle = idle_per_s * (time.monotonic() - since)  # heartbeats meanwhile: one command each
    call_trips, call_commands = after_calls - before_calls - idle, commands_after - commands_before - idle
    per_call_s = {name: round(1000 * used / (count * elapsed), 1) for name, used in cpu.items() if name != "redis"}
    return {
        "calls": count, "seconds": round(elapsed, 1),
        "cpu_ms_per_call_second": per_call_s,
        "fleet_over_plain": round(per_call_s["fleet"] / per_call_s["plain"], 3),
        "redis_cpu_ms_per_second": round(1000 * cpu["redis"] / elapsed, 1),
        "redis_round_trips_per_call": round(call_trips / count, 1),
        "redis_commands_per_call": round(call_commands / count, 1),
        "redis_round_trips_per_call_minute": round(call_trips / count / (life_s / 60), 1),
        "redis_round_trips_per_idle_replica_second": round(idle_per_s, 2),
        "redis_round_trips_per_forwarded_follow_up": round(per_forward, 2),
        "get_latency": latency,
    }


def print_figures(figures: dict[str, Any]) -> None:
    cpu, lat = figures["cpu_ms_per_call_second"], figures["get_latency"]
    rows = [
        ("gateway CPU per call-second, plain / fleet mode", f"{cpu['plain']} / {cpu['fleet']} ms "
         f"(x{figures['fleet_over_plain']}), {figures['calls']} calls each, {figures['seconds']} s side by side"),
        ("redis-server CPU", f"{figures['redis_cpu_ms_per_second']} ms per second"),
        ("Redis round trips per call (create to hang-up)", f"{figures['redis_round_trips_per_call']} "
         f"({figures['redis_round_trips_per_call_minute']} per call-minute; the calls' writes share them), "
         f"{figures['redis_commands_per_call']} commands"),
        ("Redis round trips of an idle replica", f"{figures['redis_round_trips_per_idle_replica_second']} per second"),
        ("Redis round trips per forwarded follow-up", f"{figures['redis_round_trips_per_forwarded_follow_up']}"),
        ("GET /v1/calls/<id>, owner / forwarded, p50", f"{lat['owner']['p50_ms']} / {lat['forwarded']['p50_ms']} ms "
         f"(p95 {lat['owner']['p95_ms']} / {lat['forwarded']['p95_ms']} ms)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    restrict_host_addresses(["127.0.0.1"])
    workdir = REPO / "bench-results" / "fleet-logs"
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(workdir, replicas=2, env={"GATEWAY_LOG_LEVEL": "WARNING"})
    plain = Replica("gateway-plain", free_port())
    try:
        cluster.start_redis()
        cluster.start_emulator()
        cluster.gateways = [Replica(f"gateway-fleet-{i + 1}", free_port()) for i in range(2)]
        for replica in cluster.gateways:
            await cluster.restart(replica)
        env = {"GATEWAY_PORT": str(plain.port), "GATEWAY_ICE_ADDRESSES": "127.0.0.1", "GATEWAY_LOG_LEVEL": "WARNING",
               "GATEWAY_CALL_RATE_PER_MINUTE": "0", **cluster.live_env}
        plain.program = Program(plain.name, [sys.executable, "-m", "gateway", "serve"], workdir, env)
        while not await asyncio.to_thread(healthy, plain.url):
            await asyncio.sleep(0.1)
        return await measure(cluster, plain, args.calls, args.seconds)
    finally:
        for program in (plain.program,):
            if program is not None:
                program.stop()
        cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path, default=REPO / "bench-results" / "fleet.json")
    arguments = parser.parse_args()
    results = run_interruptible("fleet_cost", main(arguments))
    if results is not None:
        print_figures(results)
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(results, indent=2) + "\n")
