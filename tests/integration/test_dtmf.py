"""Keys pressed on a phone reach the call as one `dtmf` event each, on the data channel and the server-side
stream alike, whether they come as RFC 4733 packets in the audio or through the control API."""

from __future__ import annotations

import aiohttp

from gateway.client.signals import speech_like
from tests.audio import best_match
from tests.fixtures import Gateway, answered
from tests.integration.phone import KeyPad, events_url, following, negotiated_payload_type
from tests.integration.test_call import heard, say_and_hear_reply


async def test_rfc4733_keys_become_one_dtmf_event_each_on_the_channel_and_the_stream(
    gateway: Gateway, make_caller
) -> None:
    caller = make_caller()
    answer = await caller.connect()
    payload_type, clock_rate = negotiated_payload_type(answer["sdp"], "telephone-event")
    assert clock_rate == 48_000, "beside Opus, telephone-event runs at Opus's clock"
    keypad = KeyPad(caller.pc, payload_type, clock_rate)
    await caller.wait_for("ready")
    await caller.connected.wait()
    keys = [("4", 120), ("#", 200), ("4", 100)]  # the same key twice is two presses
    async with aiohttp.ClientSession() as http, following(http, events_url(gateway, caller)) as stream:
        for digit, duration_ms in keys:
            await keypad.press(digit, duration_ms)
        await caller.wait_for("dtmf", lambda e: len(caller.of_type("dtmf")) == len(keys))
        await stream.wait_for("dtmf", lambda e: len(stream.of_type("dtmf")) == len(keys))
        for events in (caller.of_type("dtmf"), stream.of_type("dtmf")):
            assert [(e["digit"], e["duration_ms"], e["source"]) for e in events] == [k + ("rfc4733",) for k in keys]
        # The keys took the place of audio packets: the caller's voice still gets through whole afterwards.
        utterance = speech_like(0.8, seed=71)
        await say_and_hear_reply(caller, utterance)
        assert best_match(utterance, heard(caller))[0] > 0.8


async def test_a_key_posted_to_the_control_endpoint_is_the_same_event_and_the_phone_profile_tells_the_model(
    gateway: Gateway, make_caller
) -> None:
    caller = await answered(make_caller(profile="phone"))
    url = events_url(gateway, caller)
    async with aiohttp.ClientSession() as http, following(http, url) as stream:
        async with http.post(url, json={"type": "dtmf", "digit": "7", "duration_ms": 160}) as response:
            assert response.status == 204
        expected = {"type": "dtmf", "digit": "7", "duration_ms": 160, "source": "control"}
        on_channel = await caller.wait_for("dtmf")
        assert {k: v for k, v in on_channel.items() if k != "_received"} == expected
        assert await stream.wait_for("dtmf") == expected
        reply = await caller.wait_for("transcript", lambda e: e["role"] == "model" and e["final"])
        assert reply["text"] == 'reply 1: "The caller pressed 7."'
