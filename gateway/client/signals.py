"""Synthetic test audio: speech-like utterances with known content, for load tests, tests and benchmarks.

Voiced sound (a wandering pitch with harmonics shaped by two formants) plus a little aspiration noise, under
a syllable envelope: energy and spectrum like speech, so a VAD sees speech and a codec treats it like a voice, yet every utterance made
from a different seed is distinct enough to tell replies apart by correlation.
"""

from __future__ import annotations

import numpy as np

RMS_DBFS = -20.0


def speech_like(seconds: float, *, seed: int = 0, rate: int = 16_000) -> np.ndarray:
    """An utterance of `seconds` (int16 mono at `rate`), 5 ms fades at both ends."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    # Intonation: a smoothed random walk around a base pitch, different for every seed.
    steps = rng.normal(0.0, 1.0, int(seconds * 50) + 2).cumsum()
    contour = np.interp(t, np.linspace(0, seconds, steps.size), steps - steps.mean())
    f0 = rng.uniform(110, 200) * np.exp(0.08 * contour)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formants = rng.uniform((500, 1200), (900, 2400))
    voice = np.zeros(n)
    for k in range(1, 30):
        freq = f0 * k
        gain = sum(1.0 / (1.0 + ((freq - f) / 150.0) ** 2) for f in formants) / k**0.5
        voice += np.where(freq < rate / 2 - 200, gain, 0.0) * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    voice /= np.sqrt(np.mean(voice**2)) or 1.0
    breath = np.convolve(rng.normal(0.0, 1.0, n), np.ones(4) / 4, mode="same")  # aspiration, slightly dulled
    breath /= np.sqrt(np.mean(breath**2)) or 1.0
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t + rng.uniform(0, np.pi))
    signal = (voice + 0.3 * breath) * syllables
    fade = min(n // 2, int(0.005 * rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[-fade:] *= ramp[::-1]
    rms = np.sqrt(np.mean(signal**2)) or 1.0
    signal *= 32768 * 10 ** (RMS_DBFS / 20) / rms
    return np.clip(signal, -32768, 32767).astype(np.int16)


def silence(seconds: float, *, rate: int = 16_000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)
