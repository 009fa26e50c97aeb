"""User turns in the 16 kHz input: automatic activity detection (an energy VAD) or explicit activity signals.

Everything is in sample counts, never wall-clock time, so a backlog replayed in a burst after a reconnect is
judged exactly like audio that arrived in real time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from gateway.media.vad import EnergyVad, VadConfig, VadEventKind

from .wire import INVALID_ARGUMENT, ProtocolError

RATE = 16_000
MAX_UTTERANCE_S = 120  # a longer turn keeps only its last two minutes
LOOKBACK_S = 1.0  # audio kept before a possible speech start, beyond the prefix padding

# realtimeInputConfig.automaticActivityDetection -> VadConfig (the table in README.md)
START_DBFS = {"START_SENSITIVITY_LOW": -40.0}  # HIGH, UNSPECIFIED or absent: -50 dBFS
START_DBFS_DEFAULT = -50.0
END_DBFS = {"END_SENSITIVITY_LOW": -55.0}  # HIGH, UNSPECIFIED or absent: -45 dBFS (speech ends more readily)
END_DBFS_DEFAULT = -45.0
PREFIX_PADDING_MS_DEFAULT = 40
SILENCE_DURATION_MS_DEFAULT = 500


def _milliseconds(value: Any, default: int, name: str) -> int:
    if value is None:
        return default
    try:
        ms = int(value)  # proto3 JSON may spell integers as strings
    except (TypeError, ValueError):
        raise ProtocolError(INVALID_ARGUMENT, f"{name} must be an integer") from None
    if ms < 0:
        raise ProtocolError(INVALID_ARGUMENT, f"{name} must not be negative")
    return ms


@dataclass(frozen=True)
class ActivitySettings:
    """What `setup.realtimeInputConfig` asks for."""

    automatic: bool = True  # automatic activity detection; False = activityStart/activityEnd bracket turns
    vad: VadConfig = field(
        default_factory=lambda: VadConfig(
            START_DBFS_DEFAULT, END_DBFS_DEFAULT, PREFIX_PADDING_MS_DEFAULT, SILENCE_DURATION_MS_DEFAULT
        )
    )
    interrupts: bool = True  # activityHandling START_OF_ACTIVITY_INTERRUPTS (default) vs NO_INTERRUPTION
    all_input: bool = False  # turnCoverage TURN_INCLUDES_ALL_INPUT vs only the detected activity

    @classmethod
    def from_config(cls, config: Any) -> ActivitySettings:
        """From `realtimeInputConfig` with camelCase keys (None or {} = every default)."""
        if config is None:
            return cls()
        if not isinstance(config, dict):
            raise ProtocolError(INVALID_ARGUMENT, "realtimeInputConfig must be an object")
        aad = config.get("automaticActivityDetection") or {}
        if not isinstance(aad, dict):
            raise ProtocolError(INVALID_ARGUMENT, "automaticActivityDetection must be an object")
        vad = VadConfig(
            start_threshold_dbfs=START_DBFS.get(aad.get("startOfSpeechSensitivity"), START_DBFS_DEFAULT),
            end_threshold_dbfs=END_DBFS.get(aad.get("endOfSpeechSensitivity"), END_DBFS_DEFAULT),
            start_ms=_milliseconds(aad.get("prefixPaddingMs"), PREFIX_PADDING_MS_DEFAULT, "prefixPaddingMs"),
            end_ms=_milliseconds(aad.get("silenceDurationMs"), SILENCE_DURATION_MS_DEFAULT, "silenceDurationMs"),
        )
        return cls(
            automatic=aad.get("disabled") not in (True, "true"),
            vad=vad,
            interrupts=config.get("activityHandling") != "NO_INTERRUPTION",
            all_input=config.get("turnCoverage") == "TURN_INCLUDES_ALL_INPUT",
        )


class TurnEventKind(StrEnum):
    STARTED = "started"  # the user started a turn (speech start committed, or activityStart)
    ENDED = "ended"  # the user's turn is over; `utterance` holds its audio


@dataclass(frozen=True, eq=False)
class TurnEvent:
    kind: TurnEventKind
    utterance: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))


class TurnDetector:
    """Feed 16 kHz int16 audio and activity signals; get STARTED/ENDED events with the turn's audio."""

    def __init__(self, settings: ActivitySettings) -> None:
        self.settings = settings
        self._chunks: deque[tuple[int, np.ndarray]] = deque()  # (absolute first sample, samples)
        self._position = 0  # samples received so far
        self._floor = 0  # where the previous turn ended
        self._speech_start: int | None = None  # set while a turn is open
        self._vad: EnergyVad | None = None
        self._vad_origin = 0  # absolute sample where the current VAD instance started counting
        if settings.automatic:
            self._vad = EnergyVad(RATE, settings.vad)

    @property
    def speaking(self) -> bool:
        return self._speech_start is not None

    def feed(self, samples: np.ndarray) -> list[TurnEvent]:
        if samples.size:
            self._chunks.append((self._position, samples))
            self._position += samples.size
        events = []
        if self._vad is not None:
            for vad_event in self._vad.process(samples):
                at = self._vad_origin + vad_event.sample
                events.append(self._open(at) if vad_event.kind is VadEventKind.START else self._close(at))
        self._trim()
        return events

    def activity_start(self) -> list[TurnEvent]:
        """`activityStart` (automatic detection disabled)."""
        return [] if self.speaking else [self._open(self._position)]

    def activity_end(self) -> list[TurnEvent]:
        """`activityEnd` (automatic detection disabled); ignored when no activity is open."""
        if not self.speaking:
            return []
        event = self._close(self._position)
        self._trim()
        return [event]

    def stream_end(self) -> list[TurnEvent]:
        """`audioStreamEnd`: a detected speech segment ends now; detection restarts with the next audio.

        Only meaningful with automatic detection; explicit activity is ended by activityEnd alone.
        """
        if self._vad is None:
            return []
        events = [self._close(self._position)] if self.speaking else []
        self._vad = EnergyVad(RATE, self.settings.vad)
        self._vad_origin = self._position
        self._trim()
        return events

    def _open(self, at: int) -> TurnEvent:
        self._speech_start = at
        return TurnEvent(TurnEventKind.STARTED)

    def _close(self, at: int) -> TurnEvent:
        start = self._floor if self.settings.all_input else self._speech_start
        assert start is not None
        utterance = self._slice(max(start, at - MAX_UTTERANCE_S * RATE), at)
        self._floor, self._speech_start = at, None
        return TurnEvent(TurnEventKind.ENDED, utterance)

    def _slice(self, start: int, end: int) -> np.ndarray:
        parts = [
            samples[max(0, start - first) : max(0, end - first)]
            for first, samples in self._chunks
            if first < end and first + samples.size > start
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def _trim(self) -> None:
        """Forget audio no future turn can include."""
        keep_from = self._position - MAX_UTTERANCE_S * RATE
        if self.settings.all_input:
            keep_from = max(keep_from, self._floor)
        elif self._speech_start is not None:
            keep_from = max(keep_from, self._speech_start)
        else:
            lookback = int(RATE * (self.settings.vad.start_ms / 1000 + LOOKBACK_S))
            keep_from = max(keep_from, self._position - lookback)
        while self._chunks and self._chunks[0][0] + self._chunks[0][1].size <= keep_from:
            self._chunks.popleft()
