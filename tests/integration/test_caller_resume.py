"""A caller that drops or vanishes keeps its call for a grace window, and can resume it with its token."""

from __future__ import annotations

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from gateway.calls.call import CallState
from gateway.client.caller import CallRefused, Microphone
from gateway.client.signals import speech_like
from gateway.media.track import PacedAudioTrack
from tests.audio import best_match
from tests.fixtures import Gateway, answered, until
from tests.integration.phone import vanish
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

    # Vanish without a goodbye, as when a phone loses its network: nothing at all comes from it any more.
    # aiortc's own consent checks would take 25-40 s; the gateway must notice well inside this wait.
    await vanish(caller.pc)
    await until(lambda: call.state is CallState.DETACHED, timeout=10)

    await until(lambda: call.ended, timeout=10)
    assert call.end_reason == "caller_gone"
    with pytest.raises(CallRefused) as refused:
        await caller.resume()
    assert (refused.value.status, refused.value.code) == (404, "call_not_found")
    caller.call_id = None


async def sdp_offer_peer() -> RTCPeerConnection:
    """A bridge-like peer: audio only, offered as application/sdp."""
    pc = RTCPeerConnection()
    pc.addTrack(PacedAudioTrack(Microphone(), 48_000))
    await pc.setLocalDescription(await pc.createOffer())
    return pc


@pytest.mark.parametrize("settings", [{**FAST_DETACH, "api_tokens": ("bridge-token",)}], indirect=True)
async def test_an_sdp_form_call_resumes_with_the_token_from_its_answers_header_alone(
    gateway: Gateway, no_leaks: None
) -> None:
    sdp = {"Content-Type": "application/sdp"}
    bridge = {**sdp, "Authorization": "Bearer bridge-token"}  # the resume itself carries no API token
    first, second = await sdp_offer_peer(), await sdp_offer_peer()
    try:
        async with aiohttp.ClientSession() as http:
            calls = f"{gateway.url}/v1/calls"
            async with http.post(calls, data=first.localDescription.sdp, headers=bridge) as response:
                assert response.status == 201
                location, token = response.headers["Location"], response.headers["Resume-Token"]
                await first.setRemoteDescription(RTCSessionDescription(sdp=await response.text(), type="answer"))
            call = gateway.calls.get(location.rsplit("/", 1)[1])
            await until(lambda: call.state is CallState.ACTIVE)
            await first.close()
            await until(lambda: call.state is CallState.DETACHED)

            resume = f"{calls}?resume={call.id}"
            offer = second.localDescription.sdp
            async with http.post(resume, data=offer, headers=sdp) as response:
                assert (response.status, (await response.json())["error"]["code"]) == (400, "bad_request")
            async with http.post(resume, data=offer, headers={**sdp, "Resume-Token": "forged"}) as response:
                assert (response.status, (await response.json())["error"]["code"]) == (403, "bad_resume_token")
            async with http.post(f"{calls}?resume=never-was", data=offer,
                                 headers={**sdp, "Resume-Token": token}) as response:
                assert (response.status, (await response.json())["error"]["code"]) == (404, "call_not_found")
            async with http.post(resume, data=offer, headers={**sdp, "Resume-Token": token}) as response:
                assert response.status == 201 and response.content_type == "application/sdp"
                assert response.headers["Location"] == location and response.headers["ETag"] == f'"{call.id}.2"'
                assert response.headers["Resume-Token"] not in (token, "")
                await second.setRemoteDescription(RTCSessionDescription(sdp=await response.text(), type="answer"))
            await until(lambda: call.state is CallState.ACTIVE)
            assert call.attachments == 2 and len(gateway.emulator.connections) == 1
            async with http.delete(f"{gateway.url}{location}", headers=bridge) as response:
                assert response.status == 204
    finally:
        await first.close()
        await second.close()
