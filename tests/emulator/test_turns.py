"""A user turn through the real SDK: the parrot reply, its transcriptions and the order of the messages."""

from __future__ import annotations

import numpy as np
import pytest
from google import genai
from google.genai import types

from gateway.emulator import Emulator

from .conftest import MODEL, Recorder, client_for, kind, live_config, send_audio
from .signals import RATE_IN, RATE_OUT, dominant_hz, expected_reply, from_pcm, peak_ncc, silence, utterance


async def test_a_full_turn_parrots_the_utterance_at_24khz(emu: Emulator) -> None:
    audio, speech = utterance(0.8)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, audio)
            await rec.next("turn_complete")
    kinds = rec.kinds
    first_audio, last_audio = kinds.index("audio"), len(kinds) - 1 - kinds[::-1].index("audio")
    assert kinds[: first_audio + 2] == ["input_transcription", "audio", "output_transcription"]
    assert kinds[last_audio + 1 :] == ["generation_complete", "turn_complete"]
    turns = [m.server_content.model_turn for m in rec.messages if kind(m) == "audio"]
    assert {part.inline_data.mime_type for turn in turns for part in turn.parts} == {"audio/pcm;rate=24000"}
    reply = from_pcm(rec.audio())
    assert abs(reply.size / RATE_OUT - speech.size / RATE_IN) <= 0.020
    assert peak_ncc(reply, expected_reply(speech)) > 0.9
    usage = rec.messages[-1].usage_metadata
    assert usage is not None and usage.total_token_count == usage.prompt_token_count + usage.response_token_count > 0


async def test_transcriptions_carry_the_utterance_length_and_the_turn_counter(emu: Emulator) -> None:
    first, _ = utterance(0.6, seed=1)
    second, _ = utterance(0.9, seed=2)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, first)
            await rec.next("turn_complete")
            await send_audio(session, second)
            await rec.next("turn_complete")
    assert rec.texts("input_transcription") == ["[speech 0.60 s]", "[speech 0.90 s]"]
    assert rec.texts("output_transcription") == ["reply 1", "reply 2"]
    assert all(m.server_content.input_transcription.finished for m in rec.messages if kind(m) == "input_transcription")
    assert emu.connections[0].conversation.turn == 2


async def test_no_transcriptions_unless_the_setup_asks_for_them(emu: Emulator) -> None:
    audio, _ = utterance(0.4)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(transcribe=False)) as session:
        async with Recorder(session) as rec:
            await send_audio(session, audio)
            await rec.next("turn_complete")
    assert "audio" in rec.kinds
    assert "input_transcription" not in rec.kinds and "output_transcription" not in rec.kinds


@pytest.mark.parametrize("api_version", ["v1beta", "v1alpha", None])
@pytest.mark.parametrize("trailing_slash", [True, False])
async def test_reached_with_any_base_url_form_and_api_version(
    emu: Emulator, api_version: str | None, trailing_slash: bool
) -> None:
    client = client_for(emu, api_version=api_version, trailing_slash=trailing_slash)
    async with client.aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await session.send_realtime_input(text="ping")
            await rec.next("turn_complete")
    assert emu.connections[0].api_version == (api_version or "v1")  # 3.4.0 defaults to v1
    assert emu.connections[0].model == MODEL


async def test_the_vertex_path_serves_the_sdk_in_vertex_express_mode(emu: Emulator) -> None:
    client = genai.Client(
        vertexai=True,
        api_key="test-key",
        http_options=types.HttpOptions(base_url=emu.url + "/", async_client_args={"ssl": emu.client_ssl_context()}),
    )
    async with client.aio.live.connect(model="gemini-live-2.5-flash-native-audio", config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, utterance(0.3)[0])
            await rec.next("turn_complete")
    assert rec.texts("output_transcription") == ["reply 1"]
    conn = emu.connections[0]
    assert (conn.api_version, conn.model) == ("v1beta1", "gemini-live-2.5-flash-native-audio")
    assert conn.setup["model"] == "publishers/google/models/gemini-live-2.5-flash-native-audio"


async def test_typed_text_gets_a_short_tone_and_a_quoted_transcript(emu: Emulator) -> None:
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await session.send_realtime_input(text='say "hi"')
            await rec.next("turn_complete")
    assert "input_transcription" not in rec.kinds
    assert rec.texts("output_transcription") == ['reply 1: "say \\"hi\\""']
    tone = from_pcm(rec.audio())
    assert tone.size == RATE_OUT * 3 // 10
    assert dominant_hz(tone) == pytest.approx(440, abs=5)
    assert 20 * np.log10(np.abs(tone).max() / 32768) == pytest.approx(-12, abs=0.5)
    assert emu.connections[0].counts["text"] == 1


