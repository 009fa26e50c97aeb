"""The Live API wire format: client key spellings, base64, server messages and close reasons.

Clients send a mix of snake_case and lowerCamelCase keys (the SDK itself does, see the protocol reference 2.1)
and URL-safe base64; the real server is a proto3-JSON parser that accepts every spelling. Server messages go out
in lowerCamelCase with standard base64, as JSON in binary frames, like the real service.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_CLOSE_REASON_BYTES = 123  # the WebSocket limit for a close frame's reason
TOKENS_PER_AUDIO_S = 32  # Gemini counts 32 tokens per second of audio

# Keys whose values are user data (argument names, schema properties, labels): their own keys stay verbatim.
DATA_KEYS = frozenset(
    {"args", "labels", "parameters", "parametersJsonSchema", "properties", "response", "responseJsonSchema"}
)


class ProtocolError(Exception):
    """The client broke the protocol; the connection closes with `close`."""

    def __init__(self, close: Close, detail: str) -> None:
        super().__init__(detail)
        self.close = close


@dataclass(frozen=True)
class Close:
    code: int
    reason: str

    def reason_bytes(self) -> bytes:
        """The reason as the close frame carries it: UTF-8, cut to 123 bytes on a character boundary."""
        return self.reason.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore").encode()


INVALID_ARGUMENT = Close(1007, "Request contains an invalid argument.")
API_KEY_INVALID = Close(1007, "API key not valid. Please pass a valid API key.")
UNAVAILABLE = Close(1011, "The service is currently unavailable.")
DEADLINE_EXPIRED = Close(1011, "Deadline expired before operation could complete.")
INTERNAL = Close(1011, "Internal error occurred.")


def model_not_found(model: str, api_version: str) -> Close:
    return Close(
        1008,
        f"models/{model} is not found for API version {api_version}, or is not supported for "
        "bidiGenerateContent. Call ListModels to see the list of available models and their supported methods.",
    )


# --- client side --------------------------------------------------------------------------------------------

_SNAKE = re.compile(r"_([a-z0-9])")


def camel(key: str) -> str:
    """`realtime_input` -> `realtimeInput`; camelCase keys are returned unchanged."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), key)


def normalise_keys(value: Any) -> Any:
    """Every key in lowerCamelCase, except inside user-data maps (see DATA_KEYS)."""
    if isinstance(value, list):
        return [normalise_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        name = camel(key) if isinstance(key, str) else key
        out[name] = item if name in DATA_KEYS else normalise_keys(item)
    return out


def decode_base64(text: Any) -> bytes:
    """Standard or URL-safe base64, padded or not (what a proto3-JSON parser accepts)."""
    if not isinstance(text, str):
        raise ProtocolError(INVALID_ARGUMENT, "base64 data must be a string")
    data = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except binascii.Error as exc:
        raise ProtocolError(INVALID_ARGUMENT, f"invalid base64: {exc}") from None


def parse_client_message(raw: str | bytes) -> tuple[str, Any]:
    """One client frame -> (top-level key in camelCase, normalised body); anything else is a ProtocolError."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(INVALID_ARGUMENT, f"malformed JSON: {exc}") from None
    if not isinstance(message, dict) or len(message) != 1:
        raise ProtocolError(INVALID_ARGUMENT, "a client message has exactly one top-level key")
    ((key, body),) = normalise_keys(message).items()
    return key, body


# --- server side --------------------------------------------------------------------------------------------


class ServerKind(StrEnum):
    """What a server message is, as recorded in `EmulatedConnection.sent_kinds`."""

    SETUP_COMPLETE = "setupComplete"
    AUDIO = "modelTurn"
    INPUT_TRANSCRIPTION = "inputTranscription"
    OUTPUT_TRANSCRIPTION = "outputTranscription"
    GENERATION_COMPLETE = "generationComplete"
    INTERRUPTED = "interrupted"
    TURN_COMPLETE = "turnComplete"
    TOOL_CALL = "toolCall"
    TOOL_CALL_CANCELLATION = "toolCallCancellation"
    GO_AWAY = "goAway"
    RESUMPTION_UPDATE = "sessionResumptionUpdate"


@dataclass(frozen=True)
class ServerMessage:
    kind: ServerKind
    payload: dict[str, Any] = field(hash=False)

    def encode(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":")).encode()


def _content(kind: ServerKind, content: dict[str, Any]) -> ServerMessage:
    return ServerMessage(kind, {"serverContent": content})


def setup_complete() -> ServerMessage:
    return ServerMessage(ServerKind.SETUP_COMPLETE, {"setupComplete": {}})


def audio_chunk(pcm24k: bytes) -> ServerMessage:
    blob = {"mimeType": "audio/pcm;rate=24000", "data": base64.b64encode(pcm24k).decode()}
    return _content(ServerKind.AUDIO, {"modelTurn": {"parts": [{"inlineData": blob}]}})


def input_transcription(text: str) -> ServerMessage:
    return _content(ServerKind.INPUT_TRANSCRIPTION, {"inputTranscription": {"text": text, "finished": True}})


def output_transcription(text: str) -> ServerMessage:
    return _content(ServerKind.OUTPUT_TRANSCRIPTION, {"outputTranscription": {"text": text}})


def generation_complete() -> ServerMessage:
    return _content(ServerKind.GENERATION_COMPLETE, {"generationComplete": True})


def interrupted() -> ServerMessage:
    return _content(ServerKind.INTERRUPTED, {"interrupted": True})


def turn_complete(prompt_audio_s: float | None = None, response_audio_s: float | None = None) -> ServerMessage:
    """`turnComplete`; with audio durations it carries plausible `usageMetadata` (a finished reply)."""
    payload: dict[str, Any] = {"serverContent": {"turnComplete": True}}
    if prompt_audio_s is not None and response_audio_s is not None:
        prompt = max(1, round(prompt_audio_s * TOKENS_PER_AUDIO_S))
        response = max(1, round(response_audio_s * TOKENS_PER_AUDIO_S))
        payload["usageMetadata"] = {
            "promptTokenCount": prompt,
            "responseTokenCount": response,
            "totalTokenCount": prompt + response,
            "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": prompt}],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response}],
        }
    return ServerMessage(ServerKind.TURN_COMPLETE, payload)


def tool_call(call_id: str, name: str, args: dict[str, Any]) -> ServerMessage:
    call = {"id": call_id, "name": name, "args": args}
    return ServerMessage(ServerKind.TOOL_CALL, {"toolCall": {"functionCalls": [call]}})


def tool_call_cancellation(call_ids: list[str]) -> ServerMessage:
    return ServerMessage(ServerKind.TOOL_CALL_CANCELLATION, {"toolCallCancellation": {"ids": list(call_ids)}})


def duration(seconds: float) -> str:
    """A google.protobuf.Duration in its JSON form, e.g. `1.500s`."""
    return f"{max(seconds, 0.0):.3f}s"


def go_away(time_left_s: float) -> ServerMessage:
    return ServerMessage(ServerKind.GO_AWAY, {"goAway": {"timeLeft": duration(time_left_s)}})


def resumption_update(new_handle: str | None) -> ServerMessage:
    """A resumable update carrying `new_handle`, or (None) the not-resumable update without a handle."""
    update: dict[str, Any] = {"newHandle": new_handle, "resumable": True} if new_handle else {"resumable": False}
    return ServerMessage(ServerKind.RESUMPTION_UPDATE, {"sessionResumptionUpdate": update})
