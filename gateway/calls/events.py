"""The `events` data channel: JSON objects with a `type`, both ways (design.md section 5).

The channel object changes when a caller resumes with a new peer connection; events sent while no channel
is open wait in a bounded backlog and are delivered on the next one. Malformed input gets an `error` event
back and never disturbs the call.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc import RTCDataChannel

log = logging.getLogger(__name__)

LABEL = "events"
MAX_MESSAGE_BYTES = 16 * 1024
MAX_TEXT_CHARS = 4000
BACKLOG_EVENTS = 200

Handler = Callable[[dict[str, Any]], None]


class EventChannel:
    def __init__(self, call_id: str, handlers: dict[str, Handler], clock: Callable[[], float] = time.monotonic):
        self.call_id = call_id
        self._handlers = handlers
        self._clock = clock
        self._channel: RTCDataChannel | None = None
        self._backlog: deque[str] = deque(maxlen=BACKLOG_EVENTS)
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
        """Send now if the channel is open, else keep it (bounded) for the next channel."""
        message = json.dumps(event, separators=(",", ":"))
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

    def _on_message(self, raw: str | bytes) -> None:
        self.last_activity = self._clock()
        self.received += 1
        event = self._parse(raw)
        if event is None:
            self.rejected += 1
            return
        handler = self._handlers.get(event["type"])
        if handler is None:
            self.rejected += 1
            self.error("unknown_type", f"unknown event type {event['type']!r}")
            return
        try:
            handler(event)
        except ValueError as exc:
            self.rejected += 1
            self.error("bad_event", str(exc))

    def _parse(self, raw: str | bytes) -> dict[str, Any] | None:
        if isinstance(raw, bytes):
            self.error("bad_message", "binary messages are not accepted; send JSON text")
            return None
        if len(raw) > MAX_MESSAGE_BYTES:
            self.error("too_large", f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
            return None
        try:
            event = json.loads(raw)
        except ValueError:
            self.error("bad_json", "the message is not valid JSON")
            return None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self.error("bad_message", 'a message must be a JSON object with a string "type"')
            return None
        return event


def text_of(event: dict[str, Any]) -> str:
    """The `text` of a caller `text` event, checked."""
    text = event.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('a "text" event needs a non-empty string "text"')
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text is limited to {MAX_TEXT_CHARS} characters")
    return text.strip()
