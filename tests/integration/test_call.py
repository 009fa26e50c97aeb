"""A call end to end: real aiortc callers, the real gateway, the emulator through the real SDK."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np

from gateway.client.caller import Caller
from gateway.client.signals import silence, speech_like
from tests.audio import best_match, to_rate
from tests.fixtures import Gateway, answered

RATE = 16_000
PLAYOUT_TAIL_S = 0.6  # after turn_complete: the end of the reply is still crossing the network


async def say_and_hear_reply(caller: Caller, utterance: np.ndarray, timeout: float = 15.0) -> None:
    """Speak `utterance`, then silence, and wait until its reply has played out to the caller."""
    mark = len(caller.events)
    caller.say(utterance, RATE)
    caller.say(silence(1.0), RATE)
    await caller.wait_for("turn_complete", timeout=timeout, since=mark)
    await asyncio.sleep(PLAYOUT_TAIL_S)


def heard(caller: Caller) -> np.ndarray:
    return to_rate(caller.recording.audio(), caller.recording.rate, RATE)


async def test_spoken_utterance_comes_back_as_the_parrot_reply(make_caller) -> None:
    caller = await answered(make_caller())
    utterance = speech_like(1.2, seed=1)
    await say_and_hear_reply(caller, utterance)
    score, _ = best_match(utterance, heard(caller))
    assert score > 0.8, f"the reply does not match what was said (peak correlation {score:.2f})"


async def test_transcripts_and_states_arrive_as_events(make_caller) -> None:
    caller = make_caller()
    await caller.connect()
    ready = await caller.wait_for("ready")
    assert ready["call_id"] == caller.call_id and ready["codec"] == "opus"
    await say_and_hear_reply(caller, speech_like(1.0, seed=2))
    user = await caller.wait_for("transcript", lambda e: e["role"] == "user" and e["final"])
    model = await caller.wait_for("transcript", lambda e: e["role"] == "model" and e["final"])
    assert user["text"].startswith("[speech 1.")
    assert model["text"] == "reply 1"
    states = [e["state"] for e in caller.of_type("state")]
    assert states[:3] == ["listening", "speaking", "listening"], states


async def test_typed_text_gets_a_reply(make_caller) -> None:
    caller = await answered(make_caller())
    caller.send({"type": "text", "text": "hello there"})
    model = await caller.wait_for("transcript", lambda e: e["role"] == "model" and e["final"])
    assert model["text"] == 'reply 1: "hello there"'
    typed = await caller.wait_for("transcript", lambda e: e["role"] == "user")
    assert typed == {**typed, "text": "hello there", "final": True}


async def test_delete_ends_the_call_and_releases_everything(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    assert gateway.emulator.active(call_id=caller.call_id), "the call should hold a Live connection"
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{gateway.url}/v1/calls/{caller.call_id}") as response:
            assert response.status == 204
        async with http.get(f"{gateway.url}/v1/calls/{caller.call_id}") as response:
            assert response.status == 200, "an ended call is remembered"
            ended = await response.json()
        async with http.delete(f"{gateway.url}/v1/calls/{caller.call_id}") as response:
            assert response.status == 204, "ending an ended call again is not an error"
        async with http.delete(f"{gateway.url}/v1/calls/never-was") as response:
            assert response.status == 404
    assert (ended["state"], ended["end_reason"]) == ("ended", "hangup")
    assert len(gateway.calls) == 0
    await gateway.emulator.wait_for(lambda: not gateway.emulator.active(call_id=caller.call_id), timeout=5)
    caller.call_id = None  # already hung up


async def test_ten_concurrent_calls_each_hear_only_their_own_voice(make_caller) -> None:
    callers = [make_caller() for _ in range(10)]
    await asyncio.gather(*(c.connect() for c in callers))
    await asyncio.gather(*(c.wait_for("ready") for c in callers))
    utterances = [speech_like(1.0, seed=100 + i) for i in range(10)]
    await asyncio.gather(*(say_and_hear_reply(c, u, timeout=30) for c, u in zip(callers, utterances)))
    for i, caller in enumerate(callers):
        recording = heard(caller)
        own, _ = best_match(utterances[i], recording)
        others = max(best_match(u, recording)[0] for j, u in enumerate(utterances) if j != i)
        assert own > 0.8, f"caller {i}: its own reply correlates only {own:.2f}"
        assert others < 0.3, f"caller {i}: another caller's voice correlates {others:.2f}"


async def test_get_reports_state_and_counters(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    await say_and_hear_reply(caller, speech_like(0.8, seed=3))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/v1/calls/{caller.call_id}") as response:
            assert response.status == 200
            call = await response.json()
    assert call["state"] == "active" and call["codec"] == "opus" and call["profile"] == "default"
    assert call["live"]["connections"] == 1 and call["live"]["audio_sent_bytes"] > 0
    assert call["uplink"]["frames"] > 0


async def test_whip_style_sdp_offer_is_answered_with_sdp(gateway: Gateway, no_leaks: None) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from gateway.media.track import PacedAudioTrack
    from gateway.client.caller import Microphone

    pc = RTCPeerConnection()
    pc.addTrack(PacedAudioTrack(Microphone(), 48_000))
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/whip", data=pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp"}) as response:
            assert response.status == 201
            assert response.content_type == "application/sdp"
            location, etag = response.headers["Location"], response.headers["ETag"]
            answer = await response.text()
        assert location.startswith("/v1/calls/") and etag.startswith('"')
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        async with http.delete(f"{gateway.url}{location}") as response:
            assert response.status == 204
    await pc.close()


async def test_delete_right_after_the_caller_closed_its_peer_connection_still_ends_the_call(
    gateway: Gateway, make_caller
) -> None:
    """aiortc shares one future between concurrent close() calls: cancelling one waiter must not break the rest."""
    caller = await answered(make_caller())
    await caller.pc.close()
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{gateway.url}/v1/calls/{caller.call_id}") as response:
            assert response.status == 204
    assert len(gateway.calls) == 0
    caller.call_id = None


async def test_trickled_candidates_are_accepted_and_a_stale_etag_is_refused(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    url = f"{gateway.url}/v1/calls/{caller.call_id}"
    fragment = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n"
    headers = {"Content-Type": "application/trickle-ice-sdpfrag"}
    async with aiohttp.ClientSession() as http:
        async with http.patch(url, data=fragment, headers=headers) as response:
            assert response.status == 204
        async with http.patch(url, data=fragment, headers={**headers, "If-Match": '"stale"'}) as response:
            assert response.status == 412
            assert (await response.json())["error"]["code"] == "precondition_failed"
        async with http.patch(url, data="a=candidate:garbage", headers=headers) as response:
            assert response.status == 400
    await say_and_hear_reply(caller, speech_like(0.6, seed=4))  # the call is undisturbed
