"""Limits and shutdown: each ends calls cleanly, with the reason told to the caller."""

from __future__ import annotations

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from gateway.client.caller import CallRefused
from gateway.client.signals import speech_like
from tests.audio import best_match
from tests.fixtures import Gateway, answered, until
from tests.integration.test_call import heard, say_and_hear_reply


@pytest.mark.parametrize("settings", [{"max_calls": 1}], indirect=True)
async def test_beyond_max_calls_the_gateway_answers_503_with_retry_after(gateway: Gateway, make_caller) -> None:
    first = make_caller()
    await first.connect()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/readyz") as response:
            assert response.status == 503 and "Retry-After" in response.headers
        async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer", "sdp": first.pc.localDescription.sdp}) as response:
            assert response.status == 503
            assert response.headers["Retry-After"].isdigit()
            assert (await response.json())["error"]["code"] == "at_capacity"
        await first.hang_up()
        async with http.get(f"{gateway.url}/readyz") as response:
            assert response.status == 200
    first.call_id = None


@pytest.mark.parametrize(
    ("settings", "reason"),
    [({"max_call_s": 1.0}, "max_duration"), ({"idle_timeout_s": 1.0}, "idle_timeout")],
    indirect=["settings"],
)
async def test_a_call_past_its_limit_is_ended_with_the_reason(gateway: Gateway, make_caller, reason: str) -> None:
    caller = make_caller()
    await caller.connect()
    error = await caller.wait_for("error", timeout=10)
    ended = await caller.wait_for("ended", timeout=10)
    assert error["code"] == ended["reason"] == reason
    caller.call_id = None


@pytest.mark.parametrize("settings", [{"connect_timeout_s": 1.0}], indirect=True)
async def test_an_answered_call_whose_media_never_connects_is_ended(gateway: Gateway, no_leaks: None) -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer", "sdp": pc.localDescription.sdp}) as response:
            call_id = (await response.json())["call_id"]
        # The answer is never applied: ICE never starts.
        await until(lambda: len(gateway.calls) == 0)
        async with http.get(f"{gateway.url}/v1/calls/{call_id}") as response:
            assert response.status == 200
            assert (await response.json())["end_reason"] == "connect_timeout"
    assert gateway.calls.ended_by_reason["connect_timeout"] == 1
    await pc.close()


async def test_draining_ends_calls_and_refuses_new_ones(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    await gateway.calls.drain(timeout_s=0.2)
    ended = await caller.wait_for("ended", timeout=10)
    assert ended["reason"] == "server_shutdown"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/readyz") as response:
            assert response.status == 503 and (await response.json())["error"]["code"] == "draining"
    late = make_caller()
    with pytest.raises(CallRefused) as refused:
        await late.connect()
    assert (refused.value.status, refused.value.code) == (503, "draining")
    caller.call_id = None


@pytest.mark.parametrize("settings", [{"call_burst": 2, "call_rate_per_minute": 1}], indirect=True)
async def test_a_client_placing_calls_too_fast_gets_429_and_its_call_goes_on(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())  # spends the first token
    async with aiohttp.ClientSession() as http:
        bad_json = {"Content-Type": "application/json"}
        async with http.post(f"{gateway.url}/v1/calls", data="{", headers=bad_json) as response:
            assert response.status == 400  # a bad request spends a token too
        # A client cannot dodge the limit by naming another address: the header is not trusted unless configured.
        spoofed = {"X-Forwarded-For": "203.0.113.9", "Content-Type": "application/sdp"}
        for _ in range(2):
            async with http.post(f"{gateway.url}/whip", data="v=0", headers=spoofed) as response:
                assert response.status == 429
                assert 55 <= int(response.headers["Retry-After"]) <= 60
                assert (await response.json())["error"]["code"] == "rate_limited"
        async with http.get(f"{gateway.url}/metrics") as response:
            assert "gateway_calls_rate_limited_total 2.0" in await response.text()
    await say_and_hear_reply(caller, speech_like(1.0, seed=4))
    assert best_match(speech_like(1.0, seed=4), heard(caller))[0] > 0.8


@pytest.mark.parametrize(
    "settings", [{"call_burst": 1, "call_rate_per_minute": 1, "client_ip_header": "X-Forwarded-For"}], indirect=True
)
async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(gateway: Gateway) -> None:
    async def post(forwarded_for: str) -> int:
        headers = {"X-Forwarded-For": forwarded_for, "Content-Type": "application/json"}
        async with http.post(f"{gateway.url}/v1/calls", data="{", headers=headers) as response:
            return response.status

    async with aiohttp.ClientSession() as http:
        # The proxy appends the address it saw; what the client wrote before it is not trusted.
        assert await post("10.0.0.1, 198.51.100.7") == 400
        assert await post("10.0.0.2, 198.51.100.7") == 429
        assert await post("198.51.100.8") == 400
