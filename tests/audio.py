"""Comparing audio in tests: does a recording contain a given signal, and how faithfully?"""

from __future__ import annotations

import numpy as np

from gateway.media.resample import resample


def to_rate(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    return resample(samples.astype(np.int16), rate, target)


def best_match(reference: np.ndarray, recording: np.ndarray) -> tuple[float, int]:
    """Peak normalised cross-correlation of `reference` within `recording`, and the lag where it peaks.

    1.0 means the recording holds an exact (scaled) copy of the reference somewhere.
    """
    ref = reference.astype(np.float64)
    rec = recording.astype(np.float64)
    if rec.size < ref.size or not ref.any():
        return 0.0, 0
    size = 1 << int(np.ceil(np.log2(rec.size + ref.size)))
    numerator = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)[: rec.size - ref.size + 1]
    energy = np.concatenate(([0.0], np.cumsum(rec**2)))
    window = np.sqrt(np.maximum(energy[ref.size :] - energy[: -ref.size], 1e-9))
    scores = numerator / (window * np.linalg.norm(ref))
    lag = int(np.argmax(scores))
    return float(scores[lag]), lag
