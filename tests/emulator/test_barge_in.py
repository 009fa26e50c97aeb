"""Barge-in: speech during a reply stops it (interrupted, then turnComplete) and the rest is never sent."""

from __future__ import annotations

from google.genai import types

from gateway.emulator import Emulator

from .conftest import MODEL, Recorder, client_for, live_config, send_audio
from .signals import RATE_IN, RATE_OUT, silence, speech_like, utterance


def _between(kinds: list[str], start: int, stop_kind: str) -> list[str]:
    return kinds[start : kinds.index(stop_kind, start)]


async def test_speech_during_generation_interrupts_and_the_rest_is_never_sent(make_emulator) -> None:
    emu: Emulator = await make_emulator(mode="realtime", seed=3)
    first, speech = utterance(1.5)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, first)
            await rec.next("audio")
            await send_audio(session, speech_like(0.4, seed=5))  # the caller talks over the reply
            await rec.next("interrupted")
            interrupted_at = rec.cursor - 1
            await send_audio(session, silence(0.4))
            await rec.next("turn_complete")  # the interrupted turn's
            await rec.next("turn_complete")  # the reply to the interruption
    kinds = rec.kinds
    assert kinds[interrupted_at : interrupted_at + 2] == ["interrupted", "turn_complete"]
    assert "generation_complete" not in kinds[:interrupted_at]
    assert "audio" not in _between(kinds, interrupted_at, "input_transcription")
    assert len(rec.audio(0, interrupted_at)) < 2 * speech.size * RATE_OUT // RATE_IN
    assert rec.texts("output_transcription") == ["reply 1", "reply 2"]
    assert rec.texts("input_transcription") == ["[speech 1.50 s]", "[speech 0.40 s]"]
    sent = emu.connections[0].sent_kinds
    assert sent.index("interrupted") + 1 == sent.index("turnComplete")


async def test_speech_in_the_playback_window_interrupts_after_generation_complete(emu: Emulator) -> None:
    first, _ = utterance(1.5)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, first)
            await rec.next("generation_complete")  # burst: generated long before it has played
            generated_at = rec.cursor - 1
            await send_audio(session, speech_like(0.3, seed=5))
            await rec.next("interrupted")
            await rec.next("turn_complete")
    kinds = rec.kinds
    assert kinds[generated_at:] == ["generation_complete", "interrupted", "turn_complete"]


async def test_no_interruption_lets_the_reply_play_on(emu: Emulator) -> None:
    config = live_config(
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=200),
            activity_handling=types.ActivityHandling.NO_INTERRUPTION,
        )
    )
    first, speech = utterance(1.0)
    second, _ = utterance(0.3, seed=5)
    async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
        async with Recorder(session) as rec:
            await send_audio(session, first)
            await rec.next("audio")
            await send_audio(session, second)
            await rec.next("turn_complete")
            first_turn_end = rec.cursor
            await rec.next("turn_complete")
    assert "interrupted" not in rec.kinds
    assert len(rec.audio(0, first_turn_end)) == 2 * speech.size * RATE_OUT // RATE_IN
    assert rec.texts("output_transcription") == ["reply 1", "reply 2"]


async def test_client_content_interrupts_a_reply(emu: Emulator) -> None:
    first, _ = utterance(1.0)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, first)
            await rec.next("audio")
            await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="stop")]))
            await rec.next("interrupted")
            await rec.next("turn_complete")
            await rec.next("turn_complete")
    assert rec.texts("output_transcription") == ["reply 1", 'reply 2: "stop"']
