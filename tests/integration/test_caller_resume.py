"""A caller that drops or vanishes keeps its call for a grace window, and can resume it with its token."""

from __future__ import annotations


import aiohttp
import pytest

from gateway.calls.call import CallState
from gateway.client.caller import CallRefused
from gateway.client.signals import speech_like
from tests.audio import best_match
from tests.fixtures import Gateway, answered, until
from tests.integration.test_call import heard, say_and_hear_reply

FAST_DETACH = {"caller_grace_s": 3.0, "caller_silence_s": 1.0}


@pytest.mark.parametrize("settings", [FAST_DETACH], indirect=True)
async def test_a_dropped_caller_resumes_inside_the_grace_window_and_keeps_its_conversation(
    gateway: Gateway, make_caller
) -> None:
    caller = await answered(make_caller())
    await say_and_hear_reply(caller, speech_like(0.8, seed=31))
    call = gateway.calls.get(caller.call_id)
    first_token = caller.resume_token

    await caller.drop()
    await until(lambda: call.state is CallState.DETACHED)
    await caller.resume()
    await caller.connected.wait()
    assert caller.resume_token != first_token, "a resume must hand out a new token"

    utterance = speech_like(0.8, seed=32)
    await say_and_hear_reply(caller, utterance)
    replies = [e["text"] for e in caller.of_type("transcript") if e["role"] == "model" and e["final"]]
    assert replies == ["reply 1", "reply 2"], "the conversation should go on where it was"
    assert best_match(utterance, heard(caller))[0] > 0.8
    assert len(gateway.emulator.connections) == 1, "the Live session should have stayed the same"
    assert call.attachments == 2

    async with aiohttp.ClientSession() as http:  # the spent token is refused
        offer = {"type": "offer", "sdp": caller.pc.localDescription.sdp,
                 "resume": {"call_id": caller.call_id, "token": first_token}}
        async with http.post(f"{gateway.url}/v1/calls", json=offer) as response:
            assert response.status == 403
            assert (await response.json())["error"]["code"] == "bad_resume_token"


@pytest.mark.parametrize("settings", [FAST_DETACH], indirect=True)
async def test_a_vanished_caller_is_noticed_in_seconds_and_after_the_window_cannot_resume(
    gateway: Gateway, make_caller
) -> None:
    caller = await answered(make_caller())
    call = gateway.calls.get(caller.call_id)

    # Vanish without a goodbye, as when a phone loses its network: no more RTP, no data-channel messages.
    # aiortc's own consent checks would take 25-40 s; the gateway must notice well inside this wait.
    caller.pc.getTransceivers()[0].sender.replaceTrack(None)
    await until(lambda: call.state is CallState.DETACHED, timeout=10)

    await until(lambda: call.ended, timeout=10)
    assert call.end_reason == "caller_gone"
    with pytest.raises(CallRefused) as refused:
        await caller.resume()
    assert (refused.value.status, refused.value.code) == (404, "call_not_found")
    caller.call_id = None
