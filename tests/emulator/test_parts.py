"""The emulator's pure parts: key spellings, base64, close reasons, turn detection, handles, certificate."""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509

from gateway.emulator import Close, Conversation, Emulator
from gateway.emulator.conversation import HandleStore
from gateway.emulator.tls import write_certificate
from gateway.emulator.turns import ActivitySettings, TurnDetector, TurnEventKind
from gateway.emulator.wire import ProtocolError, decode_base64, normalise_keys, parse_client_message

from .signals import RATE_IN, silence, speech_like


def test_keys_become_camel_case_except_inside_user_data() -> None:
    response = {"snake_key": 1, "nested_map": {"a_b": 2}}
    parameters = {"properties": {"city_name": {"type": "STRING"}}}
    message = {
        "tool_response": {"function_responses": [{"id": "fc-1", "response": response}]},
        "setup": {"tools": [{"function_declarations": [{"parameters": parameters}]}], "input_audio_transcription": {}},
    }
    assert normalise_keys(message) == {
        "toolResponse": {"functionResponses": [{"id": "fc-1", "response": response}]},
        "setup": {"tools": [{"functionDeclarations": [{"parameters": parameters}]}], "inputAudioTranscription": {}},
    }


@pytest.mark.parametrize("payload", [b"\xfb\xff\xbf", b"\x00", b"ab", bytes(range(256))])
def test_both_base64_alphabets_padded_or_not_decode(payload: bytes) -> None:
    for text in (base64.b64encode(payload).decode(), base64.urlsafe_b64encode(payload).decode()):
        assert decode_base64(text) == decode_base64(text.rstrip("=")) == payload


@pytest.mark.parametrize("text", ["!!!!", "abcde", 12])
def test_invalid_base64_is_a_protocol_error(text: object) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_base64(text)
    assert caught.value.close.code == 1007


@pytest.mark.parametrize("raw", ["[]", "{}", '{"a": 1, "b": 2}', "{", b"\xff"])
def test_a_client_message_has_exactly_one_top_level_key(raw: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_client_message(raw)


def test_close_reasons_are_cut_to_123_bytes_without_splitting_a_character() -> None:
    assert Close(1011, "a" * 200).reason_bytes() == b"a" * 123
    assert Close(1011, "€" * 50).reason_bytes() == "€".encode() * 41


def _turns(settings: ActivitySettings, audio: np.ndarray, chunk: int) -> list[tuple[str, int]]:
    detector = TurnDetector(settings)
    events = []
    for start in range(0, audio.size, chunk):
        events += [(e.kind.value, e.utterance.size) for e in detector.feed(audio[start : start + chunk])]
    return events


def test_turn_detection_counts_samples_so_a_burst_equals_real_time_chunks() -> None:
    audio = np.concatenate([silence(0.3), speech_like(0.7), silence(0.8), speech_like(0.5, seed=2), silence(0.8)])
    as_20ms = _turns(ActivitySettings(), audio, 320)
    assert as_20ms == _turns(ActivitySettings(), audio, audio.size) == _turns(ActivitySettings(), audio, 777)
    assert as_20ms == [("started", 0), ("ended", round(0.7 * RATE_IN)), ("started", 0), ("ended", round(0.5 * RATE_IN))]


def test_low_start_sensitivity_ignores_speech_that_high_detects() -> None:
    quiet = np.concatenate([speech_like(0.6, rms_dbfs=-47.0), silence(0.8)])
    low, high = (
        ActivitySettings.from_config({"automaticActivityDetection": {"startOfSpeechSensitivity": sensitivity}})
        for sensitivity in ("START_SENSITIVITY_LOW", "START_SENSITIVITY_HIGH")
    )
    assert _turns(low, quiet, 320) == []
    assert [kind for kind, _ in _turns(high, quiet, 320)] == ["started", "ended"]


def test_silence_duration_decides_whether_a_pause_ends_the_turn() -> None:
    audio = np.concatenate([speech_like(0.4), silence(0.3), speech_like(0.4, seed=3), silence(1.0)])
    short = ActivitySettings.from_config({"automaticActivityDetection": {"silenceDurationMs": 200}})
    long = ActivitySettings.from_config({"automaticActivityDetection": {"silence_duration_ms": "500"}})
    assert len(_turns(short, audio, 320)) == 4
    assert _turns(long, audio, 320) == [("started", 0), ("ended", round(1.1 * RATE_IN))]


@pytest.mark.parametrize(
    "config",
    [
        {"automaticActivityDetection": {"silenceDurationMs": "soon"}},
        {"automaticActivityDetection": {"prefixPaddingMs": -1}},
        [1],
    ],
)
def test_an_unusable_realtime_input_config_is_a_protocol_error(config: object) -> None:
    with pytest.raises(ProtocolError):
        ActivitySettings.from_config(config)


def test_explicit_activity_ignores_stream_end_and_unmatched_signals() -> None:
    detector = TurnDetector(ActivitySettings(automatic=False))
    assert detector.activity_end() == [] and detector.feed(speech_like(0.5)) == []
    assert [e.kind for e in detector.activity_start()] == [TurnEventKind.STARTED]
    assert detector.activity_start() == []
    detector.feed(speech_like(0.25))
    assert detector.stream_end() == []
    (ended,) = detector.activity_end()
    assert ended.utterance.size == RATE_IN // 4


def test_handles_restore_independent_copies_until_they_expire() -> None:
    now = [0.0]
    store = HandleStore(ttl_s=10.0, clock=lambda: now[0])
    history = [{"role": "model", "parts": [{"text": "reply 2"}]}]
    conversation = Conversation(turn=2, audio_in_samples=100, history=list(history))
    handle = store.issue(conversation, lineage=7)
    conversation.turn = 5
    restored, lineage = store.restore(handle)
    restored.history.clear()
    assert lineage == 7 and store.restore(handle)[0] == Conversation(2, 100, history)
    now[0] = 10.0
    assert store.restore(handle) is None
    store.issue(conversation, lineage=8)
    assert len(store) == 1  # expired handles are forgotten


def test_a_seed_sets_the_counter_to_the_model_turns_in_the_history() -> None:
    conversation = Conversation()
    conversation.record("user", "[speech 1.00 s]")
    conversation.record("model", "reply 1")
    conversation.seed([{"role": "user", "parts": []}, {"role": "model", "parts": []}, {"role": "model", "parts": []}])
    assert conversation.turn == 3


def test_the_certificate_is_its_own_ca_for_127_0_0_1_and_localhost(tmp_path: Path) -> None:
    files = write_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.parametrize("server_hostname", ["127.0.0.1", "localhost"])
async def test_a_strict_tls_client_trusts_the_emulator(emu: Emulator, server_hostname: str) -> None:
    strict = emu.client_ssl_context()
    strict.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default; the certificate must pass it
    _, writer = await asyncio.open_connection("127.0.0.1", emu.port, ssl=strict, server_hostname=server_hostname)
    assert writer.get_extra_info("peercert")["subjectAltName"] == (("IP Address", "127.0.0.1"), ("DNS", "localhost"))
    writer.close()
    await writer.wait_closed()
