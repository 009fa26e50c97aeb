"""On a gateway with API tokens, what a replica answers from the registry itself (a call whose replica is gone)
is checked like any other request; a forwarded one is checked by the replica that holds the call."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.fleet.registry import Registry
from tests.fixtures import answered
from tests.fleet.cluster import Cluster
from tests.fleet.test_takeover import owner_killed

pytestmark = pytest.mark.fleet

TOKEN = "fleet-api-token-1"
FLEET_ENV = {"GATEWAY_API_TOKENS": TOKEN}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def test_follow_ups_need_the_api_token_whether_forwarded_or_answered_from_the_registry(
    cluster: Cluster, callers, registry: Registry
) -> None:
    caller = await answered(callers(token=TOKEN))
    async with aiohttp.ClientSession() as http:
        for replica in cluster.gateways:  # forwarded or not, the owner checks the credential
            url = f"{replica.url}/v1/calls/{caller.call_id}"
            async with http.get(url) as response:
                assert response.status == 401
            async with http.get(url, headers={"Authorization": "Bearer wrong"}) as response:
                assert response.status == 403
            async with http.get(url, headers=BEARER) as response:
                assert response.status == 200
        await caller.drop()
        async with owner_killed(cluster, registry, caller.call_id):
            url = f"{cluster.lb_url}/v1/calls/{caller.call_id}"
            async with http.get(url, headers=BEARER) as response:  # waits for the heartbeat to expire
                assert (response.status, (await response.json())["state"]) == (200, "detached")
            async with http.get(url) as response:
                assert response.status == 401
            async with http.delete(url) as response:
                assert response.status == 401
            async with http.delete(url, headers=BEARER) as response:
                assert response.status == 204
            async with http.get(url) as response:
                assert response.status == 401
            async with http.get(url, headers=BEARER) as response:
                assert (response.status, (await response.json())["state"]) == (200, "ended")
    caller.call_id = None
