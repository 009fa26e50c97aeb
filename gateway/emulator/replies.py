"""Reply audio (the parrot and the tone) and when each chunk of it goes on the wire.

Pure functions on arrays and a random generator, no I/O: the session sends what these plan.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from gateway.media.resample import resample

from .config import TimingMode

INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
SAMPLES_PER_MS = OUTPUT_RATE // 1000
CHUNK_MS = (20, 200)  # reply chunk durations, uniform, whole milliseconds
BURST_FIRST_DELAY_S = (0.05, 0.15)
BURST_SPEED = (0.05, 0.5)  # a burst chunk follows the previous after this fraction of its duration
STALL_GAPS = (1, 3)
STALL_GAP_S = (0.3, 1.5)
TONE_MS = 300
TONE_HZ = 440.0
TONE_DBFS = -12.0
TONE_FADE_MS = 5


def parrot(utterance16k: np.ndarray) -> np.ndarray:
    """The utterance itself at 24 kHz, otherwise unchanged (int16 in, int16 out)."""
    if utterance16k.size == 0:
        return np.zeros(0, dtype=np.int16)
    return resample(utterance16k, INPUT_RATE, OUTPUT_RATE)


def tone() -> np.ndarray:
    """The reply to typed text: 300 ms of 440 Hz at -12 dBFS with 5 ms fades, 24 kHz int16."""
    n = OUTPUT_RATE * TONE_MS // 1000
    t = np.arange(n) / OUTPUT_RATE
    wave = np.sin(2 * np.pi * TONE_HZ * t) * (10 ** (TONE_DBFS / 20))
    fade = OUTPUT_RATE * TONE_FADE_MS // 1000
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
    wave[:fade] *= ramp
    wave[-fade:] *= ramp[::-1]
    return np.round(wave * 32767).astype(np.int16)


@dataclass(frozen=True)
class ChunkTiming:
    start: int  # first sample (24 kHz) of the chunk
    end: int  # one past its last sample
    send_at_s: float  # when it goes on the wire, seconds after the reply started

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / OUTPUT_RATE


def plan_reply(n_samples: int, mode: TimingMode, rng: random.Random) -> list[ChunkTiming]:
    """Cut `n_samples` of 24 kHz audio into 20-200 ms chunks and schedule them according to `mode`."""
    bounds = [0]
    while bounds[-1] < n_samples:
        bounds.append(min(n_samples, bounds[-1] + rng.randint(*CHUNK_MS) * SAMPLES_PER_MS))
    spans = list(zip(bounds, bounds[1:]))
    gaps: dict[int, float] = {}
    if mode == TimingMode.STALL and len(spans) > 1:
        count = min(rng.randint(*STALL_GAPS), len(spans) - 1)
        for index in rng.sample(range(1, len(spans)), count):
            gaps[index] = rng.uniform(*STALL_GAP_S)
    plan: list[ChunkTiming] = []
    at = rng.uniform(*BURST_FIRST_DELAY_S) if mode == TimingMode.BURST else 0.0
    for index, (start, end) in enumerate(spans):
        if index:
            previous = (spans[index - 1][1] - spans[index - 1][0]) / OUTPUT_RATE
            at += previous * rng.uniform(*BURST_SPEED) if mode == TimingMode.BURST else previous
        at += gaps.get(index, 0.0)
        plan.append(ChunkTiming(start, end, at))
    return plan


class PlaybackClock:
    """When a client playing the reply in real time would finish, playback starting at the first chunk.

    A chunk that arrives after the previous audio ran out starts playing on arrival (the player underran).
    """

    def __init__(self) -> None:
        self.ends_at: float | None = None

    def add(self, sent_at: float, duration_s: float) -> None:
        start = sent_at if self.ends_at is None else max(self.ends_at, sent_at)
        self.ends_at = start + duration_s
