from fractions import Fraction

import av
import numpy as np
import pytest

from gateway.media.resample import CONVERSIONS, StreamResampler

AMPLITUDE = 16384  # -6 dBFS
DOWNSAMPLING = [(i, o, c) for i, o, c in CONVERSIONS if o < i]
UPSAMPLING = [(i, o, c) for i, o, c in CONVERSIONS if o > i]
UPLINK = [(i, o, c) for i, o, c in CONVERSIONS if o == 16000 and i != 24000]  # aiortc's decoded audio to Live's
FAR_STOP_HZ = {(48000, 16000): 12000, (24000, 8000): 5000, (24000, 16000): 10000}


def tone(freq_hz: float, rate: int, channels: int = 1, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.repeat(np.round(AMPLITUDE * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16), channels)


def stream(resampler: StreamResampler, samples: np.ndarray, chunk: int) -> np.ndarray:
    out = [resampler.process(samples[i : i + chunk]) for i in range(0, samples.size, chunk)]
    return np.concatenate(out + [resampler.flush()])


def in_chunks_of_20ms(in_rate: int, out_rate: int, channels: int, samples: np.ndarray) -> np.ndarray:
    return stream(StreamResampler(in_rate, out_rate, channels), samples, in_rate // 50 * channels)


def steady(y: np.ndarray, rate: int) -> np.ndarray:
    return y[rate // 20 : -rate // 20].astype(np.float64)  # skip the start-up and flush transients


def fit_tone(y: np.ndarray, rate: int, freq_hz: float) -> tuple[float, np.ndarray]:
    """Amplitude of the tone at freq_hz in y, and y without it."""
    t = np.arange(y.size) / rate
    basis = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t), np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(coef[0], coef[1])), y - basis @ coef


def level_db(y: np.ndarray) -> float:
    """RMS of y relative to the input tone's RMS."""
    return 20 * np.log10(max(np.sqrt(np.mean(np.square(y))), 1e-9) / (AMPLITUDE / np.sqrt(2)))


@pytest.mark.parametrize("in_rate,out_rate,channels", CONVERSIONS)
@pytest.mark.parametrize("freq_factor", [None, 0.8], ids=["1kHz", "0.8xNyquist"])
def test_pass_band_tone_comes_through_within_half_a_db(in_rate, out_rate, channels, freq_factor):
    freq = 1000.0 if freq_factor is None else freq_factor * min(in_rate, out_rate) / 2
    out = steady(in_chunks_of_20ms(in_rate, out_rate, channels, tone(freq, in_rate, channels)), out_rate)
    amplitude, _ = fit_tone(out, out_rate, freq)
    assert abs(20 * np.log10(amplitude / AMPLITUDE)) < 0.5


@pytest.mark.parametrize("in_rate,out_rate,channels", DOWNSAMPLING)
@pytest.mark.parametrize("where", ["just_above", "far_above"])
def test_tone_above_the_new_nyquist_is_attenuated_60_db(in_rate, out_rate, channels, where):
    freq = 1.05 * out_rate / 2 if where == "just_above" else FAR_STOP_HZ[(in_rate, out_rate)]
    out = steady(in_chunks_of_20ms(in_rate, out_rate, channels, tone(freq, in_rate, channels)), out_rate)
    assert level_db(out) <= -60


@pytest.mark.parametrize("in_rate,out_rate,channels", UPSAMPLING)
def test_upsampling_images_are_attenuated_60_db(in_rate, out_rate, channels):
    freq = 0.8 * in_rate / 2  # its image at in_rate - freq lies just above the old Nyquist
    out = steady(in_chunks_of_20ms(in_rate, out_rate, channels, tone(freq, in_rate, channels)), out_rate)
    amplitude, rest = fit_tone(out, out_rate, freq)
    assert amplitude > AMPLITUDE * 0.9
    assert level_db(rest) <= -60


@pytest.mark.parametrize("in_rate,out_rate,channels", CONVERSIONS)
def test_streaming_in_any_chunks_equals_one_shot(in_rate, out_rate, channels):
    rng = np.random.default_rng(1)
    samples = np.repeat(rng.integers(-12000, 12000, in_rate // 2, dtype=np.int16), channels)
    one_shot = stream(StreamResampler(in_rate, out_rate, channels), samples, samples.size)
    twenty_ms = in_chunks_of_20ms(in_rate, out_rate, channels, samples)
    irregular_resampler, irregular, start = StreamResampler(in_rate, out_rate, channels), [], 0
    for size in rng.integers(1, in_rate // 10, 200) * channels:
        irregular.append(irregular_resampler.process(samples[start : start + size]))
        start += size
        if start >= samples.size:
            break
    irregular = np.concatenate(irregular + [irregular_resampler.flush()])
    assert one_shot.size == samples.size // channels * out_rate // in_rate
    for streamed in (twenty_ms, irregular):
        assert streamed.size == one_shot.size
        assert np.max(np.abs(streamed.astype(np.int32) - one_shot)) <= 1


@pytest.mark.parametrize("in_rate,out_rate,channels", CONVERSIONS)
def test_delay_s_matches_the_measured_impulse_delay(in_rate, out_rate, channels):
    resampler = StreamResampler(in_rate, out_rate, channels)
    chunk = in_rate // 50
    impulse = np.zeros(chunk * 5 * channels, dtype=np.int16)
    impulse[chunk * 2 * channels : (chunk * 2 + 1) * channels] = 20000
    outputs = [resampler.process(impulse[i : i + chunk * channels]) for i in range(0, impulse.size, chunk * channels)]
    produced = sum(o.size for o in outputs)
    held_back_s = 5 * chunk / in_rate - produced / out_rate  # output not yet produced = the delay
    peak_s = np.argmax(np.abs(np.concatenate(outputs))) / out_rate
    assert held_back_s == pytest.approx(resampler.delay_s, abs=1.5 / min(in_rate, out_rate))
    assert peak_s == pytest.approx(2 * chunk / in_rate, abs=1.5 / out_rate)  # output is time-aligned


def test_stereo_is_averaged_to_mono():
    left = tone(1000, 48000)
    right = np.zeros_like(left)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    out = steady(in_chunks_of_20ms(48000, 16000, 2, stereo), 16000)
    amplitude, _ = fit_tone(out, 16000, 1000)
    assert amplitude == pytest.approx(AMPLITUDE / 2, rel=0.01)
    opposite = np.stack([left, -left], axis=1).reshape(-1)
    assert np.max(np.abs(in_chunks_of_20ms(48000, 16000, 2, opposite))) <= 1


@pytest.mark.parametrize("in_rate,out_rate,channels", UPLINK)
def test_decoded_frames_convert_like_arrays(in_rate, out_rate, channels):
    """The uplink hands aiortc's frames to the converter as they are; the result is the array path's."""
    rng = np.random.default_rng(2)
    left = rng.integers(-12000, 12000, in_rate // 2, dtype=np.int16)
    samples = np.stack([left, left // 2], axis=1).reshape(-1) if channels == 2 else left
    layout, chunk = ("stereo" if channels == 2 else "mono"), in_rate // 50 * channels
    by_frame, converter = [], StreamResampler(in_rate, out_rate, channels)
    for start in range(0, samples.size, chunk):
        frame = av.AudioFrame.from_ndarray(samples[start : start + chunk].reshape(1, -1), format="s16", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = in_rate, start // channels, Fraction(1, in_rate)
        by_frame.append(converter.process_frame(frame))
    by_frame = np.concatenate(by_frame + [converter.flush()])
    by_array = in_chunks_of_20ms(in_rate, out_rate, channels, samples)
    assert by_frame.size == by_array.size
    assert np.max(np.abs(by_frame.astype(np.int32) - by_array)) <= 1


def test_same_rate_mono_passes_through_unchanged():
    samples = tone(1000, 16000)
    resampler = StreamResampler(16000, 16000)
    assert resampler.process(samples) is samples
    assert resampler.delay_s == 0
    assert resampler.flush().size == 0


def test_reset_discards_the_filter_state():
    samples = tone(1000, 24000, seconds=0.1)
    silence = np.zeros(480, dtype=np.int16)
    kept = StreamResampler(24000, 8000)
    kept.process(samples)
    assert np.max(np.abs(kept.process(silence))) > 1000  # the tone's tail is still in the filter...
    fresh = StreamResampler(24000, 8000)
    fresh.process(samples)
    fresh.reset()
    assert np.all(fresh.process(silence) == 0)  # ...unless it was reset


def test_empty_input_gives_empty_output():
    resampler = StreamResampler(24000, 48000)
    out = resampler.process(np.zeros(0, dtype=np.int16))
    assert out.dtype == np.int16 and out.size == 0


def test_after_flush_the_next_stream_converts_like_a_fresh_one():
    samples = tone(1000, 24000, seconds=0.1)
    reused = StreamResampler(24000, 16000)
    first = stream(reused, samples, 480)
    assert np.array_equal(stream(reused, samples, 480), first)  # flush() ended the first stream cleanly
