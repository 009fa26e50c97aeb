import logging

import numpy as np
import pytest

from gateway.media.playout import JITTER_MEMORY_REPLIES, UNSEEN_JITTER_MS, PlayoutBuffer

RATE = 16000
FRAME = 320  # 20 ms
FRAME_S = FRAME / RATE
FADE = 80  # 5 ms
END = "end"
ON_TIME_PREBUFFER_MS = 20 + 5 + UNSEEN_JITTER_MS  # a frame, the fade reserve and the jitter margin


def ms(milliseconds: float) -> int:
    return int(RATE * milliseconds / 1000)


def tagged(count: int, first: int = 1) -> np.ndarray:
    """Distinct non-zero sample values, so every sample that plays can be traced back to its push."""
    return ((np.arange(count) + first) % 30000 + 1).astype(np.int16)


def simulate(buffer: PlayoutBuffer, events: list, seconds: float, start: float = 0.0) -> np.ndarray:
    """Pull a frame every 20 ms from `start`; before each pull, apply the events (time, samples | END) due by then."""
    events = sorted(events, key=lambda event: event[0])
    out, next_event = [], 0
    for k in range(round(seconds / FRAME_S)):
        now = start + k * FRAME_S
        while next_event < len(events) and events[next_event][0] <= now:
            when, what = events[next_event]
            if isinstance(what, str):
                buffer.end_reply(when)
            else:
                buffer.push(what, when)
            next_event += 1
        frame = buffer.pull(now)
        assert frame.dtype == np.int16 and frame.shape == (FRAME,)
        out.append(frame)
    assert next_event == len(events), "simulation too short for its events"
    return np.concatenate(out)


def chunked(samples: np.ndarray, sizes) -> list[np.ndarray]:
    bounds = np.cumsum(sizes)
    return [c for c in np.split(samples, bounds[bounds < samples.size]) if c.size]


def bursty_reply(rng, start: float, samples: np.ndarray) -> list:
    """Like Live in bursts (and the emulator's burst mode): 20-200 ms chunks, each sent 5-50 % of the previous
    chunk's duration after it, plus up to 10 ms of network jitter."""
    events, at, last = [], start, start
    for chunk in chunked(samples, rng.integers(ms(20), ms(200), 100)):
        last = max(last, at + rng.uniform(0, 0.01))
        events.append((last, chunk))
        at += chunk.size / RATE * rng.uniform(0.05, 0.5)
    return events + [(last, END)]


def realtime_reply(start: float, samples: np.ndarray, chunk_sizes=None, stall_after_s: float | None = None,
                   stall_s: float = 0.0) -> list:
    """Each chunk arrives when the audio before it would have finished playing (40 ms chunks by default)."""
    events, position = [], 0
    for chunk in chunked(samples, chunk_sizes if chunk_sizes is not None else [ms(40)] * 1000):
        offset = position / RATE
        stalled = stall_after_s is not None and offset >= stall_after_s
        events.append((start + offset + (stall_s if stalled else 0.0), chunk))
        position += chunk.size
    return events + [(events[-1][0], END)]


def test_a_reply_waits_for_its_prebuffer_then_starts_to_the_sample():
    buffer = PlayoutBuffer(RATE, FRAME)
    assert buffer.prebuffer_ms == pytest.approx(ON_TIME_PREBUFFER_MS)  # without history: as if on time
    audio = tagged(ms(40))
    buffer.push(audio[: ms(10)], 0.0)
    assert not buffer.idle and not buffer.playing
    assert not buffer.pull(0.0).any()
    buffer.push(audio[ms(10) :], 0.010)  # on time: no lateness
    frame = buffer.pull(0.02)  # the prebuffer ends 10 ms into this frame
    start = ms(ON_TIME_PREBUFFER_MS - 20)
    assert buffer.playing
    assert not frame[:start].any()
    assert np.array_equal(frame[start:], audio[: FRAME - start])  # the reply's start is not faded
    assert buffer.start_latency_ms.values() == pytest.approx([ON_TIME_PREBUFFER_MS])


def test_a_late_chunk_raises_the_prebuffer_by_its_lateness():
    buffer = PlayoutBuffer(RATE, FRAME)
    buffer.push(tagged(ms(10)), 0.0)
    buffer.push(tagged(ms(30)), 0.015)  # 5 ms later than real time
    assert buffer.prebuffer_ms == pytest.approx(ON_TIME_PREBUFFER_MS + 5)
    assert not buffer.pull(0.0).any()
    frame = buffer.pull(0.02)
    start = ms(ON_TIME_PREBUFFER_MS + 5 - 20)
    assert not frame[:start].any() and frame[start:].all()
    assert buffer.start_latency_ms.values() == pytest.approx([ON_TIME_PREBUFFER_MS + 5])


