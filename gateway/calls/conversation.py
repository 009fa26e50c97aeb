"""The conversation as the caller experiences it, and the Live session's listener.

Reply audio goes into the downlink; an interruption (Gemini's `interrupted`, or the caller's own speech when
local barge-in is on) silences it at once; the caller is told `listening`, `speaking` or `reconnecting`,
transcripts and turn ends over the events channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from google.genai import types

from gateway.calls.events import EventChannel
from gateway.calls.tools import ToolRelay
from gateway.live.session import LinkState
from gateway.live.transcripts import Role
from gateway.media.downlink import Downlink


class ConversationState(StrEnum):
    LISTENING = "listening"
    SPEAKING = "speaking"
    RECONNECTING = "reconnecting"


class Conversation:
    def __init__(
        self,
        events: EventChannel,
        tools: ToolRelay,
        *,
        local_barge_in: bool,
        ready_event: Callable[[], dict[str, Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._events = events
        self._tools = tools
        self._local_barge_in = local_barge_in
        self._ready_event = ready_event
        self._clock = clock
        self.downlink: Downlink | None = None  # replaced when a resumed caller negotiates another codec
        self.muted = False  # the caller is away: replies are not played (they would be stale on resume)
        self.state: ConversationState | None = None
        self.last_model_audio_at = clock()
        self._ready = False
        self._live_lost = False
        self._turn_open = False
        self._discarding = False  # a local barge-in cut this turn: drop the rest of it until Live ends it

    def caller_started_speaking(self) -> None:
        """The caller's own voice, seen by the gateway's VAD: cut the reply if the profile says so."""
        if self._local_barge_in and self.downlink is not None and self.downlink.speaking:
            self._discarding = True
            self._turn_open = False
            self._barge_in("local")

    def refresh(self) -> None:
        """Tell the caller when the state changed (also when playout simply ran out)."""
        if self._live_lost:
            state = ConversationState.RECONNECTING
        elif self._turn_open or (self.downlink is not None and self.downlink.speaking):
            state = ConversationState.SPEAKING
        else:
            state = ConversationState.LISTENING
        if state is not self.state and self._ready:
            self.state = state
            self._events.send({"type": "state", "state": state.value})

    def _barge_in(self, source: str) -> None:
        if self.downlink is not None:
            self.downlink.interrupt()
        self._events.send({"type": "interrupted", "source": source})
        self.refresh()

    # ----- LiveListener -----

    def on_live_audio(self, pcm24: bytes) -> None:
        if self._discarding or self.muted or self.downlink is None:
            return
        self._turn_open = True
        self.last_model_audio_at = self._clock()
        self.downlink.play(pcm24)
        self.refresh()

    def on_transcript(self, role: Role, text: str, final: bool) -> None:
        self._events.send({"type": "transcript", "role": role.value, "text": text, "final": final})

    def on_interrupted(self) -> None:
        if not self._discarding:  # a local barge-in already cut it and told the caller
            self._barge_in("live")
        self._discarding = False
        self._turn_open = False

    def on_generation_complete(self) -> None:
        if self.downlink is not None:
            self.downlink.end_reply()

    def on_turn_complete(self) -> None:
        self.on_turn_abandoned()
        self._events.send({"type": "turn_complete"})
        self.refresh()

    def on_turn_abandoned(self) -> None:
        if self.downlink is not None:
            self.downlink.end_reply()  # nothing more is coming for this reply: play what arrived, then stop
        self._turn_open = False
        self._discarding = False

    def on_tool_call(self, calls: list[types.FunctionCall]) -> None:
        self._tools.on_tool_call(calls)

    def on_tool_call_cancellation(self, ids: list[str]) -> None:
        self._tools.on_cancellation(ids)

    def on_link_state(self, state: LinkState, detail: str) -> None:
        self._live_lost = state is LinkState.RECONNECTING
        if state is LinkState.CONNECTED and not self._ready:
            self._ready = True
            self._events.send(self._ready_event())
        self.refresh()
