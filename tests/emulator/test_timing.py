"""Reply timing modes, measured loosely on the wire, and their exact plans under a seed."""

from __future__ import annotations

import random

import pytest

from gateway.emulator import Emulator, TimingMode
from gateway.emulator.replies import OUTPUT_RATE, plan_reply

from .conftest import MODEL, Recorder, client_for, live_config, send_audio
from .signals import utterance

SPEECH_S = 1.5


async def _reply_timing(emu: Emulator) -> tuple[list[float], list[float], float, float]:
    """(arrival of each audio chunk, its duration, generationComplete arrival, turnComplete arrival)."""
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, utterance(SPEECH_S)[0])
            await rec.next("turn_complete")
    chunks = [(t, len(m.data) / 2 / OUTPUT_RATE) for m, t in zip(rec.messages, rec.times) if m.data]
    at = {kind: t for kind, t in zip(rec.kinds, rec.times)}
    return [t for t, _ in chunks], [d for _, d in chunks], at["generation_complete"], at["turn_complete"]


async def test_burst_is_faster_than_real_time_but_turn_complete_waits_for_playback(make_emulator) -> None:
    arrivals, durations, generated, completed = await _reply_timing(await make_emulator(mode="burst", seed=11))
    assert sum(durations) == pytest.approx(SPEECH_S, abs=0.001)
    assert generated - arrivals[0] < 0.8 * SPEECH_S
    assert completed - arrivals[0] >= SPEECH_S - 0.05


async def test_realtime_paces_each_chunk_by_the_audio_before_it(make_emulator) -> None:
    arrivals, durations, generated, completed = await _reply_timing(await make_emulator(mode="realtime", seed=11))
    for index in range(1, len(arrivals)):
        assert arrivals[index] - arrivals[0] >= sum(durations[:index]) - 0.03
    assert completed - arrivals[0] >= SPEECH_S - 0.05


async def test_stall_mode_leaves_a_gap_inside_the_reply(make_emulator) -> None:
    arrivals, durations, _, completed = await _reply_timing(await make_emulator(mode="stall", seed=38))
    gaps = [arrivals[i] - arrivals[i - 1] - durations[i - 1] for i in range(1, len(arrivals))]
    assert max(gaps) >= 0.3 - 0.03
    assert completed - arrivals[0] >= SPEECH_S + max(gaps) - 0.1  # playback underran during the gap


async def _chunk_sizes(emu: Emulator) -> list[int]:
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, utterance(0.5)[0])
            await rec.next("turn_complete")
    return [len(m.data) for m in rec.messages if m.data]


async def test_the_same_seed_gives_the_same_chunk_sizes(make_emulator) -> None:
    first = await _chunk_sizes(await make_emulator(seed=7))
    again = await _chunk_sizes(await make_emulator(seed=7))
    other = await _chunk_sizes(await make_emulator(seed=8))
    assert first == again
    assert first != other
    assert sum(first) == sum(other)


@pytest.mark.parametrize("mode", list(TimingMode))
def test_plans_cut_the_reply_into_20_to_200_ms_chunks(mode: TimingMode) -> None:
    for seed in range(50):
        plan = plan_reply(OUTPUT_RATE * 3 + 7, mode, random.Random(seed))
        assert plan[0].start == 0 and plan[-1].end == OUTPUT_RATE * 3 + 7
        assert all(a.end == b.start for a, b in zip(plan, plan[1:]))
        assert all(0.020 <= c.duration_s <= 0.200 and (c.end - c.start) % (OUTPUT_RATE // 1000) == 0 for c in plan[:-1])
        assert all(a.send_at_s < b.send_at_s for a, b in zip(plan, plan[1:]))


def test_realtime_plan_sends_each_chunk_when_the_audio_before_it_has_played() -> None:
    plan = plan_reply(OUTPUT_RATE * 2, TimingMode.REALTIME, random.Random(1))
    for chunk in plan:
        assert chunk.send_at_s == pytest.approx(chunk.start / OUTPUT_RATE)


def test_burst_plan_starts_after_50_to_150_ms_and_runs_ahead_of_real_time() -> None:
    for seed in range(50):
        plan = plan_reply(OUTPUT_RATE * 2, TimingMode.BURST, random.Random(seed))
        assert 0.05 <= plan[0].send_at_s <= 0.15
        for a, b in zip(plan, plan[1:]):
            assert 0.05 * a.duration_s - 1e-9 <= b.send_at_s - a.send_at_s <= 0.5 * a.duration_s + 1e-9


def test_stall_plan_has_one_to_three_gaps_of_0_3_to_1_5_s() -> None:
    for seed in range(50):
        plan = plan_reply(OUTPUT_RATE * 2, TimingMode.STALL, random.Random(seed))
        gaps = [b.send_at_s - a.send_at_s - a.duration_s for a, b in zip(plan, plan[1:])]
        stalls = [g for g in gaps if g > 1e-6]
        assert 1 <= len(stalls) <= 3
        assert all(0.3 <= g <= 1.5 for g in stalls)