def test_a_big_first_chunk_still_waits_for_the_prebuffer():
    buffer = PlayoutBuffer(RATE, FRAME)
    buffer.push(tagged(ms(200)), 0.0)
    assert not buffer.pull(0.0).any()  # with real-time delivery the next chunk may come only in 200 ms
    assert buffer.pull(0.02)[ms(ON_TIME_PREBUFFER_MS - 20) :].all()


@pytest.mark.parametrize("chunks", ["40ms", "20-200ms"])
def test_real_time_delivery_plays_without_underruns(chunks):
    rng = np.random.default_rng(3)
    buffer = PlayoutBuffer(RATE, FRAME)
    audio = tagged(ms(3000))
    sizes = [ms(40)] * 100 if chunks == "40ms" else rng.integers(ms(20), ms(200), 100)
    out = simulate(buffer, realtime_reply(0.013, audio, sizes), seconds=3.2)
    assert buffer.underruns == 0
    assert np.array_equal(out[out != 0], audio)
    assert buffer.start_latency_ms.values() == pytest.approx([ON_TIME_PREBUFFER_MS])


def test_end_reply_plays_a_short_reply_at_once_and_drains_without_underrun():
    buffer = PlayoutBuffer(RATE, FRAME)
    audio = tagged(ms(50))
    out = simulate(buffer, [(0.0, audio), (0.0, END)], seconds=0.2)
    assert np.array_equal(out[: audio.size], audio)
    assert np.all(out[audio.size :] == 0)
    assert buffer.underruns == 0 and buffer.stats()["underrun_ms"] == 0
    assert buffer.idle and not buffer.playing


def test_bursty_fast_delivery_plays_every_sample_without_underruns_and_a_low_prebuffer():
    rng = np.random.default_rng(7)
    buffer = PlayoutBuffer(RATE, FRAME)
    replies, events, start = [], [], 0.0
    for r in range(20):
        replies.append(tagged(int(RATE * rng.uniform(0.5, 4)), first=r * 1000))
        events += bursty_reply(rng, start, replies[-1])
        start += replies[-1].size / RATE + 1.0
    out = simulate(buffer, events, seconds=start + 0.5)
    assert buffer.underruns == 0
    assert np.array_equal(out[out != 0], np.concatenate(replies))  # everything, in order, nothing else
    assert buffer.prebuffer_ms <= 60
    assert max(buffer.start_latency_ms.values()) <= 60  # each reply starts when its prebuffer has passed
    assert buffer.replies == 20 and buffer.idle


def test_a_stall_is_an_underrun_with_faded_edges_and_raises_the_prebuffer():
    buffer = PlayoutBuffer(RATE, FRAME)
    level = 8000
    audio = np.full(ms(2000), level, dtype=np.int16)
    out = simulate(buffer, realtime_reply(0.0, audio, stall_after_s=0.8, stall_s=0.3), seconds=3.0)

    assert buffer.underruns == 1
    first, last = np.flatnonzero(out)[[0, -1]]
    inside = out[first : last + 1].astype(np.int32)
    gap = np.flatnonzero(inside == 0)
    assert np.all(np.diff(gap) == 1)  # one gap
    assert buffer.stats()["underrun_ms"] == pytest.approx(1000 * gap.size / RATE)
    # Audio ran out at 0.83 s (it started at 0.03); the next chunk came at 1.1 s, 300 ms late, and playback
    # resumed one (raised) prebuffer after it.
    assert buffer.prebuffer_ms == pytest.approx(300 + ON_TIME_PREBUFFER_MS)
    assert gap.size == pytest.approx(ms(1000 * (1.1 - 0.83) + buffer.prebuffer_ms), abs=1)
    assert np.max(np.abs(np.diff(inside))) <= level / (FADE + 1) + 1  # faded out and back in, no step
    assert np.sum(out == level) == audio.size - 2 * FADE  # all audio played; only the fades changed it


def test_running_dry_at_a_frame_boundary_still_fades_out():
    buffer = PlayoutBuffer(RATE, FRAME)
    level = 8000
    first_frame = FRAME - ms(ON_TIME_PREBUFFER_MS - 20)  # playback starts inside the second frame
    audio = np.full(first_frame + 5 * FRAME, level, dtype=np.int16)  # the queue empties at a frame boundary
    out = simulate(buffer, [(0.0, audio)], seconds=0.3).astype(np.int32)
    assert buffer.underruns == 1
    start = np.flatnonzero(out)[0]
    assert np.max(np.abs(np.diff(out[start:]))) <= level / (FADE + 1) + 1  # the last audible frame faded out


