"""Barge-in: the reply stops when the caller talks over it, on Gemini's word or on the gateway's own VAD."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gateway.client.caller import Caller
from gateway.client.signals import silence, speech_like
from gateway.config import BUILTIN_PROFILES, Profile, VadProfile
from tests.integration.test_call import RATE

CROSSING_S = 0.25  # after the gateway cut, audio already on its way (network, caller jitter buffer)


def level_dbfs(samples: np.ndarray) -> float:
    rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2)) if samples.size else 0.0
    return 20 * np.log10(max(rms, 1e-6) / 32768)


def heard_between(caller: Caller, start: float, end: float) -> np.ndarray:
    """The audio the caller received between two clock times."""
    rec = caller.recording
    frames = [f for f, t in zip(rec.frames, rec.arrivals) if start <= t < end]
    return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)


async def talk_over_the_reply(caller: Caller, interruption: np.ndarray) -> dict:
    """Say something long, wait for its reply to play, talk over it; returns the `interrupted` event."""
    await caller.wait_for("ready")
    caller.say(speech_like(2.5, seed=70), RATE)
    caller.say(silence(0.8), RATE)
    mark = len(caller.events)
    await caller.wait_for("state", lambda e: e["state"] == "speaking", since=mark, timeout=10)
    await asyncio.sleep(0.6)  # well into the reply
    caller.say(interruption, RATE)
    caller.say(silence(0.8), RATE)
    return await caller.wait_for("interrupted", since=mark, timeout=10)


async def test_gemini_interrupting_stops_the_reply_at_once(make_caller) -> None:
    caller = make_caller()
    await caller.connect()
    interrupted = await talk_over_the_reply(caller, speech_like(0.8, seed=71))
    assert interrupted["source"] == "live"
    cut_at = interrupted["_received"]
    assert level_dbfs(heard_between(caller, cut_at - 0.5, cut_at)) > -40, "the reply should have been playing"
    await asyncio.sleep(CROSSING_S + 0.5)
    after = heard_between(caller, cut_at + CROSSING_S, cut_at + CROSSING_S + 0.5)
    assert after.size and level_dbfs(after) < -60, "the rest of the reply kept playing"


QUIET_PROFILE = Profile(
    name="quiet-barge-in",
    vad=VadProfile(start_sensitivity="low"),  # the emulator needs -40 dBFS to hear speech start
    local_barge_in=True,
    local_barge_in_threshold_dbfs=-50.0,  # the gateway hears -45 dBFS speech
)


@pytest.mark.parametrize("settings", [{"profiles": {**BUILTIN_PROFILES, "quiet": QUIET_PROFILE}}], indirect=True)
async def test_local_barge_in_stops_the_reply_even_when_gemini_does_not_interrupt(make_caller) -> None:
    caller = make_caller(profile="quiet")
    await caller.connect()
    quiet = (speech_like(0.8, seed=72).astype(np.float64) * 10 ** (-25 / 20)).astype(np.int16)  # -45 dBFS
    interrupted = await talk_over_the_reply(caller, quiet)
    assert interrupted["source"] == "local"
    cut_at = interrupted["_received"]
    mark = caller.events.index(interrupted)
    await caller.wait_for("turn_complete", since=mark, timeout=10)  # Gemini finished its turn regardless
    after = heard_between(caller, cut_at + CROSSING_S, caller.events[-1]["_received"])
    assert after.size and level_dbfs(after) < -60, "the rest of the reply must be discarded, not played"
    assert not [e for e in caller.events[mark + 1 :] if e["type"] == "interrupted"]
