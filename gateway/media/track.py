"""The outbound audio track: one frame per frame period of monotonic time, whatever the source is doing.

aiortc's sender calls recv() back to back and never paces, and stops the call's outbound audio for good if
recv() raises; so this track does the pacing and turns every source failure into silence.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from gateway.stats import Window

logger = logging.getLogger(__name__)


class FrameSource(Protocol):
    def pull(self, now: float) -> np.ndarray:
        """Exactly one frame of int16 mono samples."""
        ...


def audio_frame(samples: np.ndarray, sample_rate: int, pts: int) -> av.AudioFrame:
    """A PyAV frame of int16 mono samples, pts counted in samples."""
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = sample_rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, sample_rate)
    return frame


class PacedAudioTrack(MediaStreamTrack):
    """s16 mono frames of frame_ms at sample_rate, paced by deadlines start + n x frame period.

    A deadline missed by at most one period is served at once and the schedule kept; missed by more, the
    schedule restarts from now (a resync) rather than catching up with a burst. pts counts samples and stays
    continuous across resyncs.
    """

    kind = "audio"

    def __init__(
        self,
        source: FrameSource,
        sample_rate: int,
        *,
        frame_ms: int = 20,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        call_id: str = "",
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000
        self.call_id = call_id
        self._period_s = self.frame_samples / sample_rate
        self._source = source
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None  # deadline of frame 0 of the current schedule
        self._frames = 0
        self.resyncs = 0
        self.source_errors = 0
        self.pacing_jitter_ms = Window()  # per frame: time recv() returns - its deadline

    async def recv(self) -> av.AudioFrame:
        samples, pts = await self.next_samples()
        return audio_frame(samples, self.sample_rate, pts)

    async def next_samples(self) -> tuple[np.ndarray, int]:
        """What recv() returns, as int16 samples and the pts of the first (for an encoder that takes arrays)."""
        if self.readyState != "live":
            raise MediaStreamError
        deadline = await self._wait_for_deadline()
        if self.readyState != "live":  # stopped while we slept
            raise MediaStreamError
        now = self._clock()
        self.pacing_jitter_ms.add(1000 * (now - deadline))
        pts = self._frames * self.frame_samples
        self._frames += 1
        return self._pull(now), pts

    def stats(self) -> dict:
        return {
            "frames": self._frames,
            "resyncs": self.resyncs,
            "source_errors": self.source_errors,
            "pacing_jitter_ms": self.pacing_jitter_ms.summary(),
        }

    async def _wait_for_deadline(self) -> float:
        """Sleep until this frame's deadline (from a fixed start, so sleeps never add up to drift); return it."""
        now = self._clock()
        if self._start is None:
            self._start = now
        deadline = self._start + self._frames * self._period_s
        if now < deadline:
            await self._sleep(deadline - now)
        elif now - deadline > self._period_s:
            self.resyncs += 1
            self._start = now - self._frames * self._period_s
        return deadline

    def _pull(self, now: float) -> np.ndarray:
        try:
            samples = self._source.pull(now)
            if samples.dtype != np.int16 or samples.shape != (self.frame_samples,):
                raise ValueError(f"source gave {samples.dtype} {samples.shape}, not int16 ({self.frame_samples},)")
            return np.ascontiguousarray(samples)  # from_ndarray needs it; a no-op for the usual fresh array
        except Exception:
            self.source_errors += 1
            if self.source_errors == 1:
                logger.exception("call %s: audio source failed; sending silence instead", self.call_id)
            return np.zeros(self.frame_samples, dtype=np.int16)
