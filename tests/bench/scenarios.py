"""What the benchmark's callers do: whole replies, barge-ins and steady talk, as real aiortc callers.

Every wait is for an event from the gateway (`Caller.wait_for`), except the steady windows, whose length is
the measurement itself, and the pause before a barge-in, which is the scenario (speak over a playing reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from gateway.client.caller import Caller
from gateway.client.signals import silence, speech_like

RATE = 16_000
CONNECT_TIMEOUT_S = 30.0
REPLY_TIMEOUT_S = 15.0  # beyond the utterance itself: VAD end, reply, stalls, playout
TALK_S, PAUSE_S = 1.5, 2.5  # steady talk: an utterance, then silence long enough for its reply to play
BARGE_IN_AFTER_S = (0.3, 0.8)  # how far into a playing reply the caller speaks over it
SILENT_PEAK = 330  # -40 dBFS: a received frame quieter than this at its end has gone silent
UTTERANCES = 8  # distinct utterances, reused: making them costs the bench process CPU


def utterance(seconds: float, seed: int) -> np.ndarray:
    return _utterances(seconds)[seed % UTTERANCES]


_cache: dict[float, list[np.ndarray]] = {}


def _utterances(seconds: float) -> list[np.ndarray]:
    if seconds not in _cache:
        _cache[seconds] = [speech_like(seconds, seed=seed, rate=RATE) for seed in range(UTTERANCES)]
    return _cache[seconds]


def is_speaking(event: dict[str, Any]) -> bool:
    return event.get("state") == "speaking"


def is_listening(event: dict[str, Any]) -> bool:
    return event.get("state") == "listening"


@contextlib.asynccontextmanager
async def calls(url: str, count: int, *, events: bool = True, codec: str | None = None) -> AsyncIterator[list[Caller]]:
    """`count` connected callers (ready, when the server has an events channel); all hang up at the end."""
    callers = [Caller(url, codec=codec) for _ in range(count)]
    try:
        await asyncio.gather(*(_connect(caller, events) for caller in callers))
        yield callers
    finally:
        await asyncio.gather(*(caller.hang_up() for caller in callers), return_exceptions=True)


async def _connect(caller: Caller, events: bool) -> None:
    await caller.connect()
    await asyncio.wait_for(caller.connected.wait(), CONNECT_TIMEOUT_S)
    if events:
        await caller.wait_for("ready", timeout=CONNECT_TIMEOUT_S)


async def snapshots(url: str, callers: list[Caller]) -> list[dict[str, Any]]:
    """Each call's `GET /v1/calls/<id>` (taken before hanging up: an ended call is gone)."""
    async with aiohttp.ClientSession() as http:
        async def one(caller: Caller) -> dict[str, Any]:
            async with http.get(f"{url}/v1/calls/{caller.call_id}") as response:
                response.raise_for_status()
                return await response.json()
        return await asyncio.gather(*(one(caller) for caller in callers))


async def whole_replies(caller: Caller, turns: int, seconds: float, seed: int) -> None:
    """Say an utterance, let its whole reply play, and again."""
    for turn in range(turns):
        since = len(caller.events)
        caller.say(utterance(seconds, seed + turn), RATE)
        timeout = seconds + REPLY_TIMEOUT_S + seconds
        await caller.wait_for("turn_complete", since=since, timeout=timeout)
        await caller.wait_for("state", is_listening, since=since, timeout=timeout)


@dataclass
class BargeIn:
    speech_at: float  # the caller's clock when the interrupting speech started playing into its track
    interrupted_at: float  # when the caller got the `interrupted` event
    source: str  # live or local


async def barge_ins(caller: Caller, count: int, seconds: float, seed: int) -> list[BargeIn]:
    """Speak, and each time the reply plays, speak over it: every utterance interrupts the reply before it."""
    rng = random.Random(seed)
    found: list[BargeIn] = []
    since = len(caller.events)
    caller.say(utterance(seconds, seed), RATE)
    for n in range(1, count + 1):
        await caller.wait_for("state", is_speaking, since=since, timeout=seconds + REPLY_TIMEOUT_S)
        await asyncio.sleep(rng.uniform(*BARGE_IN_AFTER_S))
        since, clip = len(caller.events), len(caller.mic.clip_starts)
        caller.say(utterance(seconds, seed + n), RATE)
        event = await caller.wait_for("interrupted", since=since, timeout=REPLY_TIMEOUT_S)
        found.append(BargeIn(caller.mic.clip_starts[clip], event["_received"], event.get("source", "?")))
    await caller.wait_for("turn_complete", since=since, timeout=2 * seconds + REPLY_TIMEOUT_S)
    return found


def silence_after(caller: Caller, at: float) -> float | None:
    """Seconds from `at` until the first received frame that ends in silence, if the reply was audible at `at`."""
    recording = caller.recording
    arrivals = np.asarray(recording.arrivals)
    first = int(np.searchsorted(arrivals, at))
    if first >= arrivals.size or np.abs(recording.frames[first]).max() < SILENT_PEAK:
        return None  # nothing audible when the caller spoke: no cut to time
    for index in range(first, arrivals.size):
        frame = recording.frames[index]
        if np.abs(frame[-frame.size // 4 :]).max() < SILENT_PEAK:
            return float(arrivals[index] - at)
    return None


def queue_talk(caller: Caller, seconds: float, seed: int) -> None:
    """Queue utterance/silence cycles covering `seconds` on the caller's microphone (no waiting)."""
    cycles = int(seconds // (TALK_S + PAUSE_S)) + 1
    for cycle in range(cycles):
        caller.say(utterance(TALK_S, seed + cycle), RATE)
        caller.say(silence(PAUSE_S, rate=RATE), RATE)
