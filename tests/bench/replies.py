"""What a caller heard back, judged against what it said: each reply's similarity and onset.

A parrot (the emulator behind the gateway, or the bare parrot) sends each utterance back unchanged, so a clean
reply is the utterance itself, give or take two codec passes and the resampling. Similarity is the normalised
cross-correlation of the two waveforms at the best lag (1.0 = identical up to level): any gap, click, lost
frame or shift inside a reply breaks the alignment of everything after it and shows here. A reply is damaged
when its similarity falls more than DAMAGE_MARGIN below the one-call similarity of the same utterance on the
same server: how well a clean reply survives the codecs depends on the utterance (0.91-0.98 here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.client.caller import Caller
from gateway.media.resample import resample

RATE = 16_000  # the utterances are made at 16 kHz, and the Live path carries no more than that
# Compared at the caller's rate (48 kHz), not at 16 kHz: a reply lands on the 48 kHz grid at any sample, so at
# 16 kHz it is a third of a sample off two times in three, and an integer lag there costs a clean reply 0.02-0.03
# of similarity (measured: one utterance, one call, 0.957 or 0.980 by where its reply began).
SILENT_PEAK = 330  # -40 dBFS: a received sample louder than this is the reply
DAMAGE_MARGIN = 0.02
# A reply's last frames can arrive after the caller began its next clip (the server said the turn was over
# when it sent them); no reply to that next clip can start within this long of it beginning.
NEXT_CLIP_QUIET_S = 1.0


@dataclass(frozen=True)
class Reply:
    similarity: float  # 0.0 when nothing audible came back
    onset_ms: float | None  # the utterance's last sample at the caller -> the reply's first audible sample


def judge(caller: Caller, said: list[np.ndarray], first_clip: int = 0) -> list[Reply]:
    """One Reply per utterance in `said` (16 kHz), the caller's clips `first_clip`... in order.

    The reply to clip k is what arrived after clip k ended and up to NEXT_CLIP_QUIET_S after clip k+1 began
    (the scenario waits for each reply to end before it speaks again). CPU-heavy (FFTs of a few hundred
    thousand samples): run it in a thread, where NumPy leaves the callers' event loop free.
    """
    recording, starts = caller.recording, caller.mic.clip_starts
    arrivals = np.asarray(recording.arrivals)
    found = []
    for k, utterance in enumerate(said):
        clip = first_clip + k
        if clip >= len(starts):  # never played: the call broke down before
            found.append(Reply(0.0, None))
            continue
        said_until = starts[clip] + utterance.size / RATE
        heard_until = starts[clip + 1] + NEXT_CLIP_QUIET_S if clip + 1 < len(starts) else np.inf
        frames = np.flatnonzero((arrivals >= said_until) & (arrivals < heard_until))
        if frames.size == 0:
            found.append(Reply(0.0, None))
            continue
        audio = np.concatenate([recording.frames[i] for i in frames])
        found.append(Reply(similarity(resample(utterance, RATE, recording.rate), audio),
                           _onset_ms(recording, frames, said_until)))
    return found


def similarity(said: np.ndarray, heard: np.ndarray) -> float:
    """max over lags of <said, heard[lag:lag+n]> / (|said| |heard[lag:lag+n]|), n = len(said).

    Heard is extended with silence, so that a reply cut short is compared whole (its missing end as silence).
    """
    x = said.astype(np.float64)
    y = np.concatenate((heard.astype(np.float64), np.zeros(x.size)))
    size = 1 << int(np.ceil(np.log2(x.size + y.size)))
    products = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)[: y.size - x.size + 1]
    energy = np.concatenate(([0.0], np.cumsum(y * y)))
    window = energy[x.size :] - energy[: -x.size]  # heard's energy in each window of n samples
    norm = np.sqrt(np.maximum(window, 0.0)) * np.linalg.norm(x)
    valid = norm > 1e-9 * (norm.max() if norm.size else 0.0)
    return float(np.max(products[valid] / norm[valid])) if valid.any() else 0.0


def _onset_ms(recording, frames: np.ndarray, said_until: float) -> float | None:
    for index in frames:
        loud = np.flatnonzero(np.abs(recording.frames[index].astype(np.int32)) >= SILENT_PEAK)
        if loud.size:
            # A frame plays from its arrival: its sample i is heard i / rate later.
            return 1000 * (recording.arrivals[index] + loud[0] / recording.rate - said_until)
    return None


def one_call_similarity(heard: list[tuple[int, Reply]]) -> dict[int, float]:
    """Per utterance, the median similarity of its replies (heard with one call: the reference)."""
    by_utterance: dict[int, list[float]] = {}
    for utterance, reply in heard:
        by_utterance.setdefault(utterance, []).append(reply.similarity)
    return {utterance: float(np.median(values)) for utterance, values in by_utterance.items()}


def damaged(heard: list[tuple[int, Reply]], one_call: dict[int, float]) -> list[Reply]:
    """Replies more than DAMAGE_MARGIN below the one-call similarity of the same utterance (or, for an
    utterance one call never said, the median of them all); missing replies count as damaged."""
    fallback = float(np.median(list(one_call.values())))
    return [reply for utterance, reply in heard if reply.similarity < one_call.get(utterance, fallback) - DAMAGE_MARGIN]
