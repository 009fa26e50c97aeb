"""The uplink: drains the caller's track and hands 16 kHz mono s16le chunks to a sink as soon as they are ready.

aiortc queues received frames without bound, so the track must be drained for the whole call. Lost packets
leave gaps in pts: they become silence of the same length, so the audio Live hears keeps its timing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from fractions import Fraction

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from gateway.media.resample import StreamResampler, silence_like
from gateway.stats import Window

logger = logging.getLogger(__name__)

UPLINK_RATE = 16000  # what Live takes
MAX_CHUNK_MS = 40  # most audio per sink call: small chunks keep Live's latency low (design: at most 40 ms)
MAX_GAP_FILL_S = 1.0  # a longer pts jump (a stream restart, not loss) is filled with this much silence only
BYTES_PER_SAMPLE = 2


class Uplink:
    """Caller audio in (any rate and layout aiortc decodes to), 16 kHz mono s16le chunks out.

    The sink gets each chunk with its capture time: when the newest frame in it came out of aiortc's decoder
    (its recv() returned), less the resampler's delay. `handoff_latency_ms` records, per sink call, how long
    ago that was; the Live session records the rest of the way (`uplink_latency_ms`, until the bytes are sent).
    Audio held back to fill a chunk is older than that by at most chunk_ms.
    """

    def __init__(
        self,
        track: MediaStreamTrack,
        sink: Callable[[bytes, float], None],
        *,
        chunk_ms: int = 20,
        clock: Callable[[], float] = time.monotonic,
        call_id: str = "",
    ) -> None:
        if not 0 < chunk_ms <= MAX_CHUNK_MS:
            raise ValueError(f"chunk_ms must be in (0, {MAX_CHUNK_MS}], not {chunk_ms}")
        self._track = track
        self._sink = sink
        self._clock = clock
        self.call_id = call_id
        self._chunk_bytes = UPLINK_RATE * chunk_ms // 1000 * BYTES_PER_SAMPLE
        self._max_chunk_bytes = UPLINK_RATE * MAX_CHUNK_MS // 1000 * BYTES_PER_SAMPLE
        self._pending = bytearray()
        self._format: tuple[int, int] | None = None  # (sample rate, channels) of the input
        self._resampler: StreamResampler | None = None
        self._next_pts: int | None = None  # pts, in input samples, the next frame should carry

        self.last_frame_at = 0.0  # clock time of the last frame received (caller liveness); 0.0 = none yet
        self.frames = 0
        self.dropped_frames = 0  # duplicate or backward pts
        self.bad_frames = 0  # failed to process, skipped
        self.gap_ms = 0.0  # silence inserted for lost packets
        self.pts_jumps = 0  # pts moved by more than MAX_GAP_FILL_S: a restarted stream rather than loss
        self.handoff_latency_ms = Window()

    async def run(self) -> None:
        """Drain the track until it ends; hand over what is left and return."""
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                break
            received_at = self._clock()
            self.last_frame_at = received_at
            self.frames += 1
            try:
                self._process(frame, received_at)
            except Exception:
                self.bad_frames += 1
                if self.bad_frames == 1:
                    logger.exception("call %s: skipping an uplink frame that failed to process", self.call_id)
        if self._resampler is not None:
            self._pending += self._resampler.flush().tobytes()
            self._emit(self.last_frame_at, minimum_bytes=1)

    def stats(self) -> dict:
        return {
            "frames": self.frames,
            "dropped_frames": self.dropped_frames,
            "bad_frames": self.bad_frames,
            "gap_ms": self.gap_ms,
            "pts_jumps": self.pts_jumps,
            "handoff_latency_ms": self.handoff_latency_ms.summary(),
        }

    def _process(self, frame: av.AudioFrame, received_at: float) -> None:
        if frame.format.name != "s16":
            raise ValueError(f"expected packed s16 audio, got {frame.format.name}")
        rate, channels = frame.sample_rate, len(frame.layout.channels)
        if (rate, channels) != self._format:
            self._use_format(rate, channels)
        silence = self._missing_samples(frame, rate, frame.samples)
        if silence is None:
            self.dropped_frames += 1
            return
        if silence:
            self._pending += self._resampler.process_frame(silence_like(frame, silence)).tobytes()
        self._pending += self._resampler.process_frame(frame).tobytes()
        self._emit(received_at, minimum_bytes=self._chunk_bytes)

    def _emit(self, received_at: float, minimum_bytes: int) -> None:
        """Hand over everything pending, at most MAX_CHUNK_MS per sink call, while at least minimum_bytes are."""
        while len(self._pending) >= minimum_bytes:
            size = min(len(self._pending), self._max_chunk_bytes)
            chunk = bytes(self._pending[:size])
            del self._pending[:size]
            captured_at = received_at - self._resampler.delay_s
            self._sink(chunk, captured_at)
            self.handoff_latency_ms.add(1000 * (self._clock() - captured_at))

    def _use_format(self, rate: int, channels: int) -> None:
        if self._resampler is not None:
            self._pending += self._resampler.flush().tobytes()
        logger.info("call %s: uplink audio is %d Hz, %d channel(s)", self.call_id, rate, channels)
        self._format = (rate, channels)
        self._resampler = StreamResampler(rate, UPLINK_RATE, channels)
        self._next_pts = None

    def _missing_samples(self, frame: av.AudioFrame, rate: int, length: int) -> int | None:
        """Input samples of silence to insert before this frame, or None to drop it as a duplicate."""
        if frame.pts is None:
            return 0
        pts = frame.pts
        if frame.time_base is not None and frame.time_base != Fraction(1, rate):
            pts = round(pts * frame.time_base * rate)
        expected, self._next_pts = self._next_pts, pts + length
        if expected is None or pts == expected:
            return 0
        gap = pts - expected
        if -rate * MAX_GAP_FILL_S <= gap < 0:  # a duplicate or a late frame: its time has passed
            self._next_pts = expected
            return None
        if abs(gap) > rate * MAX_GAP_FILL_S:
            self.pts_jumps += 1
            if self.pts_jumps == 1:
                logger.warning("call %s: uplink pts jumped by %.1f s; inserting at most %.0f s of silence",
                               self.call_id, gap / rate, MAX_GAP_FILL_S)
        silence = min(max(gap, 0), round(rate * MAX_GAP_FILL_S))
        self.gap_ms += 1000 * silence / rate
        return silence
