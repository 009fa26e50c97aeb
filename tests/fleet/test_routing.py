"""Three replicas behind HAProxy round-robin: every follow-up of every call reaches the replica that holds it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import aiohttp
import pytest

from gateway.api.fleet import REPLICA_HEADER
from gateway.client.signals import speech_like
from gateway.fleet.registry import Registry
from tests.fixtures import answered
from tests.fleet.cluster import Cluster
from tests.fleet.conftest import fleet_requests, sse_events
from tests.integration.test_call import say_and_hear_reply

pytestmark = pytest.mark.fleet

# Client tokens signed with a key every replica shares (an open API otherwise: the other tests send none).
FLEET_ENV = {"GATEWAY_TOKEN_KEYS": "fleet-test:9c2b6f0e5e8a4c1d9f7b3a2e6d4c8b1a"}
SDPFRAG = {"Content-Type": "application/trickle-ice-sdpfrag"}
FRAGMENT = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"


async def test_every_follow_up_of_every_call_reaches_its_owner(cluster: Cluster, callers, registry: Registry) -> None:
    calls = [await answered(callers()) for _ in range(3)]
    owners = {c.call_id: (await registry.lookup(c.call_id)).owner_id for c in calls}
    assert len(set(owners.values())) > 1, "round-robin should have placed the calls on different replicas"
    before = await fleet_requests(cluster)
    answered_by: Counter[bool] = Counter()
    sent = 0
    async with aiohttp.ClientSession() as http:
        for caller in calls:
            url = f"{cluster.lb_url}/v1/calls/{caller.call_id}"
            for _ in range(4):
                async with http.get(url) as response:
                    assert response.status == 200, await response.text()
                    assert (await response.json())["call_id"] == caller.call_id
                    answered_by[response.headers[REPLICA_HEADER] == owners[caller.call_id]] += 1
                async with http.patch(url, data=FRAGMENT, headers=SDPFRAG) as response:
                    assert response.status == 204, await response.text()
                    answered_by[response.headers[REPLICA_HEADER] == owners[caller.call_id]] += 1
                sent += 2
            sent += 2
            answered_by[await typed_text_through_the_events_api(http, url, owners[caller.call_id])] += 2
    assert answered_by == {True: sent}, "every follow-up must be answered by the call's owner"

    after = await fleet_requests(cluster)
    delta = {name: after[name] - before[name] for name in after}
    total = lambda route: sum(d[route] for d in delta.values())  # noqa: E731
    assert total("local") + total("received") == sent, delta
    assert total("forwarded") == total("received") > 0, delta

    for caller in calls:  # the conversations are undisturbed, and the callers' own hang-ups work
        await say_and_hear_reply(caller, speech_like(0.6, seed=4))
    async with aiohttp.ClientSession() as http:
        for caller in calls:
            async with http.delete(f"{cluster.lb_url}/v1/calls/{caller.call_id}") as response:
                assert response.status == 204
            async with http.get(f"{cluster.lb_url}/v1/calls/{caller.call_id}") as response:
                assert response.status == 200
                assert (await response.json())["state"] == "ended"
            async with http.get(f"{cluster.lb_url}/v1/calls/{caller.call_id}/events") as response:
                events = sse_events(await response.text())
                assert events[0]["type"] == "ready" and events[-1] == {"type": "ended", "reason": "hangup"}
            caller.call_id = None


async def typed_text_through_the_events_api(http: aiohttp.ClientSession, url: str, owner: str) -> bool:
    """Read the call's event stream and type through its control endpoint: the reply's transcript must come
    down the stream as it happens (a forwarded stream is streamed, not buffered). True if the owner answered both."""
    async with http.get(f"{url}/events") as stream:
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        async with http.post(f"{url}/events", json={"type": "text", "text": "hello"}) as control:
            assert control.status == 204, await control.text()
        async with asyncio.timeout(10):
            async for line in stream.content:
                if line.startswith(b"data: ") and (event := json.loads(line[6:]))["type"] == "transcript":
                    if event["role"] == "model" and event["final"] and event["text"].endswith('"hello"'):
                        break
        return stream.headers[REPLICA_HEADER] == owner == control.headers[REPLICA_HEADER]


async def test_a_client_token_counts_and_reaches_its_call_on_every_replica(cluster: Cluster, callers) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{cluster.lb_url}/v1/tokens", json={"max_calls": 1}) as response:
            assert response.status == 201, await response.text()
            token = (await response.json())["token"]
        caller = await answered(callers(token=token))
        bearer = {"Authorization": f"Bearer {token}"}
        for replica in cluster.gateways:  # each replica sees the token's call as the token's, forwarding or not
            async with http.get(f"{replica.url}/v1/calls/{caller.call_id}", headers=bearer) as response:
                assert response.status == 200, await response.text()
        refused = []
        for replica in cluster.gateways:  # and counts its one call, wherever it was made
            async with http.post(f"{replica.url}/v1/calls", headers=bearer,
                                 json={"type": "offer", "sdp": caller.pc.localDescription.sdp}) as response:
                refused.append((response.status, (await response.json())["error"]["code"]))
        assert refused == [(403, "token_used_up")] * 3