async def test_client_content_with_turn_complete_is_answered_like_typed_text(emu: Emulator) -> None:
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            turn = types.Content(role="user", parts=[types.Part(text="Hi there")])
            await session.send_client_content(turns=turn, turn_complete=True)
            await rec.next("turn_complete")
    assert rec.texts("output_transcription") == ['reply 1: "Hi there"']
    assert emu.connections[0].counts["clientContent"] == 1


async def test_client_content_seed_sets_the_turn_counter(emu: Emulator) -> None:
    history = [
        types.Content(role="user", parts=[types.Part(text="one")]),
        types.Content(role="model", parts=[types.Part(text="reply 1")]),
        types.Content(role="user", parts=[types.Part(text="two")]),
        types.Content(role="model", parts=[types.Part(text="reply 2")]),
    ]
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await session.send_client_content(turns=history, turn_complete=False)
            await emu.wait_for(lambda: emu.connections[0].conversation.turn == 2)
            assert [c["role"] for c in emu.connections[0].conversation.history] == ["user", "model", "user", "model"]
            await session.send_realtime_input(text="three")
            await rec.next("turn_complete")
    assert rec.texts("output_transcription") == ['reply 3: "three"']


async def test_activity_signals_bracket_the_turn_when_detection_is_disabled(emu: Emulator) -> None:
    config = live_config(
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        )
    )
    audio, _ = utterance(0.5, lead_s=0.2, tail_s=0.3)
    async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
        async with Recorder(session) as rec:
            await send_audio(session, silence(1.5))  # no activity, no turn, however long the silence
            await session.send_realtime_input(activity_start=types.ActivityStart())
            await send_audio(session, audio)
            await session.send_realtime_input(activity_end=types.ActivityEnd())
            await rec.next("turn_complete")
    assert rec.texts("input_transcription") == ["[speech 1.00 s]"]  # everything between the signals
    assert from_pcm(rec.audio()).size == RATE_OUT  # the whole bracket comes back
    counts = emu.connections[0].counts
    assert counts["activityStart"] == counts["activityEnd"] == 1


async def test_audio_stream_end_ends_the_utterance_at_once(emu: Emulator) -> None:
    audio, speech = utterance(0.5, tail_s=0.0)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(silence_ms=2000)) as session:
        async with Recorder(session) as rec:
            await send_audio(session, audio)
            await session.send_realtime_input(audio_stream_end=True)
            await rec.next("turn_complete")
    assert rec.texts("input_transcription") == ["[speech 0.50 s]"]
    assert peak_ncc(from_pcm(rec.audio()), expected_reply(speech)) > 0.9


async def test_turn_coverage_all_input_includes_the_silence_before_the_speech(emu: Emulator) -> None:
    config = live_config(
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=200),
            turn_coverage=types.TurnCoverage.TURN_INCLUDES_ALL_INPUT,
        )
    )
    audio, _ = utterance(0.5, lead_s=0.3, tail_s=0.4)
    async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
        async with Recorder(session) as rec:
            await send_audio(session, audio)
            await rec.next("turn_complete")
    assert rec.texts("input_transcription") == ["[speech 0.80 s]"]


async def test_the_setup_reaches_the_activity_detector(emu: Emulator) -> None:
    config = live_config(
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(
                start_of_speech_sensitivity=types.StartSensitivity.START_SENSITIVITY_LOW,
                end_of_speech_sensitivity=types.EndSensitivity.END_SENSITIVITY_LOW,
                prefix_padding_ms=20,
                silence_duration_ms=300,
            ),
            activity_handling=types.ActivityHandling.NO_INTERRUPTION,
        )
    )
    async with client_for(emu).aio.live.connect(model=MODEL, config=config):
        await emu.wait_for(lambda: emu.connections[0].session is not None)
    activity = emu.connections[0].session.setup.activity
    assert (activity.vad.start_threshold_dbfs, activity.vad.end_threshold_dbfs) == (-40.0, -55.0)
    assert (activity.vad.start_ms, activity.vad.end_ms) == (20, 300)
    assert activity.automatic and not activity.interrupts and not activity.all_input
