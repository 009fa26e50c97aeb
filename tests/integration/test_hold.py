"""A bridge that renegotiates to put the call on hold (`a=sendonly` or `a=inactive` in a re-offer, PATCH with
application/sdp) keeps the call: the uplink to Live is muted until a re-offer takes it off hold."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription

from gateway.client.caller import Caller
from gateway.client.signals import silence, speech_like
from tests.audio import best_match
from tests.fixtures import Gateway, answered
from tests.integration.phone import audio_of, capture_rtp
from tests.integration.test_call import RATE, heard, say_and_hear_reply


async def reoffer(http: aiohttp.ClientSession, gateway: Gateway, caller: Caller, direction: str) -> str:
    """A new offer on the caller's peer connection with audio `direction`; returns the answer's direction."""
    audio_of(caller.pc).direction = direction
    await caller.pc.setLocalDescription(await caller.pc.createOffer())
    async with http.patch(f"{gateway.url}/v1/calls/{caller.call_id}", data=caller.pc.localDescription.sdp,
                          headers={"Content-Type": "application/sdp"}) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/sdp" and response.headers["ETag"]
        answer = await response.text()
    await caller.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    (media,) = [m for m in SessionDescription.parse(answer).media if m.kind == "audio"]
    return media.direction


@pytest.mark.parametrize(("hold", "answered_with"), [("sendonly", "recvonly"), ("inactive", "inactive")])
async def test_a_call_on_hold_stays_with_its_uplink_muted_and_goes_on_after(
    gateway: Gateway, make_caller, hold: str, answered_with: str
) -> None:
    caller = await answered(make_caller())
    call = gateway.calls.get(caller.call_id)
    packets = capture_rtp(caller.pc)
    await say_and_hear_reply(caller, speech_like(0.6, seed=111))
    async with aiohttp.ClientSession() as http:
        assert await reoffer(http, gateway, caller, hold) == answered_with
        async with http.get(f"{gateway.url}/v1/calls/{caller.call_id}") as response:
            assert (await response.json())["on_hold"] is True
        sent = call.live.stats.audio_sent_bytes
        caller.say(speech_like(0.8, seed=112), RATE)  # hold music, say: Live must not hear it
        caller.say(silence(1.0), RATE)
        await asyncio.sleep(2.5)
        assert call.live.stats.audio_sent_bytes == sent, "audio reached Live while the call was on hold"
        held_at = len(packets)

        assert await reoffer(http, gateway, caller, "sendrecv") == "sendrecv"
    assert not call.leg.on_hold and call.attachments == 1
    utterance = speech_like(0.8, seed=113)
    await say_and_hear_reply(caller, utterance)
    replies = [e["text"] for e in caller.of_type("transcript") if e["role"] == "model" and e["final"]]
    assert replies == ["reply 1", "reply 2"], "the held audio must not have become a turn"
    assert best_match(utterance, heard(caller))[0] > 0.8
    assert packets[held_at].marker, "the gateway sent nothing while on hold: its first packet after starts a talkspurt"
