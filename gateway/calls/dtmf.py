"""DTMF keys: decoded from RFC 4733 telephone-event payloads, or given by a bridge through the control API.

Both become the same `dtmf` event. Pure logic (no sockets, no clock), so it is tested with plain bytes.

RFC 4733 in brief: one event is a run of packets sharing the RTP timestamp of its start, each carrying the
event code, an end bit, a volume and the duration so far (in RTP clock units); the packet with the end bit is
sent three times. A key is reported once, when its first end packet arrives; one whose end packets were all
lost is reported when the next event begins.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

DIGITS = "0123456789*#ABCD"  # RFC 4733 events 0-15, in code order
DEFAULT_DURATION_MS = 100  # a control message that gives no duration
MAX_DURATION_MS = 10_000
PAYLOAD_BYTES = 4
REMEMBERED_ENDS = 8  # timestamps of finished events kept to drop their repeated end packets

Source = Literal["rfc4733", "control"]


@dataclass(frozen=True)
class Key:
    digit: str
    duration_ms: int

    def event(self, source: Source) -> dict[str, Any]:
        """The `dtmf` event of the events channel and the server-side stream."""
        return {"type": "dtmf", "digit": self.digit, "duration_ms": self.duration_ms, "source": source}

    def as_text(self) -> str:
        """The key as told to the model (profile setting `dtmf_to_model`)."""
        return f"The caller pressed {self.digit}."


class Rfc4733Decoder:
    """Keys from the telephone-event packets of one RTP stream, in arrival order."""

    def __init__(self, clock_rate: int) -> None:
        self._clock_rate = clock_rate
        self._current: tuple[int, int, int] | None = None  # (timestamp, event, duration) of an unfinished key
        self._finished: deque[int] = deque(maxlen=REMEMBERED_ENDS)

    def packet(self, timestamp: int, payload: bytes) -> list[Key]:
        """The keys this packet completes (none, one, or two when it also shows a lost end)."""
        if len(payload) < PAYLOAD_BYTES or timestamp in self._finished:
            return []
        event, flags, duration = struct.unpack("!BBH", payload[:PAYLOAD_BYTES])
        if event >= len(DIGITS):
            return []  # a tone or signal other than a key (flash, fax tones...)
        keys = []
        if self._current is not None and self._current[0] != timestamp:
            keys.append(self._key(*self._current[1:]))  # its end packets never came
            self._finished.append(self._current[0])
        if flags & 0x80:  # the E bit
            keys.append(self._key(event, duration))
            self._finished.append(timestamp)
            self._current = None
        else:
            self._current = (timestamp, event, duration)
        return keys

    def _key(self, event: int, duration: int) -> Key:
        return Key(DIGITS[event], round(1000 * duration / self._clock_rate))


def key_from_message(message: dict[str, Any]) -> Key:
    """The key of a caller's `dtmf` message `{"digit", "duration_ms"?}`; ValueError says what is wrong."""
    digit = message.get("digit")
    if not isinstance(digit, str) or len(digit) != 1 or digit.upper() not in DIGITS:
        raise ValueError(f'"digit" must be one of {DIGITS}')
    duration = message.get("duration_ms", DEFAULT_DURATION_MS)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 < duration <= MAX_DURATION_MS:
        raise ValueError(f'"duration_ms" must be a whole number of milliseconds, 1 to {MAX_DURATION_MS}')
    return Key(digit.upper(), duration)
