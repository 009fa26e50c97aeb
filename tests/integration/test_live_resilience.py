"""The Live side under stress: GoAway handovers, connections killed at any moment, a fatal close."""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.calls.call import CallState
from gateway.client.signals import silence, speech_like
from tests.audio import best_match
from tests.fixtures import Gateway, answered
from tests.integration.test_call import RATE, heard, say_and_hear_reply

SAMPLES_PER_S = 16_000


def final_replies(caller) -> list[str]:
    return [e["text"] for e in caller.of_type("transcript") if e["role"] == "model" and e["final"]]


# Connections live 4 s and get a GoAway 2.5 s before they close: the switch window (2.5 s less a margin)
# is longer than the busy part of a turn below, so every handover can find a turn boundary, as it can
# against Gemini, whose GoAway comes tens of seconds ahead.
@pytest.mark.parametrize("emulator_config", [{"lifetime_s": 4.0, "goaway_notice_s": 2.5}], indirect=True)
async def test_a_call_spans_five_goaway_handovers_and_loses_nothing(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    call = gateway.calls.get(caller.call_id)
    utterances = []
    while call.live.stats.handovers < 5 or len(utterances) < 4:
        assert len(utterances) < 15, "five handovers should take far fewer turns"
        utterances.append(speech_like(0.6, seed=200 + len(utterances)))
        await say_and_hear_reply(caller, utterances[-1])
        await asyncio.sleep(0.4)  # a pause between turns, as people leave

    assert final_replies(caller) == [f"reply {n}" for n in range(1, len(utterances) + 1)], "turn counter broken"
    recording = heard(caller)
    for n, utterance in enumerate(utterances, 1):
        score, _ = best_match(utterance, recording)
        assert score > 0.8, f"reply {n} is not complete (correlation {score:.2f})"
    assert call.live.stats.reconnects == 0, "every switch should be a planned handover"
    assert call.live.stats.forced_handovers == 0, "every switch should happen at a turn boundary"
    assert "reconnecting" not in [e["state"] for e in caller.of_type("state")], "the caller should notice nothing"
    assert call.downlink.stats()["underruns"] == 0, "a gap was heard"

    # Everything the caller said reached the conversation: the emulator's count for this conversation
    # (restored from each handle, then counted) equals what the gateway sent, give or take what is in flight.
    (live,) = gateway.emulator.active(call_id=caller.call_id)
    assert len(gateway.emulator.connections) >= 6
    delivered = call.live.stats.audio_appended_bytes // 2 - int(call.live.uplink_backlog_s * SAMPLES_PER_S)
    assert abs(live.conversation.audio_in_samples - delivered) < 0.1 * SAMPLES_PER_S, (
        live.conversation.audio_in_samples, delivered)


async def test_the_call_survives_twenty_live_connections_killed_at_random_moments(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    rng = random.Random(20)
    emulator = gateway.emulator
    turns = 0
    for kill in range(20):
        moment = ("idle", "mid-reply", "setup")[kill % 3]
        (live,) = emulator.active(call_id=caller.call_id)
        mark = len(caller.events)
        if moment == "mid-reply":
            turns += 1
            caller.say(speech_like(1.2, seed=300 + kill), RATE)
            caller.say(silence(1.0), RATE)
            await caller.wait_for("state", lambda e: e["state"] == "speaking", since=mark, timeout=10)
            await asyncio.sleep(rng.uniform(0.0, 0.3))
        elif moment == "setup":
            emulator.refuse_next_setups(count=1, code=1011, reason="The service is currently unavailable.")
        if rng.random() < 0.5:
            await live.drop()
        else:
            await live.close(1011, "Internal error occurred.")
        lost = await caller.wait_for("state", lambda e: e["state"] == "reconnecting", since=mark, timeout=10)
        await caller.wait_for("state", lambda e: e["state"] != "reconnecting", since=caller.events.index(lost) + 1,
                              timeout=15)
        if moment == "mid-reply":  # the resumed session answers the utterance that was cut off
            await caller.wait_for("turn_complete", since=mark, timeout=15)
        turns += 1
        await say_and_hear_reply(caller, speech_like(0.6, seed=400 + kill))
        assert final_replies(caller)[-1] == f"reply {turns}", f"kill {kill} ({moment}): {final_replies(caller)}"

    call = gateway.calls.get(caller.call_id)
    assert call.state is CallState.ACTIVE
    assert call.live.stats.reconnects == 20
    assert final_replies(caller) == [f"reply {n}" for n in range(1, turns + 1)]


@pytest.mark.parametrize("emulator_config", [{"api_key": "the-right-key"}], indirect=True)
async def test_a_bad_key_ends_the_call_with_a_clear_error_and_no_retry_storm(gateway: Gateway, make_caller) -> None:
    caller = make_caller()
    await caller.connect()
    error = await caller.wait_for("error", timeout=10)
    assert error["code"] == "live_invalid_request"
    assert "API key not valid" in error["message"]
    ended = await caller.wait_for("ended", timeout=10)
    assert ended["reason"] == "live_invalid_request"
    await gateway.emulator.wait_for(lambda: len(gateway.calls) == 0, timeout=5)
    await asyncio.sleep(1.0)  # long enough for any retry to have happened
    assert len(gateway.emulator.connections) == 1, "a fatal close must not be retried"
    caller.call_id = None  # the gateway already hung up


async def test_a_refused_resume_goes_on_in_a_fresh_session_seeded_with_the_conversation(
    gateway: Gateway, make_caller
) -> None:
    caller = await answered(make_caller())
    await say_and_hear_reply(caller, speech_like(0.6, seed=500))
    gateway.emulator.expire_handles()  # as if the 2 hours had passed
    mark = len(caller.events)
    (live,) = gateway.emulator.active(call_id=caller.call_id)
    await live.drop()
    await caller.wait_for("state", lambda e: e["state"] == "listening", since=mark, timeout=10)
    await say_and_hear_reply(caller, speech_like(0.6, seed=501))
    assert final_replies(caller) == ["reply 1", "reply 2"], "the re-seeded session must know the first turn"
    call = gateway.calls.get(caller.call_id)
    assert (call.live.stats.resumes_refused, call.live.stats.reseeds) == (1, 1)
    (fresh,) = gateway.emulator.active(call_id=caller.call_id)
    assert fresh.resumed_from is None
    assert [turn["role"] for turn in fresh.conversation.history[:2]] == ["user", "model"]


@pytest.mark.parametrize("settings", [{"live_retry_budget_s": 1.0}], indirect=True)
async def test_when_live_stays_unreachable_the_call_gives_up_with_a_clear_error(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    gateway.emulator.refuse_next_setups(count=1000)
    (live,) = gateway.emulator.active(call_id=caller.call_id)
    await live.drop()
    error = await caller.wait_for("error", timeout=10)
    assert error["code"] == "live_unavailable" and "gave up" in error["message"]
    assert (await caller.wait_for("ended", timeout=10))["reason"] == "live_unavailable"
    caller.call_id = None


async def test_every_live_session_asks_for_resumption_and_context_compression(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    (live,) = gateway.emulator.active(call_id=caller.call_id)
    assert "sessionResumption" in live.setup
    assert live.setup["contextWindowCompression"]["slidingWindow"]["targetTokens"] == 12_800


@pytest.mark.parametrize("settings", [{"live_stall_s": 1.5}], indirect=True)
async def test_a_live_connection_that_goes_silent_is_replaced_and_the_turn_answered(
    gateway: Gateway, make_caller
) -> None:
    caller = await answered(make_caller())
    (live,) = gateway.emulator.active(call_id=caller.call_id)
    live.stall(None)  # alive at the socket level (pings answered), but says nothing
    utterance = speech_like(0.6, seed=510)
    await say_and_hear_reply(caller, utterance)
    assert final_replies(caller) == ["reply 1"]
    assert best_match(utterance, heard(caller))[0] > 0.8
    call = gateway.calls.get(caller.call_id)
    assert (call.live.stats.stalls, call.live.stats.reconnects) == (1, 1)
