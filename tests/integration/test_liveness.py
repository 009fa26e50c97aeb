"""A caller is gone only when nothing at all comes from it. RTP silence alone (a phone on hold behind a bridge,
silence suppression, a bridge that stops relaying) never ends a call; a peer whose every packet stops is
released within 15 s."""

from __future__ import annotations

import asyncio

import pytest

from gateway.calls.call import Call, CallState
from gateway.client.signals import speech_like
from tests.audio import best_match
from tests.fixtures import Gateway, answered, until
from tests.integration.phone import audio_of, send_only_stun, vanish
from tests.integration.test_call import heard, say_and_hear_reply


async def stays_active(call: Call, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        assert call.state is CallState.ACTIVE, f"the call was {call.state} while its caller was still there"
        await asyncio.sleep(0.25)


# Shorter than aioice's consent checks (every 4-6 s): only the RTCP reports can keep this caller.
@pytest.mark.parametrize("settings", [{"caller_silence_s": 4.0}], indirect=True)
async def test_a_caller_whose_rtp_stops_for_30_s_keeps_its_call_and_gets_a_reply_after(
    gateway: Gateway, make_caller
) -> None:
    caller = await answered(make_caller())
    call = gateway.calls.get(caller.call_id)
    sender = audio_of(caller.pc).sender
    microphone = sender.track
    sender.replaceTrack(None)  # no more RTP; the caller's RTCP reports and ICE consent checks go on
    await asyncio.sleep(1.0)
    frames = call.leg.uplink.frames
    await stays_active(call, 30.0)
    assert call.leg.uplink.frames == frames, "RTP should have stopped"

    sender.replaceTrack(microphone)
    utterance = speech_like(0.8, seed=81)
    await say_and_hear_reply(caller, utterance)
    assert best_match(utterance, heard(caller))[0] > 0.8
    assert call.attachments == 1


# Longer than the consent checks: STUN is all this caller sends, and it is enough.
@pytest.mark.parametrize("settings", [{"caller_silence_s": 8.0}], indirect=True)
async def test_a_caller_that_sends_nothing_but_stun_is_still_there(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    call = gateway.calls.get(caller.call_id)
    undo = send_only_stun(caller.pc)
    await stays_active(call, 12.0)  # more than the silence setting, and two consent checks or more
    undo()
    await say_and_hear_reply(caller, speech_like(0.6, seed=82))
    assert call.attachments == 1


async def test_a_caller_whose_every_packet_stops_is_released_within_15_s(gateway: Gateway, make_caller) -> None:
    assert gateway.calls.settings.caller_silence_s == 10.0, "this test is about the default"
    caller = await answered(make_caller())
    call = gateway.calls.get(caller.call_id)
    leg = call.leg
    loop = asyncio.get_running_loop()
    vanished_at = loop.time()
    await vanish(caller.pc)
    await until(lambda: call.state is CallState.DETACHED and leg.pc.connectionState == "closed", timeout=15)
    assert loop.time() - vanished_at > 9.0, "detached before the silence setting said"
    assert not call.ended, "the call waits for a resume during its grace window"
