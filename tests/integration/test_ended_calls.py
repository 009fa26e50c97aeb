"""A call that ended is remembered for a while: why and how it ended, and what it said, for those (a phone
bridge, a backend) who were not on its data channel."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.client.caller import CallRefused
from tests.fixtures import Gateway, until
from tests.integration.phone import events_url, following

KEEP_S = 4.0


@pytest.mark.parametrize("settings", [{"max_call_s": 1.0, "ended_call_s": KEEP_S}], indirect=True)
async def test_a_call_ended_by_its_time_limit_shows_its_reason_afterwards_then_is_forgotten(
    gateway: Gateway, make_caller
) -> None:
    caller = make_caller()
    await caller.connect()
    call_url = f"{gateway.url}/v1/calls/{caller.call_id}"
    await caller.wait_for("ended", timeout=10)
    await until(lambda: len(gateway.calls) == 0)
    ended_at = asyncio.get_running_loop().time()
    async with aiohttp.ClientSession() as http:
        async with http.get(call_url) as response:
            assert response.status == 200
            snapshot = await response.json()
        assert (snapshot["state"], snapshot["end_reason"]) == ("ended", "max_duration")
        assert snapshot["duration_s"] >= 1.0 and snapshot["ended_at"] >= snapshot["created_at"]
        assert snapshot["live"]["connections"] == 1 and "downlink" in snapshot

        async with following(http, events_url(gateway, caller)) as stream:  # the history, then the stream ends
            await until(lambda: stream.closed)
        assert stream.events[-1] == {"type": "ended", "reason": "max_duration"}
        assert [e["type"] for e in stream.events] == [e["type"] for e in caller.events]

        async with http.post(events_url(gateway, caller), json={"type": "text", "text": "hello?"}) as response:
            assert (response.status, (await response.json())["error"]["code"]) == (409, "call_ended")
        fragment = {"Content-Type": "application/trickle-ice-sdpfrag"}
        async with http.patch(call_url, data="a=end-of-candidates\r\n", headers=fragment) as response:
            assert (response.status, (await response.json())["error"]["code"]) == (404, "call_not_found")
        with pytest.raises(CallRefused) as refused:
            await caller.resume()
        assert (refused.value.status, refused.value.code) == (404, "call_not_found")
        async with http.delete(call_url) as response:
            assert response.status == 204

        await asyncio.sleep(max(0.0, ended_at + KEEP_S + 0.5 - asyncio.get_running_loop().time()))
        async with http.get(call_url) as response:
            assert (response.status, (await response.json())["error"]["code"]) == (404, "call_not_found")
        async with http.get(events_url(gateway, caller)) as response:
            assert response.status == 404
    caller.call_id = None
