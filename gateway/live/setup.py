"""A conversation profile as the Live API's setup: what `client.aio.live.connect(config=...)` is given."""

from __future__ import annotations

from google.genai import types

from gateway.config import Profile

CALL_ID_HEADER = "x-gateway-call-id"  # tags each Live connection with its call, for logs and the emulator

_START = {"high": types.StartSensitivity.START_SENSITIVITY_HIGH, "low": types.StartSensitivity.START_SENSITIVITY_LOW}
_END = {"high": types.EndSensitivity.END_SENSITIVITY_HIGH, "low": types.EndSensitivity.END_SENSITIVITY_LOW}


def connect_config(profile: Profile, *, call_id: str, handle: str | None) -> types.LiveConnectConfig:
    """Setup for one connection of a call: always asks for resumption handles, resuming `handle` if given."""
    vad = profile.vad
    speech = types.SpeechConfig(
        voice_config=(
            types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=profile.voice))
            if profile.voice
            else None
        ),
        language_code=profile.language,
    )
    transcription = types.AudioTranscriptionConfig() if profile.transcription else None
    compression = profile.compression
    return types.LiveConnectConfig(
        http_options=types.HttpOptions(headers={CALL_ID_HEADER: call_id}),
        response_modalities=[types.Modality.AUDIO],
        speech_config=speech,
        system_instruction=profile.system_instruction,
        input_audio_transcription=transcription,
        output_audio_transcription=transcription,
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(
                disabled=vad.disabled,
                start_of_speech_sensitivity=_START[vad.start_sensitivity],
                end_of_speech_sensitivity=_END[vad.end_sensitivity],
                prefix_padding_ms=vad.prefix_padding_ms,
                silence_duration_ms=vad.silence_duration_ms,
            ),
            activity_handling=types.ActivityHandling.START_OF_ACTIVITY_INTERRUPTS,
        ),
        session_resumption=types.SessionResumptionConfig(handle=handle),
        context_window_compression=(
            types.ContextWindowCompressionConfig(
                trigger_tokens=compression.trigger_tokens,
                sliding_window=types.SlidingWindow(target_tokens=compression.target_tokens),
            )
            if compression.enabled
            else None
        ),
        tools=(
            [types.Tool(function_declarations=[types.FunctionDeclaration(**tool) for tool in profile.tools])]
            if profile.tools
            else None
        ),
    )
