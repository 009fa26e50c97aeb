"""One Live API connection (one `client.aio.live.connect()`), and what is known about where it stands."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from google import genai
from google.genai import types

log = logging.getLogger(__name__)

AUDIO_MIME = "audio/pcm;rate=16000"


class LiveConnection:
    """A connected SDK session. Open with `LiveConnection.open`, read with `messages()`, end with `close()`."""

    def __init__(self, session: Any, stack: contextlib.AsyncExitStack, number: int, resumed_from: str | None) -> None:
        self._session = session
        self._stack = stack
        self.number = number  # 1, 2, 3... within the call, for logs
        self.resumed_from = resumed_from
        self.turn_in_flight = False  # model output seen since the last turnComplete, or a tool call pending
        self.pending_tool_calls: set[str] = set()
        self.resumable = False  # the newest sessionResumptionUpdate from this connection was resumable
        self.retiring = False  # closed on purpose for a handover: its loss is not an error
        self.closed = False

    @classmethod
    async def open(
        cls, client: genai.Client, model: str, config: types.LiveConnectConfig, number: int
    ) -> LiveConnection:
        """Connect and wait for setupComplete; raises whatever the SDK raises (see live.errors.classify)."""
        stack = contextlib.AsyncExitStack()
        try:
            session = await stack.enter_async_context(client.aio.live.connect(model=model, config=config))
        except BaseException:
            await stack.aclose()
            raise
        handle = config.session_resumption.handle if config.session_resumption else None
        return cls(session, stack, number, handle)

    async def messages(self) -> AsyncIterator[types.LiveServerMessage]:
        """Every server message until the connection ends (the SDK's receive() stops at each turnComplete)."""
        while True:
            async for message in self._session.receive():
                yield message

    def note(self, message: types.LiveServerMessage) -> None:
        """Update where the connection stands from one of its messages."""
        content = message.server_content
        if content is not None:
            if content.model_turn is not None or content.output_transcription is not None:
                self.turn_in_flight = True
            if content.turn_complete or content.interrupted:
                self.turn_in_flight = bool(self.pending_tool_calls)
        if message.tool_call is not None:
            self.pending_tool_calls.update(c.id for c in message.tool_call.function_calls or () if c.id)
            self.turn_in_flight = True
        if message.tool_call_cancellation is not None:
            self.pending_tool_calls.difference_update(message.tool_call_cancellation.ids or ())
        update = message.session_resumption_update
        if update is not None:
            self.resumable = bool(update.resumable and update.new_handle)

    @property
    def at_turn_boundary(self) -> bool:
        """Nothing in flight and the server's newest word is that the session can be resumed here."""
        return self.resumable and not self.turn_in_flight and not self.pending_tool_calls

    async def send_audio(self, pcm: bytes) -> None:
        await self._session.send_realtime_input(audio=types.Blob(data=pcm, mime_type=AUDIO_MIME))

    async def send_text(self, text: str) -> None:
        await self._session.send_realtime_input(text=text)

    async def send_history(self, turns: list[types.Content]) -> None:
        """Re-seed a fresh session with the conversation so far (no reply is asked for)."""
        await self._session.send_client_content(turns=turns, turn_complete=False)

    async def send_tool_response(self, responses: list[types.FunctionResponse]) -> None:
        for response in responses:
            self.pending_tool_calls.discard(response.id or "")
        await self._session.send_tool_response(function_responses=responses)

    async def close(self) -> None:
        """Close the WebSocket (code 1000). Idempotent; never raises."""
        if self.closed:
            return
        self.closed = True
        try:
            await self._stack.aclose()
        except Exception as exc:  # the socket may already be gone; closing must not fail the call
            log.debug("closing Live connection %d: %s", self.number, exc)
