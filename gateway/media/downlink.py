"""The downlink: Live's 24 kHz reply audio -> the codec's rate -> playout buffer -> paced outbound track."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import numpy as np

from gateway.media.playout import PlayoutBuffer
from gateway.media.resample import StreamResampler
from gateway.media.track import PacedAudioTrack
from gateway.stats import Window

LIVE_OUTPUT_RATE = 24000  # Live replies are 24 kHz s16le mono


class Downlink:
    """One per call; outlives peer connections (a resumed caller gets `new_track()` on the same buffer)."""

    def __init__(
        self,
        out_rate: int,
        *,
        frame_ms: int = 20,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        call_id: str = "",
        **playout_kwargs: float,
    ) -> None:
        self.out_rate = out_rate
        self.call_id = call_id
        self._frame_ms = frame_ms
        self._clock = clock
        self._sleep = sleep
        self._resampler = StreamResampler(LIVE_OUTPUT_RATE, out_rate)
        self._last_audio_at = 0.0  # when the last Live chunk arrived
        self._cut_at: float | None = None  # when an interruption cut audible playback, until a frame carries it
        self.cut_latency_ms = Window()  # per cut: the next frame's pull (the one carrying the fade) - interrupt()
        self.buffer = PlayoutBuffer(out_rate, out_rate * frame_ms // 1000, call_id=call_id, **playout_kwargs)
        self.track = self._make_track()

    @property
    def speaking(self) -> bool:
        """A reply is in progress: playing, or waiting for its prebuffer."""
        return not self.buffer.idle

    def new_track(self) -> PacedAudioTrack:
        """Stop the current track and return a fresh one on the same buffer (for a new peer connection)."""
        self.track.stop()
        self.track = self._make_track()
        self._cut_at = None  # a cut before the caller left is not timed across the gap
        return self.track

    def pull(self, now: float) -> np.ndarray:
        """The track's frame source: the buffer's next frame, timing the first one after a cut."""
        frame = self.buffer.pull(now)
        if self._cut_at is not None:
            self.cut_latency_ms.add(1000 * (now - self._cut_at))
            self._cut_at = None
        return frame

    def play(self, pcm24: bytes) -> None:
        """Queue a chunk of Live reply audio (24 kHz s16le mono, any length)."""
        self._last_audio_at = self._clock()
        samples = np.frombuffer(pcm24, dtype="<i2", count=len(pcm24) // 2)  # a stray odd byte is ignored
        self.buffer.push(self._resampler.process(samples), self._last_audio_at)

    def end_reply(self) -> None:
        """The reply is complete: its last few ms leave the resampler and everything queued plays out."""
        # The tail arrived with the last chunk: dated so, a late end marker does not count as late audio.
        self.buffer.push(self._resampler.flush(), self._last_audio_at)
        self.buffer.end_reply(self._clock())

    def interrupt(self) -> None:
        """Barge-in: the next frame fades out and the queued reply audio is gone."""
        if self._cut_at is None and self.buffer.playing:  # audio is heard now: time the cut
            self._cut_at = self._clock()
        self.buffer.flush()
        self._resampler.reset()

    def stats(self) -> dict:
        return {**self.buffer.stats(), **self.track.stats(), "cut_latency_ms": self.cut_latency_ms.summary(),
                "resampler_delay_ms": 1000 * self._resampler.delay_s}

    def _make_track(self) -> PacedAudioTrack:
        return PacedAudioTrack(
            self, self.out_rate, frame_ms=self._frame_ms, clock=self._clock, sleep=self._sleep,
            call_id=self.call_id,
        )
