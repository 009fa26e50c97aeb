import logging
from fractions import Fraction

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from gateway.media.track import PacedAudioTrack

RATE = 48000
FRAME = 960  # 20 ms
PERIOD = 0.02


class CountingSource:
    """Frame n (from 1) is filled with the value n, so a frame's origin shows in its samples."""

    def __init__(self, failing_calls: tuple[int, ...] = ()) -> None:
        self.calls = 0
        self.failing_calls = failing_calls

    def pull(self, now: float) -> np.ndarray:
        self.calls += 1
        if self.calls in self.failing_calls:
            raise RuntimeError("source broke")
        return np.full(FRAME, self.calls, dtype=np.int16)


async def frames(track: PacedAudioTrack, clock, count: int) -> list[tuple[float, object]]:
    """Receive `count` frames; return (clock time at return, frame) for each."""
    out = []
    for _ in range(count):
        frame = await track.recv()
        out.append((clock.now, frame))
    return out


def new_track(clock, source=None) -> PacedAudioTrack:
    return PacedAudioTrack(source or CountingSource(), RATE, clock=clock, sleep=clock.sleep)


async def test_frames_are_s16_mono_with_continuous_pts(clock):
    received = await frames(new_track(clock), clock, 3)
    for n, (_, frame) in enumerate(received):
        assert frame.format.name == "s16" and frame.layout.name == "mono"
        assert frame.sample_rate == RATE and frame.samples == FRAME
        assert frame.pts == n * FRAME and frame.time_base == Fraction(1, RATE)
        assert np.all(frame.to_ndarray() == n + 1)


async def test_deadlines_do_not_drift_over_1000_frames_when_sleeps_wake_late(clock):
    clock.oversleep_s = 0.0007  # every sleep wakes 0.7 ms late; summed sleeps would drift 0.7 s
    start = clock.now
    track = new_track(clock)
    returned = np.array([at for at, _ in await frames(track, clock, 1000)])
    lateness = returned - (start + np.arange(1000) * PERIOD)
    assert lateness.min() >= -1e-9
    assert lateness.max() <= 0.0007 + 1e-9
    assert track.resyncs == 0
    assert track.stats()["pacing_jitter_ms"]["count"] == 1000
    assert track.stats()["pacing_jitter_ms"]["p99"] == pytest.approx(0.7)


async def test_a_loop_late_by_less_than_a_frame_gets_the_frame_at_once_and_keeps_the_schedule(clock):
    start = clock.now
    track = new_track(clock)
    await frames(track, clock, 3)  # deadlines start, +20, +40 ms
    clock.advance(0.035)  # frame 3 was due at +60 ms; it is now +75 ms
    sleeps_before = len(clock.sleeps)
    await track.recv()
    assert len(clock.sleeps) == sleeps_before  # sent at once
    (at, frame), = await frames(track, clock, 1)
    assert at == pytest.approx(start + 4 * PERIOD)  # frame 4 on the original schedule
    assert frame.pts == 4 * FRAME
    assert track.resyncs == 0


async def test_a_loop_late_by_five_frames_resyncs_once_without_a_burst(clock):
    track = new_track(clock)
    await frames(track, clock, 3)
    clock.advance(0.12)  # frame 3 was due 20 ms after frame 2; it is 100 ms overdue
    received = await frames(track, clock, 4)
    assert track.resyncs == 1
    times = [at for at, _ in received]
    assert np.diff(times) == pytest.approx([PERIOD] * 3)  # one frame per period again, no catch-up burst
    assert [frame.pts for _, frame in received] == [n * FRAME for n in range(3, 7)]  # no audio skipped
    assert track.pacing_jitter_ms.values()[3] == pytest.approx(100)


async def test_a_failing_source_gives_silence_and_the_track_keeps_going(clock, caplog):
    track = new_track(clock, CountingSource(failing_calls=(2, 3)))
    with caplog.at_level(logging.ERROR, logger="gateway.media.track"):
        received = await frames(track, clock, 4)
    samples = [frame.to_ndarray()[0] for _, frame in received]
    assert np.all(samples[0] == 1) and not samples[1].any() and not samples[2].any() and np.all(samples[3] == 4)
    assert track.source_errors == 2
    assert len(caplog.records) == 1  # logged once


async def test_a_source_frame_of_the_wrong_size_becomes_silence(clock):
    class ShortSource:
        def pull(self, now: float) -> np.ndarray:
            return np.ones(FRAME - 1, dtype=np.int16)

    (_, frame), = await frames(new_track(clock, ShortSource()), clock, 1)
    assert frame.samples == FRAME and not frame.to_ndarray().any()


async def test_stop_ends_the_track_with_media_stream_error(clock):
    track = new_track(clock)
    await track.recv()
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_stop_during_the_wait_ends_the_track(clock):
    async def sleep_then_stop(seconds: float) -> None:
        await clock.sleep(seconds)
        track.stop()

    track = PacedAudioTrack(CountingSource(), RATE, clock=clock, sleep=sleep_then_stop)
    await track.recv()  # the first frame is due at once
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_a_strided_source_frame_is_sent_as_is(clock):
    class StridedSource:
        def pull(self, now: float) -> np.ndarray:
            return np.arange(2 * FRAME, dtype=np.int16)[::2]  # a view, not contiguous

    track = new_track(clock, StridedSource())
    (_, frame), = await frames(track, clock, 1)
    assert np.array_equal(frame.to_ndarray()[0], np.arange(0, 2 * FRAME, 2)) and track.source_errors == 0
