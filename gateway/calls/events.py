"""The `events` data channel: JSON objects with a `type`, both ways (design.md section 5).

The channel object changes when a caller resumes with a new peer connection; events sent while no channel
is open wait in a bounded backlog and are delivered on the next one. Malformed input gets an `error` event
back and never disturbs the call. Every event sent also goes into the call's history, which the server-side
stream reads; caller messages may also come from the control API (`handle`), for calls without a channel.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Any

from aiortc import RTCDataChannel

from gateway.calls.history import EventHistory

log = logging.getLogger(__name__)

LABEL = "events"
MAX_MESSAGE_BYTES = 16 * 1024
MAX_TEXT_CHARS = 4000
BACKLOG_EVENTS = 200
HISTORY_EVENTS = 500

Handler = Callable[[dict[str, Any]], None]


class BadMessage(Exception):
    """A caller message that cannot be used: its error `code` and a message a person can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EventChannel:
    def __init__(self, call_id: str, handlers: dict[str, Handler], clock: Callable[[], float] = time.monotonic,
                 history_size: int = HISTORY_EVENTS):
        self.call_id = call_id
        self._handlers = handlers
        self._clock = clock
        self._channel: RTCDataChannel | None = None
        self._backlog: deque[str] = deque(maxlen=BACKLOG_EVENTS)
        self.history = EventHistory(history_size)
        self.last_activity = clock()
        self.received = 0
        self.rejected = 0

    def attach(self, channel: RTCDataChannel) -> None:
        """Use `channel` from now on (a caller's new peer connection brings a new one)."""
        if channel.label != LABEL:
            log.info("call %s: ignoring data channel %r", self.call_id, channel.label)
            return
        self._channel = channel
        channel.on("message", self._on_message)
        if channel.readyState == "open":
            self._flush()
        else:
            channel.on("open", self._flush)

    @property
    def channel(self) -> RTCDataChannel | None:
        return self._channel

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def detach(self) -> None:
        self._channel = None

    def send(self, event: dict[str, Any]) -> None:
        """Into the history (and to its readers); over the channel now if it is open, else kept (bounded) for
        the next channel."""
        message = json.dumps(event, separators=(",", ":"))
        self.history.add(event, message)
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            try:
                channel.send(message)
                return
            except Exception as exc:  # closing underneath us: keep the event for a resumed caller
                log.debug("call %s: data channel send failed: %s", self.call_id, exc)
        self._backlog.append(message)

    def error(self, code: str, message: str) -> None:
        self.send({"type": "error", "code": code, "message": message})

    def _flush(self) -> None:
        channel = self._channel
        while self._backlog and channel is not None and channel.readyState == "open":
            channel.send(self._backlog.popleft())

    def receive(self, raw: str | bytes, allowed: Collection[str] | None = None) -> None:
        """Act on one caller message, from the data channel or the control API (which `allowed` some types).
        Raises BadMessage for one that cannot be acted on."""
        self.received += 1
        try:
            message = _parse(raw)
            kind = message["type"]
            handler = self._handlers.get(kind) if allowed is None or kind in allowed else None
            if handler is None:
                raise BadMessage("unknown_type", f"unknown event type {kind!r}")
            try:
                handler(message)
            except ValueError as exc:
                raise BadMessage("bad_event", str(exc)) from None
        except BadMessage:
            self.rejected += 1
            raise

    def _on_message(self, raw: str | bytes) -> None:
        self.last_activity = self._clock()
        try:
            self.receive(raw)
        except BadMessage as exc:
            self.error(exc.code, exc.message)


def _parse(raw: str | bytes) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raise BadMessage("bad_message", "binary messages are not accepted; send JSON text")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise BadMessage("too_large", f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
    try:
        message = json.loads(raw)
    except ValueError:
        raise BadMessage("bad_json", "the message is not valid JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BadMessage("bad_message", 'a message must be a JSON object with a string "type"')
    return message


def text_of(event: dict[str, Any]) -> str:
    """The `text` of a caller `text` event, checked."""
    text = event.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('a "text" event needs a non-empty string "text"')
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text is limited to {MAX_TEXT_CHARS} characters")
    return text.strip()
