"""Synthetic test audio (speech-like, silence) and the measurements the tests make on replies."""

from __future__ import annotations

import numpy as np

from gateway.media.resample import resample

RATE_IN = 16_000
RATE_OUT = 24_000


def speech_like(seconds: float, f0_hz: float = 150.0, seed: int = 0, rms_dbfs: float = -20.0) -> np.ndarray:
    """A voiced, harmonic-rich signal with formant-like colouring and a syllable envelope (16 kHz int16).

    The pitch wanders between about 120 and 220 Hz; the envelope never drops to silence inside the utterance,
    so an energy VAD sees one continuous utterance.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * RATE_IN))
    t = np.arange(n) / RATE_IN
    f0 = np.clip(f0_hz * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))), 120, 220)
    phase = 2 * np.pi * np.cumsum(f0) / RATE_IN
    voiced = sum(np.sin(k * phase + rng.uniform(0, 6)) / k for k in range(1, 30))
    spectrum = np.fft.rfft(voiced + 0.02 * rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE_IN)
    formants = sum(np.exp(-(((freqs - fc) / bw) ** 2)) for fc, bw in ((500, 150), (1500, 250), (2500, 350)))
    shaped = np.fft.irfft(spectrum * (0.1 + formants), n)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t - np.pi / 2) ** 2  # about four syllables a second
    fade = min(n // 2, RATE_IN // 100)  # 10 ms edges, no clicks
    envelope[:fade] *= np.linspace(0, 1, fade)
    envelope[n - fade :] *= np.linspace(1, 0, fade)
    signal = shaped * envelope
    signal *= 10 ** (rms_dbfs / 20) * 32768 / np.sqrt(np.mean(signal**2))
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


def silence(seconds: float, rate: int = RATE_IN) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)), dtype=np.int16)


def utterance(
    speech_s: float, lead_s: float = 0.1, tail_s: float = 0.4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(the whole input with silence around the speech, the speech alone)."""
    speech = speech_like(speech_s, seed=seed)
    return np.concatenate([silence(lead_s), speech, silence(tail_s)]), speech


def expected_reply(speech16k: np.ndarray) -> np.ndarray:
    """What the parrot should send back: the speech at 24 kHz."""
    return resample(speech16k, RATE_IN, RATE_OUT)


def peak_ncc(a: np.ndarray, b: np.ndarray) -> float:
    """The peak normalised cross-correlation of two signals over all lags (1.0 = identical up to a shift)."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(x.size + y.size)))
    corr = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)
    return float(np.max(np.abs(corr)) / (np.linalg.norm(x) * np.linalg.norm(y)))


def dominant_hz(samples: np.ndarray, rate: int = RATE_OUT) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


def pcm(samples: np.ndarray) -> bytes:
    return samples.astype("<i2").tobytes()


def from_pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.int16)
