import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from gateway.media.downlink import LIVE_OUTPUT_RATE, Downlink
from gateway.media.resample import StreamResampler

AMPLITUDE = 10000
FADE_MS = 5


def chirp(rate: int, seconds: float = 1.0) -> np.ndarray:
    """200 Hz -> 3 kHz (inside every codec's pass band), faded in and out over 10 ms."""
    t = np.arange(int(rate * seconds)) / rate
    wave = np.sin(2 * np.pi * (200 * t + (3000 - 200) / (2 * seconds) * t**2))
    envelope = np.minimum(1, np.minimum(t, seconds - t) / 0.01)
    return np.round(AMPLITUDE * envelope * wave).astype(np.int16)


def play_in_chunks(downlink: Downlink, audio24: np.ndarray, seed: int = 0) -> None:
    """Like Live in a burst: chunks of 20-200 ms, all at once."""
    rng = np.random.default_rng(seed)
    start = 0
    while start < audio24.size:
        size = int(rng.integers(480, 4800))
        downlink.play(audio24[start : start + size].tobytes())
        start += size


async def receive(downlink: Downlink, seconds: float) -> np.ndarray:
    frames = [await downlink.track.recv() for _ in range(round(seconds / 0.02))]
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])


@pytest.mark.parametrize("out_rate", [48000, 8000, 16000])
async def test_live_audio_plays_at_the_codec_rate_with_its_content_intact(clock, out_rate):
    downlink = Downlink(out_rate, clock=clock, sleep=clock.sleep)
    play_in_chunks(downlink, chirp(LIVE_OUTPUT_RATE))
    assert downlink.speaking
    prebuffer_s = downlink.buffer.prebuffer_ms / 1000
    out = await receive(downlink, 0.5)
    downlink.end_reply()  # Live's generationComplete comes after the last chunk
    out = np.concatenate([out, await receive(downlink, 0.7)]).astype(np.float64)

    assert downlink.buffer.start_latency_ms.values() == pytest.approx([1000 * prebuffer_s])
    lag = round(prebuffer_s * out_rate)
    expected = chirp(out_rate).astype(np.float64)
    played = out[lag : lag + expected.size]
    correlation = played @ expected / np.sqrt((played @ played) * (expected @ expected))
    assert correlation > 0.999
    assert not out[:lag].any() and not out[lag + expected.size + 1 :].any()  # nothing before or after it
    assert downlink.stats()["underruns"] == 0 and not downlink.speaking


async def test_interrupt_silences_the_next_frame_after_a_short_fade(clock):
    downlink = Downlink(16000, clock=clock, sleep=clock.sleep)
    downlink.play(np.full(LIVE_OUTPUT_RATE * 2, AMPLITUDE, dtype=np.int16).tobytes())
    assert (await receive(downlink, 0.1))[-1] == AMPLITUDE  # playing

    downlink.interrupt()
    fade_samples = 16000 * FADE_MS // 1000
    cut = await receive(downlink, 0.02)
    assert np.all(np.diff(cut[:fade_samples].astype(np.int32)) < 0)
    assert not cut[fade_samples:].any()
    assert not (await receive(downlink, 0.5)).any()  # the rest of the reply is gone
    assert not downlink.speaking

    downlink.play(np.full(LIVE_OUTPUT_RATE // 10, -AMPLITUDE, dtype=np.int16).tobytes())  # the next reply
    downlink.end_reply()
    after = await receive(downlink, 0.2)
    assert after.min() == -AMPLITUDE and after.max() == 0  # only the new reply, no stale filter tail


async def test_new_track_stops_the_old_one_and_plays_from_the_same_buffer(clock):
    downlink = Downlink(8000, clock=clock, sleep=clock.sleep)
    old = downlink.track
    downlink.play(np.full(LIVE_OUTPUT_RATE // 2, AMPLITUDE, dtype=np.int16).tobytes())
    new = downlink.new_track()
    assert new is downlink.track and old.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await old.recv()
    assert (await receive(downlink, 0.2)).max() == AMPLITUDE


async def test_stats_cover_the_buffer_the_track_and_the_resampler(clock):
    downlink = Downlink(48000, clock=clock, sleep=clock.sleep)
    await receive(downlink, 0.04)
    stats = downlink.stats()
    assert stats["frames"] == 2 and stats["underruns"] == 0 and stats["state"] == "idle"
    assert stats["pacing_jitter_ms"]["count"] == 2
    assert stats["resampler_delay_ms"] == pytest.approx(1000 * StreamResampler(LIVE_OUTPUT_RATE, 48000).delay_s)


async def test_a_stray_odd_byte_from_live_is_ignored(clock):
    downlink = Downlink(24000, clock=clock, sleep=clock.sleep)  # same rate: samples pass through unchanged
    downlink.play(np.full(480, AMPLITUDE, dtype=np.int16).tobytes() + b"\x01")
    downlink.end_reply()
    assert np.count_nonzero(await receive(downlink, 0.1) == AMPLITUDE) == 480


async def test_cut_latency_runs_from_interrupt_to_the_frame_that_carries_the_fade(clock):
    downlink = Downlink(16000, clock=clock, sleep=clock.sleep)
    downlink.play(np.full(LIVE_OUTPUT_RATE * 2, AMPLITUDE, dtype=np.int16).tobytes())
    await receive(downlink, 0.1)  # playing; the next frame is due 20 ms after the last one returned
    clock.advance(0.007)
    downlink.interrupt()
    downlink.interrupt()  # a second signal (local barge-in, then Live's) does not restart the timing
    cut = await receive(downlink, 0.02)
    assert cut[0] != 0 and not cut[-1]  # this frame carries the fade
    assert downlink.cut_latency_ms.values() == pytest.approx([13.0])
    assert downlink.stats()["cut_latency_ms"]["count"] == 1


async def test_an_interrupt_with_nothing_audible_is_not_timed(clock):
    downlink = Downlink(16000, clock=clock, sleep=clock.sleep)
    downlink.interrupt()  # idle
    downlink.play(np.full(LIVE_OUTPUT_RATE, AMPLITUDE, dtype=np.int16).tobytes())
    downlink.interrupt()  # still waiting for its prebuffer: nothing was heard, nothing to cut
    await receive(downlink, 0.1)
    assert len(downlink.cut_latency_ms) == 0


async def test_a_cut_pending_when_the_caller_leaves_is_not_timed_on_the_new_track(clock):
    downlink = Downlink(16000, clock=clock, sleep=clock.sleep)
    downlink.play(np.full(LIVE_OUTPUT_RATE * 2, AMPLITUDE, dtype=np.int16).tobytes())
    await receive(downlink, 0.1)
    downlink.interrupt()  # the caller detached: its track stops pulling
    downlink.new_track()
    clock.advance(5.0)  # a resume comes much later
    await receive(downlink, 0.04)
    assert len(downlink.cut_latency_ms) == 0
