"""Redis faults: unreachable at start (a clear error, exit), stalled or lost while running (calls in progress go
on, follow-ups for other replicas' calls get a clear 503 instead of hanging, and all is well once it is back)."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import pytest

from gateway.client.signals import speech_like
from gateway.fleet.registry import Registry
from tests.fixtures import answered
from tests.fleet.cluster import Cluster, Program
from tests.gateway_process import free_port
from tests.fleet.test_takeover import owner_of
from tests.integration.test_call import say_and_hear_reply

pytestmark = pytest.mark.fleet

ANSWERED_WITHIN_S = 10.0  # "does not hang": far beyond the registry's 1 s deadline per command


async def status_and_code(http: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    async with asyncio.timeout(ANSWERED_WITHIN_S), http.get(url) as response:
        body = await response.json()
        return response.status, body.get("error", {}).get("code")


async def test_a_gateway_whose_redis_is_unreachable_says_so_and_exits(cluster: Cluster) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    env = {**cluster.live_env, "GATEWAY_PORT": str(free_port()), "GATEWAY_REDIS_URL": nobody}
    gateway = Program("gateway-no-redis", [sys.executable, "-m", "gateway", "serve"], cluster.workdir, env)
    try:
        assert await gateway.exited(timeout=20) == 1
        assert "gateway: cannot join the fleet: Redis did not answer" in gateway.log()
    finally:
        gateway.stop()


async def test_a_stalled_redis_leaves_calls_going_and_foreign_follow_ups_get_503_until_it_is_back(
    cluster: Cluster, callers, registry: Registry
) -> None:
    caller = await answered(callers())
    owner = await owner_of(cluster, registry, caller.call_id)
    other = next(r for r in cluster.gateways if r is not owner)
    assert cluster.redis is not None
    cluster.redis.signal(signal.SIGSTOP)  # accepts connections, answers nothing: the harder case
    try:
        async with aiohttp.ClientSession() as http:
            assert await status_and_code(http, f"{other.url}/v1/calls/{caller.call_id}") == (503, "fleet_unavailable")
            assert await status_and_code(http, f"{owner.url}/v1/calls/{caller.call_id}") == (200, None)
            await say_and_hear_reply(caller, speech_like(0.7, seed=61))  # the call goes on
    finally:
        cluster.redis.signal(signal.SIGCONT)
    async with aiohttp.ClientSession() as http, asyncio.timeout(ANSWERED_WITHIN_S):
        while await status_and_code(http, f"{other.url}/v1/calls/{caller.call_id}") != (200, None):
            await asyncio.sleep(0.2)


async def test_a_redis_restarted_empty_gets_every_call_of_every_replica_back(
    cluster: Cluster, callers
) -> None:
    calls = [await answered(callers()) for _ in range(3)]
    assert cluster.redis is not None
    cluster.redis.stop()
    cluster.start_redis()  # the same port, no data: the replicas' heartbeats write their calls again
    async with aiohttp.ClientSession() as http, asyncio.timeout(ANSWERED_WITHIN_S):
        for caller in calls:
            for replica in cluster.gateways:
                while await status_and_code(http, f"{replica.url}/v1/calls/{caller.call_id}") != (200, None):
                    await asyncio.sleep(0.2)
    for caller in calls:
        await say_and_hear_reply(caller, speech_like(0.6, seed=62))
