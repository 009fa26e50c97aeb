"""Measure streaming resampler candidates: pass band, stop band, delay and CPU per 20 ms frame.

    python tests/bench/resampler_quality.py [--json out.json]

Every candidate is fed 20 ms chunks, as the gateway does. Figures, per conversion:
- pass_1k_db, pass_hi_db: gain of a -6 dBFS tone at 1 kHz and at 0.8 x the lower Nyquist (0 is ideal);
- reject_near_db, reject_far_db: how far below the input tone everything that is not the wanted signal lies.
  Down-sampling: a tone at 1.05 x the new Nyquist, and a far one (12 kHz into 48k->16k, 5 kHz into 24k->8k,
  10 kHz into 24k->16k), which must vanish. Up-sampling: the images of the 0.8 x Nyquist and the 1 kHz tone.
  Same rate: not applicable. 92.0 is the int16 rounding floor: the residue is no louder than rounding noise;
- delay_ms, worst_ms: how long after an input sample is fed its output comes out (filter group delay plus
  the output the stream holds back), mean and worst over the chunks;
- cpu_us: mean time per 20 ms chunk, including the stereo downmix (best of CPU_ROUNDS rounds).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import soxr

from gateway.media.resample import CONVERSIONS, DOWNSAMPLING_TAPS, UPSAMPLING_TAPS, StreamResampler, downmix

CHUNK_S = 0.020
TONE_AMPLITUDE = 16384  # -6 dBFS
SIGNAL_S = 1.0
QUANTISATION_RMS = 1 / np.sqrt(12)  # rounding noise of int16 output, in LSB
SETTLE_S = 0.1  # output skipped at both ends when measuring levels (start-up and flush transients)
CPU_CHUNKS = 500
CPU_ROUNDS = 5  # the best round counts: other processes only ever make a round slower
NEAR_STOP_FACTOR = 1.05
HIGH_PASS_FACTOR = 0.8
FAR_STOP_HZ = {(48000, 16000): 12000.0, (24000, 8000): 5000.0, (24000, 16000): 10000.0}


class Resampler(Protocol):
    def process(self, samples: np.ndarray) -> np.ndarray: ...
    def flush(self) -> np.ndarray: ...


class SoxrStream:
    def __init__(self, quality: str, in_rate: int, out_rate: int, channels: int) -> None:
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)
        self._channels = channels

    def process(self, samples: np.ndarray) -> np.ndarray:
        return self._stream.resample_chunk(downmix(samples, self._channels))

    def flush(self) -> np.ndarray:
        return self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)


class PyAvDefault:
    """av.AudioResampler with libswresample's defaults (32-tap filter)."""

    def __init__(self, in_rate: int, out_rate: int, channels: int) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=out_rate)
        self._in_rate = in_rate
        self._channels = channels

    def process(self, samples: np.ndarray) -> np.ndarray:
        mono = downmix(samples, self._channels)
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._in_rate
        return self._join(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        return self._join(self._resampler.resample(None))

    @staticmethod
    def _join(frames: list[av.AudioFrame]) -> np.ndarray:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames] or [np.zeros(0, dtype=np.int16)])


Factory = Callable[[int, int, int], Resampler]
GATEWAY = f"gateway (pyav swr, {DOWNSAMPLING_TAPS} taps down, {UPSAMPLING_TAPS} up)"
CANDIDATES: dict[str, Factory] = {
    "soxr HQ": lambda i, o, c: SoxrStream("HQ", i, o, c),
    "soxr VHQ": lambda i, o, c: SoxrStream("VHQ", i, o, c),
    "pyav swr default": PyAvDefault,
    GATEWAY: StreamResampler,
}


def tone(freq_hz: float, rate: int, channels: int, seconds: float = SIGNAL_S) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = np.round(TONE_AMPLITUDE * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)
    return np.repeat(mono, channels)


def stream(resampler: Resampler, samples: np.ndarray, chunk: int) -> tuple[np.ndarray, list[int]]:
    """Feed `chunk` samples at a time, then flush; returns the output and its length after each chunk."""
    outputs, lengths, total = [], [], 0
    for start in range(0, samples.size, chunk):
        out = resampler.process(samples[start : start + chunk])
        outputs.append(out)
        total += out.size
        lengths.append(total)
    outputs.append(resampler.flush())
    return np.concatenate(outputs), lengths


def fit_tone(y: np.ndarray, rate: int, freq_hz: float) -> tuple[float, np.ndarray]:
    """Least-squares amplitude of a tone at freq_hz, and what remains once it (and DC) is removed."""
    t = np.arange(y.size) / rate
    basis = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t), np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y.astype(np.float64), rcond=None)
    return float(np.hypot(coef[0], coef[1])), y - basis @ coef


