"""Transcripts from Live's fragments: running text for each turn, when it is final, and the history so far.

Gemini sends input and output transcriptions in pieces, in no guaranteed order relative to the audio
(protocol reference 5). A user turn is final when the server says `finished`, or when the model starts
answering; a model turn is final at `turnComplete` or `interrupted`. Final turns are kept (bounded) so a
fresh session can be re-seeded with the conversation when no resumption handle exists.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import StrEnum

from google.genai import types


class Role(StrEnum):
    USER = "user"
    MODEL = "model"


TranscriptSink = Callable[[Role, str, bool], None]  # (role, text so far, final)


class TranscriptAssembler:
    def __init__(self, emit: TranscriptSink, max_turns: int = 100) -> None:
        self._emit = emit
        self._open: dict[Role, str] = {Role.USER: "", Role.MODEL: ""}
        self.history: deque[tuple[Role, str]] = deque(maxlen=max_turns)

    def fragment(self, role: Role, text: str | None, finished: bool = False) -> None:
        if text:
            if role is Role.MODEL:
                self.finish(Role.USER)
            self._open[role] += text
            if not finished:
                self._emit(role, self._open[role], False)
        if finished:
            self.finish(role)

    def typed(self, text: str) -> None:
        """Text the caller typed: a final user turn of its own."""
        self.finish(Role.USER)
        self._open[Role.USER] = text
        self.finish(Role.USER)

    def model_output_started(self) -> None:
        self.finish(Role.USER)

    def discard_open(self) -> None:
        """The connection was lost mid-turn: the resumed session redoes that turn, so forget its fragments."""
        self._open = {Role.USER: "", Role.MODEL: ""}

    def finish(self, role: Role) -> None:
        """Close the open turn of `role`, if any, and emit it as final."""
        text = self._open[role].strip()
        self._open[role] = ""
        if text:
            self.history.append((role, text))
            self._emit(role, text, True)

    def history_contents(self) -> list[types.Content]:
        """The final turns as Live `Content`, for `send_client_content`."""
        return [types.Content(role=role.value, parts=[types.Part(text=text)]) for role, text in self.history]
