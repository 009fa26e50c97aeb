"""An energy voice-activity detector with hysteresis.

It counts samples, not wall-clock time, so audio that arrives in a burst (a backlog replayed after a reconnect)
is judged exactly as if it had arrived in real time. Used by the emulator (Gemini's automatic activity
detection) and by the gateway's optional local barge-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

FRAME_MS = 10


@dataclass(frozen=True)
class VadConfig:
    start_threshold_dbfs: float = -45.0  # a frame louder than this counts towards speech starting
    end_threshold_dbfs: float = -50.0  # while speaking, a frame quieter than this counts towards the end
    start_ms: int = 40  # speech needed before the start is committed
    end_ms: int = 500  # silence needed before the end is committed


class VadEventKind(StrEnum):
    START = "start"
    END = "end"


@dataclass(frozen=True)
class VadEvent:
    kind: VadEventKind
    sample: int  # START: first sample of the speech run; END: the sample after the last speech frame


def frames_dbfs(frames: np.ndarray) -> list[float]:
    """RMS level in dB relative to full scale of each row of a 2-D array of int16 frames, in one pass (a chunk
    holds several frames); digital silence is -210 dB."""
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    return (20.0 * np.log10(np.maximum(rms, 1e-6) / 32768.0)).tolist()


class EnergyVad:
    """Feed int16 mono samples; get START and END events at absolute sample positions."""

    def __init__(self, sample_rate: int, config: VadConfig = VadConfig()) -> None:
        self.config = config
        self.frame_len = sample_rate * FRAME_MS // 1000
        self._start_frames = max(1, -(-config.start_ms // FRAME_MS))
        self._end_frames = max(1, -(-config.end_ms // FRAME_MS))
        self._pending = np.zeros(0, dtype=np.int16)
        self._position = 0  # absolute index of the first pending sample
        self._run = 0  # consecutive frames counting towards the next transition
        self._run_start = 0  # sample where that run began
        self.speaking = False

    def process(self, samples: np.ndarray) -> list[VadEvent]:
        """Consume samples (any length) and return the transitions they complete, in order."""
        pending = np.concatenate((self._pending, samples)) if self._pending.size else samples
        events: list[VadEvent] = []
        usable = pending.size - pending.size % self.frame_len
        levels = frames_dbfs(pending[:usable].reshape(-1, self.frame_len)) if usable else []
        for index, level in enumerate(levels):
            event = self._step(level, self._position + index * self.frame_len)
            if event is not None:
                events.append(event)
        self._pending = pending[usable:].copy()
        self._position += usable
        return events

    def _step(self, level: float, frame_start: int) -> VadEvent | None:
        if not self.speaking:
            if level > self.config.start_threshold_dbfs:
                if self._run == 0:
                    self._run_start = frame_start
                self._run += 1
                if self._run >= self._start_frames:
                    self.speaking, self._run = True, 0
                    return VadEvent(VadEventKind.START, self._run_start)
            else:
                self._run = 0
            return None
        if level < self.config.end_threshold_dbfs:
            if self._run == 0:
                self._run_start = frame_start
            self._run += 1
            if self._run >= self._end_frames:
                self.speaking, self._run = False, 0
                return VadEvent(VadEventKind.END, self._run_start)
        else:
            self._run = 0
        return None
