"""Streaming sample-rate conversion to and from the rates Live and the codecs use.

Backend: libswresample through PyAV (64-tap filter downsampling, 32 upsampling), chosen with
tests/bench/resampler_quality.py (20 ms chunks): flat (< 0.01 dB) to 0.8 x Nyquist, >= 65 dB rejection from
1.05 x the new Nyquist (92 dB, the int16 floor, further out), 0.7-4 ms delay, 12-18 us per frame. soxr HQ/VHQ
filter as well (87 dB) for 3-8 us but hold output back in blocks: 21-87 ms on average, up to 152 ms, far over
the uplink's 5 ms and barge-in budgets.
"""

from __future__ import annotations

import av
import numpy as np

# libswresample filter length in taps at the lower of the two rates. Downsampling, its default (32) lets tones
# just above the new Nyquist alias at -22 dB; 64 gives >= 65 dB there for 1 ms more delay. Upsampling, 32
# already rejects images by 92 dB (the int16 floor) at half the delay of 64 (tests/bench/resampler_quality.py).
DOWNSAMPLING_TAPS = 64
UPSAMPLING_TAPS = 32


# Every conversion the gateway runs, as (in_rate, out_rate, in_channels): the caller's decoded audio to Live's
# 16 kHz (Opus 48 kHz stereo, G.711 8 kHz, G.722 16 kHz), Live's 24 kHz to the rate of each codec's encoder
# (G.711 8 kHz, G.722 16 kHz; Opus is encoded from 24 kHz as it is), and the emulator's 16 kHz to 24 kHz.
CONVERSIONS = (
    (48000, 16000, 2),
    (8000, 16000, 1),
    (16000, 16000, 1),
    (24000, 8000, 1),
    (24000, 16000, 1),
    (16000, 24000, 1),
)


def filter_taps(in_rate: int, out_rate: int) -> int:
    return UPSAMPLING_TAPS if out_rate > in_rate else DOWNSAMPLING_TAPS

_EMPTY = np.zeros(0, dtype=np.int16)


class StreamResampler:
    """int16 in (mono, or interleaved channels that are averaged to mono), int16 mono out at another rate.

    Keeps the filter state across calls, so audio cut into chunks of any size converts without clicks at
    the boundaries. Output lags input by `delay_s`; `flush()` returns that last stretch at the end of a stream.
    """

    def __init__(self, in_rate: int, out_rate: int, in_channels: int = 1) -> None:
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, not {in_channels}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.in_channels = in_channels
        self._converts = in_rate != out_rate
        # libswresample delays by half its filter, counted at the lower rate.
        self._taps = filter_taps(in_rate, out_rate)
        self.delay_s = self._taps / 2 / min(in_rate, out_rate) if self._converts else 0.0
        self._resampler = self._new_resampler()

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Convert the next stretch of input; returns whatever output is ready (possibly nothing)."""
        mono = downmix(samples, self.in_channels)
        if self._resampler is None or mono.size == 0:
            return mono
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.in_rate
        return _join(self._resampler.resample(frame))

    def process_frame(self, frame: av.AudioFrame) -> np.ndarray:
        """`process` for a decoded frame (packed s16, in_rate, in_channels), converted as it is: libswresample
        averages the channels itself, with no array made on the way in. Use one of the two per stream."""
        if self._resampler is None:
            return downmix(frame.to_ndarray().reshape(-1), self.in_channels)
        frame.pts = None  # timing is the caller's business (gaps are filled with silence frames)
        return _join(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """Return the output still inside the filter (the last `delay_s` of the stream) and start afresh."""
        if self._resampler is None:
            return _EMPTY
        tail = _join(self._resampler.resample(None))
        self.reset()
        return tail

    def reset(self) -> None:
        """Forget the filter state (after a flush of the playout buffer or a break in the input)."""
        self._resampler = self._new_resampler()

    def _new_resampler(self) -> av.AudioResampler | None:
        if not self._converts:
            return None
        return av.AudioResampler(
            format="s16", layout="mono", rate=self.out_rate, options={"filter_size": str(self._taps)}
        )


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Convert a whole int16 mono clip at once, the filter's tail included."""
    converter = StreamResampler(in_rate, out_rate)
    return np.concatenate((converter.process(samples), converter.flush()))


def silence_like(frame: av.AudioFrame, samples: int) -> av.AudioFrame:
    """A frame of digital silence in the format, layout and rate of `frame`."""
    silent = av.AudioFrame.from_ndarray(
        np.zeros((1, samples * len(frame.layout.channels)), dtype=np.int16), format="s16", layout=frame.layout.name
    )
    silent.sample_rate = frame.sample_rate
    return silent


def downmix(samples: np.ndarray, channels: int) -> np.ndarray:
    """Average interleaved int16 channels to mono (mono input is returned as is)."""
    if channels == 1:
        return samples
    frames = samples.reshape(-1, channels)
    mixed = frames[:, 0].astype(np.int32)
    for channel in range(1, channels):  # adding columns is 4x faster than sum(axis=1) over short rows
        mixed += frames[:, channel]
    return (mixed // channels).astype(np.int16)


def _join(frames: list[av.AudioFrame]) -> np.ndarray:
    if not frames:
        return _EMPTY
    if len(frames) == 1:
        return frames[0].to_ndarray().reshape(-1)
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])
