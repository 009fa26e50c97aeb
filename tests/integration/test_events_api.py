"""The server-side events stream and the control endpoint, over HTTP with a call in progress: what the data
channel carries, to several readers, for a call with no data channel, and bad messages answered with a 4xx."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole

from gateway.api import events as events_api
from gateway.calls.call import CallState
from gateway.client.caller import Microphone
from gateway.client.signals import speech_like
from gateway.media.track import PacedAudioTrack
from tests.fixtures import Gateway, answered, until
from tests.integration.phone import events_url, following
from tests.integration.test_call import say_and_hear_reply
from tests.integration.test_tools import TOOLS_SETTINGS


def without_arrival(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "_received"} for e in events]


async def test_two_readers_see_what_the_data_channel_carries_from_the_start_to_the_end(
    gateway: Gateway, make_caller
) -> None:
    caller = await answered(make_caller())
    await say_and_hear_reply(caller, speech_like(0.8, seed=101))
    url = events_url(gateway, caller)
    async with aiohttp.ClientSession() as http, following(http, url) as first, following(http, url) as second:
        caller.send({"type": "text", "text": "and now?"})
        await first.wait_for("transcript", lambda e: e["text"] == 'reply 2: "and now?"' and e["final"])
        async with http.delete(f"{gateway.url}/v1/calls/{caller.call_id}") as response:
            assert response.status == 204
        for stream in (first, second):
            assert (await stream.wait_for("ended"))["reason"] == "hangup"
            await until(lambda: stream.closed, timeout=5)
            assert stream.events == without_arrival(caller.events), "the stream must carry what the channel did"
    assert caller.events[0]["type"] == "ready"
    caller.call_id = None


@pytest.mark.parametrize("settings", [TOOLS_SETTINGS], indirect=True)
@pytest.mark.parametrize("emulator_config", [{"tool_calls": True}], indirect=True)
async def test_a_call_without_a_data_channel_is_followed_and_driven_over_http(gateway: Gateway, no_leaks: None) -> None:
    pc = RTCPeerConnection()  # a phone leg: audio only
    pc.addTrack(PacedAudioTrack(Microphone(), 48_000))
    sink = MediaBlackhole()
    pc.on("track", sink.addTrack)
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/v1/calls?profile=tools", data=pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp"}) as response:
            assert response.status == 201
            await pc.setRemoteDescription(RTCSessionDescription(sdp=await response.text(), type="answer"))
            location = response.headers["Location"]
        await sink.start()
        call = gateway.calls.get(location.rsplit("/", 1)[1])
        await until(lambda: call.state is CallState.ACTIVE)
        async with following(http, f"{gateway.url}{location}/events") as stream:
            control = f"{gateway.url}{location}/events"
            async with http.post(control, json={"type": "text", "text": "weather?"}) as response:
                assert response.status == 204
            tool_call = await stream.wait_for("tool_call")
            result = {"type": "tool_result", "id": tool_call["id"], "result": {"forecast": "sunny"}}
            async with http.post(control, json=result) as response:
                assert response.status == 204
            reply = await stream.wait_for("transcript", lambda e: e["role"] == "model" and e["final"])
            assert reply["text"] == 'reply 1: "weather?" (get_weather: {"forecast": "sunny"})'
            async with http.post(control, json={"type": "hangup"}) as response:
                assert response.status == 204
            assert (await stream.wait_for("ended"))["reason"] == "caller_hangup"
    await sink.stop()
    await pc.close()


JUNK = [
    ("text/plain", "hello", 415, "unsupported_media_type"),
    ("application/json", "{not json", 400, "bad_json"),
    ("application/json", "[1, 2]", 400, "bad_message"),
    ("application/json", '{"text": "no type"}', 400, "bad_message"),
    ("application/json", '{"type": "nope"}', 400, "unknown_type"),
    ("application/json", '{"type": "ping"}', 400, "unknown_type"),  # only the data channel answers pings
    ("application/json", '{"type": "dtmf", "digit": "X"}', 400, "bad_event"),
    ("application/json", '{"type": "dtmf", "digit": "1", "duration_ms": -5}', 400, "bad_event"),
    ("application/json", '{"type": "text", "text": ""}', 400, "bad_event"),
    ("application/json", '{"type": "tool_result", "id": "never-asked"}', 400, "bad_event"),
    ("application/json", '{"type": "text", "text": "' + "x" * 20_000 + '"}', 413, "too_large"),
]


async def test_junk_posted_to_the_control_endpoint_gets_its_4xx_and_the_call_goes_on(
    gateway: Gateway, make_caller
) -> None:
    caller = await answered(make_caller())
    async with aiohttp.ClientSession() as http:
        for content_type, body, status, code in JUNK:
            async with http.post(events_url(gateway, caller), data=body,
                                 headers={"Content-Type": content_type}) as response:
                assert (response.status, (await response.json())["error"]["code"]) == (status, code), body[:40]
        async with http.post(f"{gateway.url}/v1/calls/never-was/events", json={"type": "hangup"}) as response:
            assert (response.status, (await response.json())["error"]["code"]) == (404, "call_not_found")
        async with http.get(f"{gateway.url}/v1/calls/never-was/events") as response:
            assert (response.status, (await response.json())["error"]["code"]) == (404, "call_not_found")
    assert not caller.of_type("error"), "bad control messages are answered over HTTP, not on the channel"
    await say_and_hear_reply(caller, speech_like(0.6, seed=102))
    assert caller.of_type("transcript")


async def test_a_quiet_stream_carries_keepalive_comments(gateway: Gateway, make_caller, monkeypatch) -> None:
    monkeypatch.setattr(events_api, "KEEPALIVE_S", 0.2)
    caller = await answered(make_caller())
    async with aiohttp.ClientSession() as http, following(http, events_url(gateway, caller)) as stream:
        await until(lambda: stream.comments >= 2, timeout=5)


@pytest.mark.parametrize("settings", [{"api_tokens": ("s3cret",)}], indirect=True)
async def test_the_events_endpoints_need_the_same_token_as_the_call_api(gateway: Gateway) -> None:
    url = f"{gateway.url}/v1/calls/some-call/events"
    async with aiohttp.ClientSession() as http:
        for request in (http.get(url), http.post(url, json={"type": "hangup"})):
            async with request as response:
                assert response.status == 401
        async with http.get(url, headers={"Authorization": "Bearer s3cret"}) as response:
            assert response.status == 404
