"""A rolling restart of every replica, with calls in progress, loses no conversation: each draining replica
tells its callers to `migrate`, their resumes reach the other replicas, which take the calls over."""

from __future__ import annotations

import asyncio
import signal

import pytest

from gateway.client.caller import Caller
from gateway.client.signals import speech_like
from tests.fixtures import answered
from tests.fleet.cluster import Cluster
from tests.fleet.conftest import fleet_requests
from tests.fleet.test_takeover import replies
from tests.integration.test_call import say_and_hear_reply

pytestmark = pytest.mark.fleet

# A drain that did not move its calls would end them with `server_shutdown` long before the test's patience ends.
FLEET_ENV = {"GATEWAY_DRAIN_SECONDS": "20"}


async def everyone_talks(callers: list[Caller], seed: int) -> None:
    await asyncio.gather(*(say_and_hear_reply(c, speech_like(0.7, seed=seed + i)) for i, c in enumerate(callers)))


async def test_a_rolling_restart_of_all_replicas_loses_no_conversation(cluster: Cluster, callers) -> None:
    calls = [await answered(callers()) for _ in range(3)]
    await everyone_talks(calls, seed=50)

    takeovers = 0  # counted by each replica until it restarts, and by every replica since
    for turn, replica in enumerate(cluster.gateways, start=2):
        assert replica.program is not None
        takeovers += (await fleet_requests(cluster))[replica.name]["takeover"]
        replica.program.signal(signal.SIGTERM)
        assert await replica.program.exited(timeout=15) == 0, replica.program.log()[-3000:]
        await cluster.restart(replica)
        for caller in calls:
            await asyncio.wait_for(caller.connected.wait(), 10)
        await everyone_talks(calls, seed=50 + 10 * turn)
        for caller in calls:
            assert replies(caller) == [f"reply {n}" for n in range(1, turn + 1)], "the conversation should go on"

    for caller in calls:
        assert not caller.of_type("ended"), caller.of_type("ended")
        assert caller.resume_failure is None
    assert sum(c.resumes for c in calls) >= 3, "every replica held a call when it restarted"
    takeovers += sum(counts["takeover"] for counts in (await fleet_requests(cluster)).values())
    assert takeovers == sum(c.resumes for c in calls), "each migration is a takeover by another replica"
