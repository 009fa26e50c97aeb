"""The `setup` message: which model, and what the session asks for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .tools import FunctionSpec, declared_functions
from .turns import ActivitySettings
from .wire import INVALID_ARGUMENT, ProtocolError, model_not_found

# Live models the real service serves today (protocol reference 4). The half-cascade models
# gemini-2.0-flash-live-001 and gemini-live-2.5-flash-preview were shut down on 2025-12-09 and are refused.
SUPPORTED_MODELS = frozenset(
    {
        "gemini-3.8-live",
        "gemini-3.8-live-extended-thinking",
        "gemini-3.1-flash-live-preview",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-preview-09-2025",
        "gemini-live-2.5-flash-native-audio",
        "gemini-live-2.5-flash-preview-native-audio-09-2025",
    }
)


def model_name(value: str) -> str:
    """`models/X`, `publishers/google/models/X` or `projects/P/locations/L/publishers/google/models/X` -> X."""
    if "/models/" in value:
        return value.rsplit("/models/", 1)[1]
    return value.removeprefix("models/")


@dataclass(frozen=True)
class SessionSetup:
    raw: dict[str, Any] = field(hash=False)  # the setup with keys normalised to camelCase
    model: str  # the bare model name
    activity: ActivitySettings
    resumption: bool  # the client asked for sessionResumptionUpdate messages
    handle: str | None  # resume this conversation
    functions: tuple[FunctionSpec, ...]


def parse_setup(body: Any, api_version: str) -> SessionSetup:
    """Validate a normalised `setup` body; a ProtocolError says how the connection must close."""
    if not isinstance(body, dict):
        raise ProtocolError(INVALID_ARGUMENT, "setup must be an object")
    model = body.get("model")
    if not isinstance(model, str) or not model_name(model):
        raise ProtocolError(INVALID_ARGUMENT, "setup.model is missing")
    name = model_name(model)
    if name not in SUPPORTED_MODELS:
        raise ProtocolError(model_not_found(name, api_version), f"unknown model {model!r}")
    resumption = body.get("sessionResumption")
    if resumption is not None and not isinstance(resumption, dict):
        raise ProtocolError(INVALID_ARGUMENT, "sessionResumption must be an object")
    handle = (resumption or {}).get("handle")
    if handle is not None and not isinstance(handle, str):
        raise ProtocolError(INVALID_ARGUMENT, "sessionResumption.handle must be a string")
    return SessionSetup(
        raw=body,
        model=name,
        activity=ActivitySettings.from_config(body.get("realtimeInputConfig")),
        resumption=resumption is not None,
        handle=handle or None,
        functions=declared_functions(body.get("tools")),
    )
