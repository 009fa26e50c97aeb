"""Fixtures for the emulator conformance tests: a running emulator, an SDK client for it, a message recorder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from google import genai
from google.genai import types

from gateway.emulator import Emulator, EmulatorConfig

from .signals import pcm

MODEL = "gemini-3.8-live"
CHUNK_SAMPLES = 320  # 20 ms at 16 kHz, what the gateway sends


@pytest.fixture
async def make_emulator() -> AsyncIterator[Callable[..., Awaitable[Emulator]]]:
    """`await make_emulator(mode=..., seed=...)` -> a started emulator, stopped after the test."""
    started: list[Emulator] = []

    async def make(**settings: Any) -> Emulator:
        emu = Emulator(EmulatorConfig(**settings))
        await emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        await emu.stop()


@pytest.fixture
async def emu(make_emulator: Callable[..., Awaitable[Emulator]]) -> Emulator:
    return await make_emulator(seed=1)


def client_for(
    emu: Emulator, api_version: str | None = "v1beta", trailing_slash: bool = False, api_key: str = "test-key",
    headers: dict[str, str] | None = None, path: str = "",
) -> genai.Client:
    """A google-genai client pointed at the emulator, trusting its certificate: the gateway's code path."""
    options: dict[str, Any] = {
        "base_url": emu.url + path + ("/" if trailing_slash else ""),
        "async_client_args": {"ssl": emu.client_ssl_context()},
    }
    if api_version is not None:
        options["api_version"] = api_version
    if headers:
        options["headers"] = headers
    return genai.Client(api_key=api_key, http_options=types.HttpOptions(**options))


def live_config(
    silence_ms: int = 200, transcribe: bool = True, resume: str | None | bool = False, **extra: Any
) -> types.LiveConnectConfig:
    """A typical gateway setup: audio out, transcriptions, short end-of-speech silence for quick tests."""
    config: dict[str, Any] = {
        "response_modalities": ["AUDIO"],
        "realtime_input_config": extra.pop(
            "realtime_input_config",
            types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=silence_ms)
            ),
        ),
    }
    if transcribe:
        config["input_audio_transcription"] = types.AudioTranscriptionConfig()
        config["output_audio_transcription"] = types.AudioTranscriptionConfig()
    if resume is not False:
        config["session_resumption"] = types.SessionResumptionConfig(handle=resume or None)
    config.update(extra)
    return types.LiveConnectConfig(**config)


async def send_audio(session: Any, samples: np.ndarray, chunk: int = CHUNK_SAMPLES) -> None:
    """Send 16 kHz audio as fast as the socket takes it (the emulator counts samples, not seconds)."""
    for start in range(0, samples.size, chunk):
        blob = types.Blob(data=pcm(samples[start : start + chunk]), mime_type="audio/pcm;rate=16000")
        await session.send_realtime_input(audio=blob)


def kind(message: types.LiveServerMessage) -> str:
    """A short name for what a server message is, for sequence assertions."""
    if message.setup_complete is not None:
        return "setupComplete"
    if message.session_resumption_update is not None:
        return "resumable" if message.session_resumption_update.resumable else "notResumable"
    if message.go_away is not None:
        return "goAway"
    if message.tool_call is not None:
        return "toolCall"
    if message.tool_call_cancellation is not None:
        return "toolCallCancellation"
    content = message.server_content
    if content is not None:
        for name in ("model_turn", "input_transcription", "output_transcription"):
            if getattr(content, name) is not None:
                return {"model_turn": "audio"}.get(name, name)
        for name in ("generation_complete", "interrupted", "turn_complete"):
            if getattr(content, name):
                return name
    return "other"


class Recorder:
    """Reads a session's messages in the background (as the gateway does: receive() turn after turn).

    `await rec.next("audio")` returns the next message of that kind after the cursor; a close ends the reading
    and is kept in `rec.error` (the SDK raises APIError with the close code).
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self.messages: list[types.LiveServerMessage] = []
        self.times: list[float] = []
        self.error: BaseException | None = None
        self.cursor = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Recorder:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                async for message in self.session.receive():
                    self.messages.append(message)
                    self.times.append(loop.time())
                    self._changed.set()
        except Exception as exc:  # the end of the connection: kept for the test to inspect
            self.error = exc
            self._changed.set()

    @property
    def kinds(self) -> list[str]:
        return [kind(m) for m in self.messages]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def next(
        self, wanted: str | Callable[[types.LiveServerMessage], bool], timeout: float = 10.0
    ) -> types.LiveServerMessage:
        """The next message (after the cursor) of kind `wanted`; the cursor moves past it."""
        match = (lambda m: kind(m) == wanted) if isinstance(wanted, str) else wanted
        found: list[int] = []

        def seen() -> bool:
            found[:] = [i for i in range(self.cursor, len(self.messages)) if match(self.messages[i])][:1]
            if not found and self.error is not None:
                raise AssertionError(f"connection ended before {wanted!r}: {self.error!r}; got {self.kinds}")
            return bool(found)

        await self.wait(seen, timeout)
        self.cursor = found[0] + 1
        return self.messages[found[0]]

    async def closed(self, timeout: float = 10.0) -> BaseException:
        await self.wait(lambda: self.error is not None, timeout)
        assert self.error is not None
        return self.error

    def audio(self, start: int = 0, stop: int | None = None) -> bytes:
        return b"".join(m.data or b"" for m in self.messages[start:stop] if kind(m) == "audio")

    def texts(self, name: str) -> list[str]:
        return [getattr(m.server_content, name).text for m in self.messages if kind(m) == name]

    def updates(self) -> list[types.LiveServerSessionResumptionUpdate]:
        return [m.session_resumption_update for m in self.messages if m.session_resumption_update is not None]
