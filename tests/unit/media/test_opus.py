"""The libopus encoder: what a WebRTC receiver decodes from its packets (aiortc's Opus decoder, 48 kHz) keeps the
level and the spectrum of what went in, and the RTP timestamps count 48 kHz samples whatever the input rate."""

from __future__ import annotations

import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame

from gateway.media.opus import INPUT_RATES, RTP_CLOCK, OpusEncoder

SECONDS = 1.0
AMPLITUDE = 0.25 * 32768  # -12 dBFS


def tone(hz: float, rate: int) -> np.ndarray:
    t = np.arange(int(rate * SECONDS)) / rate
    return np.round(AMPLITUDE * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def encode(samples: np.ndarray, rate: int) -> list[tuple[bytes, int]]:
    encoder = OpusEncoder(rate)
    n = encoder.frame_samples
    return [packet for i in range(0, samples.size - n + 1, n) for packet in encoder.encode(samples[i : i + n], i)]


def decode(packets: list[tuple[bytes, int]]) -> np.ndarray:
    """As a browser or aiortc hears it: 48 kHz (one channel of aiortc's stereo output)."""
    decoder = OpusDecoder()
    frames = [f for payload, ts in packets for f in decoder.decode(JitterFrame(data=payload, timestamp=ts))]
    return np.concatenate([f.to_ndarray().reshape(-1)[::2] for f in frames]).astype(np.float64)


def steady(y: np.ndarray) -> np.ndarray:
    return y[RTP_CLOCK // 10 : -RTP_CLOCK // 10]  # past the codec's start-up, clear of the end


def fit_tone(y: np.ndarray, hz: float) -> tuple[float, np.ndarray]:
    """Amplitude of the tone at hz in y (at 48 kHz), and y without it."""
    t = np.arange(y.size) / RTP_CLOCK
    basis = np.stack([np.sin(2 * np.pi * hz * t), np.cos(2 * np.pi * hz * t), np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(coef[0], coef[1])), y - basis @ coef


@pytest.mark.parametrize("hz", [300.0, 1000.0, 4000.0, 9000.0])
def test_a_tone_from_24khz_keeps_its_level_and_nothing_else_is_added(hz: float) -> None:
    decoded = steady(decode(encode(tone(hz, 24_000), 24_000)))
    amplitude, rest = fit_tone(decoded, hz)
    assert abs(20 * np.log10(amplitude / AMPLITUDE)) < 0.2, f"{hz} Hz came back {amplitude / AMPLITUDE:.3f} x"
    residue_db = 20 * np.log10(np.sqrt(np.mean(rest**2)) / (AMPLITUDE / np.sqrt(2)))
    assert residue_db < -30, f"noise and distortion only {-residue_db:.0f} dB below a {hz} Hz tone"


def test_the_spectrum_of_a_chord_is_kept() -> None:
    chord = sum(tone(hz, 24_000).astype(np.float64) / 3 for hz in (440.0, 1900.0, 6100.0)).astype(np.int16)
    decoded = steady(decode(encode(chord, 24_000)))
    spectrum = np.abs(np.fft.rfft(decoded * np.hanning(decoded.size)))
    freqs = np.fft.rfftfreq(decoded.size, 1 / RTP_CLOCK)
    peaks = sorted(freqs[np.argsort(spectrum)[-200:]].round(-1).tolist())
    for hz in (440.0, 1900.0, 6100.0):
        assert any(abs(p - hz) <= 20 for p in peaks), f"{hz} Hz missing from the decoded spectrum"
    above_input_nyquist = spectrum[freqs > 12_500].max()
    assert 20 * np.log10(above_input_nyquist / spectrum.max()) < -50, "energy above 12 kHz, beyond a 24 kHz input"


@pytest.mark.parametrize("rate", INPUT_RATES)
def test_timestamps_count_48khz_samples_at_every_input_rate(rate: int) -> None:
    packets = encode(tone(440.0, rate), rate)
    assert len(packets) == 50
    assert [ts for _, ts in packets] == [n * RTP_CLOCK // 50 for n in range(50)]
    decoded = decode(packets)
    assert decoded.size == 50 * RTP_CLOCK // 50, "every packet decodes to 20 ms"
    amplitude, _ = fit_tone(steady(decoded), 440.0)
    assert abs(20 * np.log10(amplitude / AMPLITUDE)) < 0.5


def test_a_frame_of_the_wrong_size_or_type_is_refused() -> None:
    encoder = OpusEncoder(24_000)
    with pytest.raises(ValueError):
        encoder.encode(np.zeros(960, dtype=np.int16), 0)
    with pytest.raises(ValueError):
        encoder.encode(np.zeros(480, dtype=np.float32), 0)
    with pytest.raises(ValueError):
        OpusEncoder(44_100)
    assert len(encoder.encode(np.zeros(480, dtype=np.int16), 0)) == 1, "the encoder still works"