def test_after_a_stall_the_next_reply_prebuffers_longer_until_stalls_are_forgotten():
    buffer = PlayoutBuffer(RATE, FRAME)
    audio = tagged(ms(1000))
    simulate(buffer, realtime_reply(0.0, audio, stall_after_s=0.4, stall_s=0.2), seconds=2.0)
    raised = buffer.prebuffer_ms
    assert raised >= 200

    start = 2.0
    for _ in range(JITTER_MEMORY_REPLIES):
        before = len(buffer.start_latency_ms)
        simulate(buffer, realtime_reply(start, audio), seconds=1.6, start=start)
        assert buffer.start_latency_ms.values()[before] >= raised - 40  # waited for the raised prebuffer
        start += 1.6
    assert buffer.underruns == 1
    assert buffer.prebuffer_ms == pytest.approx(ON_TIME_PREBUFFER_MS)  # the stall is forgotten


def test_flush_fades_out_within_fade_ms_and_nothing_pushed_before_it_plays_after():
    buffer = PlayoutBuffer(RATE, FRAME)
    before = np.full(ms(1000), 7000, dtype=np.int16)
    played = simulate(buffer, [(0.0, before)], seconds=0.1)
    assert buffer.playing

    discarded = buffer.flush()
    assert discarded == before.size - np.count_nonzero(played)
    assert buffer.idle and not buffer.playing
    buffer.push(np.full(ms(200), -3000, dtype=np.int16), 0.1)  # the next reply arrives at once
    fade_frame = buffer.pull(0.1)
    assert np.all(fade_frame[FADE:] == 0)
    assert np.all(np.diff(fade_frame[:FADE].astype(np.int32)) < 0) and fade_frame[0] <= 7000
    later = simulate(buffer, [(0.2, END)], seconds=0.5, start=0.12)
    assert not np.any(later > 0)  # none of the flushed audio...
    assert np.sum(later == -3000) == ms(200)  # ...only the new reply, all of it


def test_flush_while_prebuffering_gives_silence_at_once():
    buffer = PlayoutBuffer(RATE, FRAME)
    buffer.push(tagged(ms(10)), 0.0)
    assert buffer.flush() == ms(10)
    assert np.all(buffer.pull(0.0) == 0)
    assert buffer.idle and buffer.flushes == 1


def test_overflow_keeps_the_oldest_audio_counts_the_rest_and_warns_once(caplog):
    buffer = PlayoutBuffer(RATE, FRAME, capacity_s=0.1, call_id="c1")
    audio = tagged(ms(300))
    with caplog.at_level(logging.WARNING, logger="gateway.media.playout"):
        buffer.push(audio[: ms(150)], 0.0)
        buffer.push(audio[ms(150) :], 0.01)
    assert buffer.stats()["buffered_ms"] == 100
    assert buffer.stats()["overflow_ms"] == 200
    assert len(caplog.records) == 1 and "c1" in caplog.text
    buffer.end_reply(0.01)
    out = simulate(buffer, [], seconds=0.2, start=0.02)
    assert np.array_equal(out[out != 0], audio[: ms(100)])


def test_latency_marks_record_when_each_push_starts_playing():
    buffer = PlayoutBuffer(RATE, FRAME)
    buffer.push(tagged(ms(30)), 0.000)
    buffer.pull(0.010)  # silence: the prebuffer ends at 0.030
    buffer.push(tagged(ms(20)), 0.015)  # its first sample is number 480
    buffer.pull(0.030)  # samples 0..319
    buffer.pull(0.050)  # samples 320..639: number 480 plays 10 ms into this frame
    assert buffer.downlink_latency_ms.values() == pytest.approx([30, 45])
    assert buffer.start_latency_ms.values() == pytest.approx([30])
    assert buffer.stats()["start_latency_ms"]["count"] == 1


def test_pull_always_returns_one_frame_of_int16():
    buffer = PlayoutBuffer(RATE, FRAME)
    for now in (0.0, 0.02):
        frame = buffer.pull(now)
        assert frame.dtype == np.int16 and frame.shape == (FRAME,) and not frame.any()
    assert buffer.idle


def test_fade_longer_than_a_frame_is_rejected():
    with pytest.raises(ValueError):
        PlayoutBuffer(RATE, FRAME, fade_ms=30)
