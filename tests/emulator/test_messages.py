"""Every server message the emulator can send parses into types.LiveServerMessage with no field lost.

The comparison: parse the wire JSON the way the SDK's _receive() does, dump the result back to camelCase JSON,
and compare after normalising what the SDK legitimately changes (base64 becomes bytes; proto3-JSON strings
such as "true" and "123" become typed values). The SDK's own fixtures go through the same check, and one of
them (with Vertex-only fields) shows that the comparison does catch a lost field.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.genai import _live_converters, types

from gateway.emulator import Emulator, ServerKind, wire

from .conftest import MODEL, Recorder, client_for, live_config, send_audio
from .signals import utterance

BUILT = [
    wire.setup_complete(),
    wire.audio_chunk(bytes(range(256)) * 3),
    wire.input_transcription("[speech 1.42 s]"),
    wire.output_transcription('reply 3: "hello"'),
    wire.generation_complete(),
    wire.interrupted(),
    wire.turn_complete(),
    wire.turn_complete(prompt_audio_s=1.42, response_audio_s=1.42),
    wire.tool_call("fc-1", "get_weather", {"city_name": "test", "days": 1, "metric": True}),
    wire.tool_call_cancellation(["fc-1", "fc-2"]),
    wire.go_away(1.5),
    wire.resumption_update("aGFuZGxl"),
    wire.resumption_update(None),
]

# google/genai/tests/live/test_live.py and test_live_response.py (SDK 3.4.0), verbatim.
SDK_FIXTURES = [
    b'{\n  "setupComplete": {"sessionId": "test_session_id"}\n}\n',
    b'{"setupComplete": {"sessionId": "test_session_id", "voiceConsentSignature": {"signature": "test_sig_abc123"}}}',
    '{"serverContent": {"modelTurn": {"parts":[{"text": "test"}]}}}',
    '{"serverContent": {"turnComplete": true}}',
    '{"serverContent": {"modelTurn": {"parts":[{"inlineData": {"data": "MDAwMDAw", "mimeType": "audio/pcm" }}]}}}',
    (
        '{"toolCall": {"functionCalls": [{"name":'
        ' "get_current_weather", "args": {"location": "San Francisco",'
        ' "unit": "C"}}]}}'
    ),
    '{"serverContent": {"inputTranscription": {"text": "test_input", "finished": true}}}',
    '{"serverContent": {"outputTranscription": {"text": "test_output", "finished": false}}}',
    '{"goAway": {"timeLeft": "10s"}}',
    """{
                "sessionResumptionUpdate": {
                    "newHandle": "test_handle",
                    "resumable": "true",
                    "lastConsumedClientMessageIndex": "123456789"
                }
          }""",
    '{"serverContent": {"turnComplete": true, "interactionStatus": "IDLE"}}',
    '{"serverContent": {"turnComplete": true, "interactionStatus": "IN_PROGRESS"}}',
    '{"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_SOS"}}',
    json.dumps(
        {
            "serverContent": {
                "modelTurn": {"parts": [{"text": "Please provide more details."}]},
                "turnComplete": True,
                "turnCompleteReason": "NEED_MORE_INPUT",
                "waitingForInput": True,
            }
        }
    ),
]
# test_live_response.py:test_receive_server_content: candidates* are Vertex's names, which the Developer API
# converter does not map, so exactly those are lost; the check must say so.
VERTEX_USAGE = json.dumps(
    {
        "usageMetadata": {
            "promptTokenCount": 15, "responseTokenCount": 25, "candidatesTokenCount": 50, "totalTokenCount": 200,
            "responseTokensDetails": [{"tokenCount": 20, "modality": "TEXT"}],
            "candidatesTokensDetails": [{"tokenCount": 10, "modality": "TEXT"}],
        },
        "serverContent": {
            "modelTurn": {"parts": [{"text": "This is a simple response."}]},
            "turnComplete": True,
            "groundingMetadata": {
                "web_search_queries": ["test query"],
                "groundingChunks": [{"web": {"domain": "google.com", "title": "Search results"}}],
            },
        },
    }
)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def normalise(value: Any, key: str = "") -> Any:
    """Keys in camelCase, base64 `data` as bytes, proto3-JSON strings for bools and integers typed."""
    if isinstance(value, dict):
        return {_camel(k): normalise(v, _camel(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, key) for v in value]
    if isinstance(value, str):
        if key == "data":
            padded = value.replace("-", "+").replace("_", "/")
            return base64.b64decode(padded + "=" * (-len(padded) % 4))
        if value in ("true", "false"):
            return value == "true"
        if value.isdigit() and key.endswith(("Index", "Count")):
            return int(value)
    return value


def differences(wire_json: Any, parsed: Any, path: str = "") -> set[str]:
    """Paths where the parsed message differs from the wire (a lost field shows up here)."""
    if isinstance(wire_json, dict) and isinstance(parsed, dict):
        out: set[str] = set()
        for key in wire_json.keys() | parsed.keys():
            out |= differences(wire_json.get(key), parsed.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(wire_json, list) and isinstance(parsed, list) and len(wire_json) == len(parsed):
        return set().union(*(differences(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(wire_json, parsed))))
    return set() if wire_json == parsed else {path}


def lost_fields(raw: str | bytes) -> set[str]:
    """Parse like AsyncSession._receive() (Developer API) and report what did not survive."""
    message = json.loads(raw)
    parsed = types.LiveServerMessage._from_response(  # it prunes unknown fields in place: give it its own copy
        response=_live_converters._LiveServerMessage_from_mldev(json.loads(raw)), kwargs={}
    )
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    return differences(normalise(message), normalise(dumped))


def test_the_builders_cover_every_kind_of_server_message() -> None:
    assert {message.kind for message in BUILT} == set(ServerKind)


@pytest.mark.parametrize("message", BUILT, ids=lambda m: f"{m.kind}-{len(m.encode())}")
def test_every_emulator_message_parses_with_no_field_lost(message: wire.ServerMessage) -> None:
    assert lost_fields(message.encode()) == set()


@pytest.mark.parametrize("raw", SDK_FIXTURES, ids=range(len(SDK_FIXTURES)))
def test_the_sdk_fixtures_parse_with_no_field_lost(raw: str | bytes) -> None:
    assert lost_fields(raw) == set()


def test_the_comparison_catches_fields_the_sdk_drops() -> None:
    assert lost_fields(VERTEX_USAGE) == {"usageMetadata.candidatesTokenCount", "usageMetadata.candidatesTokensDetails"}


async def test_the_messages_of_a_real_session_parse_with_no_field_lost(make_emulator) -> None:
    """What the SDK yields equals what went on the wire: checked on the session's own messages."""
    emu: Emulator = await make_emulator(lifetime_s=1.5, goaway_notice_s=0.5)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(resume=None)) as session:
        async with Recorder(session) as rec:
            await send_audio(session, utterance(0.3)[0])
            await rec.next("turn_complete")
            await rec.next("goAway")
            await rec.closed()
    dumped = [m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in rec.messages]
    kinds = {next(iter(d)) if "serverContent" not in d else next(iter(d["serverContent"])) for d in dumped}
    assert kinds >= {
        "sessionResumptionUpdate", "inputTranscription", "modelTurn", "outputTranscription", "generationComplete",
        "turnComplete", "goAway",
    }
    for message in dumped:
        assert lost_fields(json.dumps(message)) == set()