def db(ratio: float) -> float:
    return 20 * np.log10(max(ratio, 1e-12))


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0


class Measurement:
    def __init__(self, factory: Factory, in_rate: int, out_rate: int, channels: int) -> None:
        self.factory, self.in_rate, self.out_rate, self.channels = factory, in_rate, out_rate, channels
        self.chunk = int(in_rate * CHUNK_S) * channels
        self.settle = int(out_rate * SETTLE_S)

    def steady_output(self, freq_hz: float) -> np.ndarray:
        resampler = self.factory(self.in_rate, self.out_rate, self.channels)
        out, _ = stream(resampler, tone(freq_hz, self.in_rate, self.channels), self.chunk)
        return out[self.settle : -self.settle]

    def pass_db(self, freq_hz: float) -> float:
        amplitude, _ = fit_tone(self.steady_output(freq_hz), self.out_rate, freq_hz)
        return db(amplitude / TONE_AMPLITUDE)

    def reject_db(self, freq_hz: float) -> float:
        """Level of everything but the wanted output, relative to the input tone (positive = attenuation)."""
        out = self.steady_output(freq_hz)
        if freq_hz < self.out_rate / 2:
            _, out = fit_tone(out, self.out_rate, freq_hz)
        rms = max(float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))), QUANTISATION_RMS)
        return -db(rms / (TONE_AMPLITUDE / np.sqrt(2)))

    def delay_ms(self) -> tuple[float, float]:
        """Impulse alignment in the output plus the output held back after each chunk: mean and worst."""
        frames = int(self.in_rate * SIGNAL_S)
        impulse_at = frames // 4 + 7
        samples = np.zeros(frames * self.channels, dtype=np.int16)
        samples[impulse_at * self.channels : (impulse_at + 1) * self.channels] = 20000
        out, lengths = stream(self.factory(self.in_rate, self.out_rate, self.channels), samples, self.chunk)
        alignment_s = np.argmax(np.abs(out)) / self.out_rate - impulse_at / self.in_rate
        chunk_frames = self.chunk // self.channels
        held_s = [(k + 1) * chunk_frames / self.in_rate - n / self.out_rate for k, n in enumerate(lengths)]
        steady = held_s[len(held_s) // 4 :]
        return 1000 * (alignment_s + float(np.mean(steady))), 1000 * (alignment_s + max(steady))

    def cpu_us(self) -> float:
        rng = np.random.default_rng(0)
        samples = rng.integers(-8000, 8000, self.chunk * CPU_CHUNKS, dtype=np.int16)
        resampler = self.factory(self.in_rate, self.out_rate, self.channels)
        rounds = []
        for _ in range(CPU_ROUNDS):
            began = time.perf_counter_ns()
            for start in range(0, samples.size, self.chunk):
                resampler.process(samples[start : start + self.chunk])
            rounds.append(time.perf_counter_ns() - began)
        return min(rounds) / CPU_CHUNKS / 1000


def measure(name: str, factory: Factory, in_rate: int, out_rate: int, channels: int) -> dict:
    m = Measurement(factory, in_rate, out_rate, channels)
    high_hz = HIGH_PASS_FACTOR * min(in_rate, out_rate) / 2
    if out_rate < in_rate:
        near = m.reject_db(NEAR_STOP_FACTOR * out_rate / 2)
        far = m.reject_db(FAR_STOP_HZ[(in_rate, out_rate)])
    elif out_rate > in_rate:
        near, far = m.reject_db(high_hz), m.reject_db(1000.0)
    else:
        near = far = None
    delay, worst = m.delay_ms()
    return {
        "conversion": f"{in_rate // 1000}k{' stereo' if channels == 2 else ''}->{out_rate // 1000}k",
        "candidate": name,
        "pass_1k_db": rounded(m.pass_db(1000.0), 3),
        "pass_hi_hz": high_hz,
        "pass_hi_db": rounded(m.pass_db(high_hz), 3),
        "reject_near_db": rounded(near, 1),
        "reject_far_db": rounded(far, 1),
        "delay_ms": rounded(delay, 2),
        "worst_ms": rounded(worst, 2),
        "cpu_us": rounded(m.cpu_us(), 1),
    }


def print_table(rows: list[dict]) -> None:
    header = (
        "conversion", "candidate", "pass_1k_db", "pass_hi_db", "reject_near_db", "reject_far_db",
        "delay_ms", "worst_ms", "cpu_us",
    )
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in header]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(str("-" if row[h] is None else row[h]).ljust(w) for h, w in zip(header, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    rows = [measure(name, factory, *conversion) for conversion in CONVERSIONS for name, factory in CANDIDATES.items()]
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
