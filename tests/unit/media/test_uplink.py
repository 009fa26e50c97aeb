import logging
from collections import deque
from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from gateway.media.resample import StreamResampler
from gateway.media.uplink import MAX_CHUNK_MS, Uplink

OUT_RATE = 16000
OUT_FRAME = 320  # 20 ms at 16 kHz
MAX_CHUNK_BYTES = OUT_RATE * MAX_CHUNK_MS // 1000 * 2
LEVEL = 8000


class PreparedTrack(MediaStreamTrack):
    """Hands out the given frames, then ends like a remote track does."""

    kind = "audio"

    def __init__(self, frames) -> None:
        super().__init__()
        self._frames = deque(frames)

    async def recv(self):
        if not self._frames:
            self.stop()
            raise MediaStreamError
        return self._frames.popleft()


def frame(rate: int, channels: int, pts: int) -> av.AudioFrame:
    """A 20 ms s16 frame at LEVEL as aiortc's decoders produce it: packed, pts counted in samples."""
    data = np.full((1, rate // 50 * channels), LEVEL, dtype=np.int16)
    result = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo" if channels == 2 else "mono")
    result.sample_rate = rate
    result.pts = pts
    result.time_base = Fraction(1, rate)
    return result


def frames(rate: int, channels: int, numbers) -> list[av.AudioFrame]:
    return [frame(rate, channels, n * rate // 50) for n in numbers]


async def run_uplink(frames_in, clock, **kwargs) -> tuple[Uplink, list[bytes]]:
    chunks: list[bytes] = []
    uplink = Uplink(PreparedTrack(frames_in), lambda chunk, captured_at: chunks.append(chunk), clock=clock, **kwargs)
    await uplink.run()
    return uplink, chunks


def pcm(chunks: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(chunks), dtype="<i2")


@pytest.mark.parametrize("rate,channels", [(48000, 2), (8000, 1), (16000, 1)], ids=["opus", "g711", "g722"])
async def test_caller_audio_becomes_16k_mono_of_the_same_duration(clock, rate, channels):
    uplink, chunks = await run_uplink(frames(rate, channels, range(50)), clock)
    out = pcm(chunks)
    assert out.size == 50 * OUT_FRAME  # one second in, one second out
    assert np.abs(out[100:-100].astype(np.int32) - LEVEL).max() <= 2  # the level survives (away from the ends)
    assert uplink.frames == 50 and uplink.gap_ms == 0 and uplink.bad_frames == 0
    assert uplink.last_frame_at == clock.now


async def test_chunks_go_out_as_soon_as_chunk_ms_is_ready_and_never_exceed_40_ms(clock):
    uplink, chunks = await run_uplink(frames(48000, 2, range(20)), clock)
    sizes = [len(c) // 2 for c in chunks]
    # The filter keeps its delay (2 ms) back, so the first frame gives less than 20 ms and waits for the second.
    assert OUT_FRAME < sizes[0] < 2 * OUT_FRAME
    assert all(size == OUT_FRAME for size in sizes[1:-1])  # then one 20 ms chunk per 20 ms frame
    assert sum(sizes) == 20 * OUT_FRAME
    assert max(len(c) for c in chunks) <= MAX_CHUNK_BYTES
    # Latency: nothing waits but the filter delay (the fake clock does not move while a frame is processed).
    filter_delay_ms = 1000 * StreamResampler(48000, OUT_RATE, 2).delay_s
    assert uplink.handoff_latency_ms.values() == pytest.approx([filter_delay_ms] * len(chunks))


async def test_a_pts_gap_of_three_frames_becomes_exactly_60_ms_of_silence_in_its_place(clock):
    uplink, chunks = await run_uplink(frames(48000, 2, [*range(10), *range(13, 20)]), clock)
    out = pcm(chunks).astype(np.int32)
    assert uplink.gap_ms == 60
    assert out.size == 20 * OUT_FRAME  # the missing 60 ms are there, as silence
    edge = 64  # the filter's reach either side of a step (2 ms at 16 kHz and a little more)
    assert np.abs(out[10 * OUT_FRAME + edge : 13 * OUT_FRAME - edge]).max() <= 1
    assert np.abs(out[edge : 10 * OUT_FRAME - edge] - LEVEL).max() <= 2
    assert np.abs(out[13 * OUT_FRAME + edge : -edge] - LEVEL).max() <= 2
    assert max(len(c) for c in chunks) <= MAX_CHUNK_BYTES  # the 80 ms after the gap went out as 2 x 40 ms


async def test_a_huge_pts_jump_is_filled_with_at_most_one_second(clock):
    uplink, chunks = await run_uplink(frames(8000, 1, [0, 1, 500, 501]), clock)
    assert uplink.gap_ms == 1000 and uplink.pts_jumps == 1
    assert pcm(chunks).size == 4 * OUT_FRAME + OUT_RATE


async def test_duplicate_and_backward_frames_are_dropped(clock):
    uplink, chunks = await run_uplink(frames(8000, 1, [0, 1, 2, 1, 2, 3]), clock)
    assert uplink.dropped_frames == 2
    assert pcm(chunks).size == 4 * OUT_FRAME and uplink.gap_ms == 0


async def test_a_bad_frame_is_skipped_and_its_time_becomes_silence(clock, caplog):
    bad = av.AudioFrame(format="flt", layout="mono", samples=160)  # not what aiortc decoders produce
    bad.sample_rate, bad.pts, bad.time_base = 8000, 2 * 160, Fraction(1, 8000)
    good = frames(8000, 1, range(5))
    with caplog.at_level(logging.ERROR, logger="gateway.media.uplink"):
        uplink, chunks = await run_uplink([*good[:2], bad, *good[3:]], clock, call_id="c7")
    assert uplink.bad_frames == 1 and uplink.frames == 5
    assert uplink.gap_ms == 20  # frame 2 never made it: its 20 ms are silence
    assert pcm(chunks).size == 5 * OUT_FRAME
    assert len(caplog.records) == 1 and "c7" in caplog.text


async def test_a_format_change_rebuilds_the_resampler(clock):
    uplink, chunks = await run_uplink([*frames(48000, 2, range(10)), *frames(8000, 1, range(10))], clock)
    assert pcm(chunks).size == 20 * OUT_FRAME
    assert uplink.gap_ms == 0 and uplink.dropped_frames == 0


async def test_the_loop_ends_cleanly_when_the_track_ends(clock):
    uplink, chunks = await run_uplink([], clock)
    assert chunks == [] and uplink.frames == 0 and uplink.last_frame_at == 0.0


def test_chunk_ms_above_40_is_rejected(clock):
    with pytest.raises(ValueError):
        Uplink(PreparedTrack([]), lambda chunk: None, chunk_ms=60, clock=clock)
