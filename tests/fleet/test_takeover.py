"""A replica that dies (SIGKILL) does not take its conversations with it: a resume on any other replica takes the
call over, and the Live session goes on from the stored handle."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from gateway.api.fleet import REPLICA_HEADER
from gateway.client.caller import Caller, CallRefused
from gateway.client.signals import speech_like
from gateway.fleet.registry import Registry
from tests.fixtures import answered, until
from tests.fleet.cluster import Cluster, Replica
from tests.fleet.conftest import sse_events
from tests.integration.test_call import say_and_hear_reply
from tests.integration.test_caller_resume import sdp_offer_peer

pytestmark = pytest.mark.fleet


def replies(caller: Caller) -> list[str]:
    return [e["text"] for e in caller.of_type("transcript") if e["role"] == "model" and e["final"]]


async def stored_handle(registry: Registry, call_id: str) -> str | None:
    record = await registry.lookup(call_id)
    return record.handoff.get("live_handle") if record and record.handoff else None


async def talk_and_wait_for_the_handle(caller: Caller, registry: Registry, seed: int) -> None:
    """A turn, and then until its owner has stored the Live handle issued after it (what a new owner resumes)."""
    before = await stored_handle(registry, caller.call_id)
    await say_and_hear_reply(caller, speech_like(0.8, seed=seed))
    async with asyncio.timeout(5):
        while await stored_handle(registry, caller.call_id) in (None, before):
            await asyncio.sleep(0.05)


async def owner_of(cluster: Cluster, registry: Registry, call_id: str) -> Replica:
    record = await registry.lookup(call_id)
    assert record is not None and record.owner is not None
    return next(r for r in cluster.gateways if r.url == record.owner.url)


@contextlib.asynccontextmanager
async def owner_killed(cluster: Cluster, registry: Registry, call_id: str) -> AsyncIterator[Replica]:
    """SIGKILL the replica that holds the call; it is started again at the end."""
    owner = await owner_of(cluster, registry, call_id)
    assert owner.program is not None
    owner.program.signal(signal.SIGKILL)
    await owner.program.exited()
    try:
        yield owner
    finally:
        await cluster.restart(owner)


async def test_a_replica_killed_mid_call_the_caller_resumes_elsewhere_and_the_conversation_goes_on(
    cluster: Cluster, callers, registry: Registry
) -> None:
    caller = await answered(callers(resume_after_silence_s=1.5))
    await talk_and_wait_for_the_handle(caller, registry, seed=41)
    async with owner_killed(cluster, registry, caller.call_id) as owner:
        await until(lambda: caller.resumes == 1 or caller.resume_failure is not None, timeout=20)
        assert caller.resume_failure is None, caller.resume_failure
        await asyncio.wait_for(caller.connected.wait(), 10)
        new_owner = await owner_of(cluster, registry, caller.call_id)
        assert new_owner is not owner
        await say_and_hear_reply(caller, speech_like(0.8, seed=42))
        assert replies(caller) == ["reply 1", "reply 2"], "the conversation's turn counter should go on"
        assert not caller.of_type("ended")

    async with aiohttp.ClientSession() as http:  # the events history came along: it holds both turns
        url = f"{cluster.lb_url}/v1/calls/{caller.call_id}"
        async with http.delete(url) as response:
            assert response.status == 204
        async with http.get(f"{url}/events") as response:
            history = sse_events(await response.text())
    caller.call_id = None
    said = [e["text"] for e in history if e["type"] == "transcript" and e["role"] == "model" and e["final"]]
    assert said == ["reply 1", "reply 2"] and history[-1] == {"type": "ended", "reason": "hangup"}


async def test_an_orphaned_call_is_shown_detached_its_token_is_checked_and_one_of_two_racing_resumes_wins(
    cluster: Cluster, callers, registry: Registry
) -> None:
    caller = await answered(callers())
    await talk_and_wait_for_the_handle(caller, registry, seed=43)
    await caller.drop()
    async with owner_killed(cluster, registry, caller.call_id) as owner:
        others = [r for r in cluster.gateways if r is not owner]
        url = f"{cluster.lb_url}/v1/calls/{caller.call_id}"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:  # the owner's heartbeat expires first: seconds, not forever
                assert response.status == 200
                assert (await response.json())["state"] == "detached"
            async with http.patch(url, data="a=end-of-candidates\r\n",
                                  headers={"Content-Type": "application/trickle-ice-sdpfrag"}) as response:
                assert response.status == 409
                assert (await response.json())["error"]["code"] == "call_detached"

        forged = Caller(others[0].url)
        forged.call_id, forged.resume_token = caller.call_id, "forged-" + caller.resume_token[7:]
        with pytest.raises(CallRefused) as refused:
            await forged.resume()
        assert (refused.value.status, refused.value.code) == (403, "bad_resume_token")
        forged.call_id = None  # it has no call of its own to hang up
        await forged.hang_up()

        racers = [Caller(replica.url) for replica in others]
        for racer in racers:
            racer.call_id, racer.resume_token = caller.call_id, caller.resume_token
        results = await asyncio.gather(*(racer.resume() for racer in racers), return_exceptions=True)
        won = [r for r, result in zip(racers, results) if not isinstance(result, BaseException)]
        lost = [result for result in results if isinstance(result, BaseException)]
        assert len(won) == 1, results
        assert [(e.status, e.code) for e in lost] == [(403, "bad_resume_token")]
        winner = won[0]
        await asyncio.wait_for(winner.connected.wait(), 10)
        await say_and_hear_reply(winner, speech_like(0.8, seed=44))
        assert replies(winner) == ["reply 2"], "the resumed conversation goes on at its next turn"
        caller.call_id = None  # the winner hangs up the call
        for racer in racers:
            await racer.hang_up()


async def test_an_orphaned_call_hung_up_through_another_replica_stays_ended(
    cluster: Cluster, callers, registry: Registry
) -> None:
    caller = await answered(callers())
    await caller.drop()
    async with owner_killed(cluster, registry, caller.call_id):
        url = f"{cluster.lb_url}/v1/calls/{caller.call_id}"
        async with aiohttp.ClientSession() as http:
            async with http.delete(url) as response:
                assert response.status == 204
                assert response.headers[REPLICA_HEADER] != (await registry.lookup(caller.call_id)).owner_id
            async with http.get(url) as response:
                assert response.status == 200
                assert (await response.json())["state"] == "ended"
        with pytest.raises(CallRefused) as refused:
            await caller.resume()
        assert (refused.value.status, refused.value.code) == (404, "call_not_found")
        caller.call_id = None


async def test_an_sdp_form_call_is_taken_over_with_its_resume_token_header(
    cluster: Cluster, registry: Registry
) -> None:
    first, second = await sdp_offer_peer(), await sdp_offer_peer()
    try:
        async with aiohttp.ClientSession() as http:
            answer = await offer_sdp(http, f"{cluster.lb_url}/v1/calls", first)
            location, token = answer.headers["Location"], answer.headers["Resume-Token"]
            call_id = location.rsplit("/", 1)[1]
            await until_state(http, cluster.lb_url + location, "active")
            await first.close()
            async with owner_killed(cluster, registry, call_id) as owner:
                resumed = await offer_sdp(http, f"{cluster.lb_url}/v1/calls?resume={call_id}", second, token)
                assert resumed.headers["Location"] == location
                assert resumed.headers["Resume-Token"] not in (token, "")
                snapshot = await until_state(http, cluster.lb_url + location, "active")
                assert snapshot["attachments"] == 2
                new_owner = await registry.lookup(call_id)
                assert new_owner is not None and new_owner.owner_id == resumed.headers[REPLICA_HEADER]
                assert await owner_of(cluster, registry, call_id) is not owner
                async with http.delete(cluster.lb_url + location) as response:
                    assert response.status == 204
    finally:
        await first.close()
        await second.close()


async def offer_sdp(http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection,
                    resume_token: str | None = None) -> aiohttp.ClientResponse:
    """POST `pc`'s offer as application/sdp (a resume with `resume_token`), and apply the answer."""
    headers = {"Content-Type": "application/sdp", **({"Resume-Token": resume_token} if resume_token else {})}
    async with http.post(url, data=pc.localDescription.sdp, headers=headers) as response:
        assert response.status == 201 and response.content_type == "application/sdp", await response.text()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await response.text(), type="answer"))
    return response


async def until_state(http: aiohttp.ClientSession, url: str, state: str) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            async with http.get(url) as response:
                snapshot = await response.json()
            if snapshot.get("state") == state:
                return snapshot
            await asyncio.sleep(0.1)
