"""A local emulator of the Gemini Live API, reached through the real google-genai SDK. See README.md here."""

from .config import EmulatorConfig, TimingMode
from .connection import EmulatedConnection
from .control import FaultKind
from .conversation import Conversation
from .server import Emulator
from .wire import Close, ServerKind

__all__ = [
    "Close",
    "Conversation",
    "EmulatedConnection",
    "Emulator",
    "EmulatorConfig",
    "FaultKind",
    "ServerKind",
    "TimingMode",
]
