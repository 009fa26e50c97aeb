"""The playout buffer: reply audio from Live goes in at any pace, exactly one frame comes out per pull.

Pure logic: no I/O, no clock (every call is given `now`, monotonic seconds), so it is tested with plain arrays.

Adaptive prebuffer. A reply's timeline is anchored at its first chunk (t0); a later chunk's lateness is
(arrival - t0) - (audio pushed before it since the anchor). If playback starts at t0 + P, every chunk up to
P - margin late arrives in time; the margin is one frame plus fade_ms (a pull takes a whole frame and keeps
fade_ms in reserve) plus UNSEEN_JITTER_MS. So the target P is the worst lateness of this and the last few
replies plus the margin, clamped to [min_prebuffer_ms, max_prebuffer_ms], and a reply starts at t0 + P, to the
sample (mid-frame if need be). P is a wait, not an amount of audio: under real-time delivery a big first chunk
must not start at once. Until the first reply has finished, delivery is assumed to be on time (lateness 0).
Bursts faster than real time have negative lateness and settle at the minimum; stalls raise P. After an
underrun the timeline is anchored again at the next chunk and playback resumes P after it.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from gateway.stats import Window

logger = logging.getLogger(__name__)

JITTER_MEMORY_REPLIES = 5  # replies whose worst lateness still counts towards the prebuffer target
UNSEEN_JITTER_MS = 5  # margin for lateness a little worse than the recent worst; 0 underruns more often
MAX_PENDING_MARKS = 4096  # latency marks of queued pushes; beyond this the oldest go unmeasured


class PlayoutState(StrEnum):
    IDLE = "idle"  # no reply in progress
    BUFFERING = "buffering"  # a reply waits for its prebuffer: at its start, or after an underrun
    PLAYING = "playing"


@dataclass(frozen=True)
class _Anchor:
    at: float  # arrival of the chunk the timeline is anchored at
    pushed: int  # reply samples pushed before that chunk
    index: int  # absolute buffer index of that chunk's first sample


@dataclass
class _Reply:
    pushed: int = 0  # samples pushed so far (including any dropped by an overflow)
    anchor: _Anchor | None = None
    reanchor: bool = False  # after an underrun: anchor again at the next chunk (the stall is over then)
    worst_lateness_s: float | None = None  # None until a chunk after the anchor arrived
    ended: bool = False
    start_unmarked: bool = True  # its first push still has to be marked as the reply's start
    overflow_warned: bool = False


def _ramp(length: int, rising: bool) -> np.ndarray:
    """Linear fade weights that never reach 0 or 1, so neither end makes a step larger than 1/(length+1)."""
    weights = np.arange(1, length + 1, dtype=np.float32) / (length + 1)
    return weights if rising else weights[::-1]


class PlayoutBuffer:
    """Bounded queue of int16 mono samples at the output rate, with prebuffering, fades and latency marks."""

    def __init__(
        self,
        sample_rate: int,
        frame_samples: int,
        *,
        min_prebuffer_ms: float = 20,
        max_prebuffer_ms: float = 400,
        capacity_s: float = 120,
        fade_ms: float = 5,
        call_id: str = "",
    ) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.call_id = call_id
        self._fade_samples = max(1, round(fade_ms * sample_rate / 1000))
        if self._fade_samples > frame_samples:
            raise ValueError(f"fade_ms={fade_ms} is longer than a frame")
        self._min_prebuffer_s = min_prebuffer_ms / 1000
        self._max_prebuffer_s = max_prebuffer_ms / 1000
        self._margin_s = (frame_samples + self._fade_samples) / sample_rate + UNSEEN_JITTER_MS / 1000
        self._capacity_samples = int(capacity_s * sample_rate)

        self._chunks: deque[np.ndarray] = deque()
        self._head = 0  # samples of _chunks[0] already played
        self._queued = 0
        self._played = 0  # absolute index of the next sample to play
        # Latency marks, one per push: (index of its first sample, pushed at, whether it starts a reply).
        self._marks: deque[tuple[int, float, bool]] = deque(maxlen=MAX_PENDING_MARKS)

        self._state = PlayoutState.IDLE
        self._reply: _Reply | None = None
        self._lateness_memory: deque[float] = deque(maxlen=JITTER_MEMORY_REPLIES)
        self._in_gap = False  # silent inside a reply after an underrun
        self._fade_in_next = False  # the next emitted audio resumes after an underrun
        self._flush_tail: np.ndarray | None = None  # faded-out audio the next frame carries after a flush

        self.replies = 0
        self.underruns = 0
        self.flushes = 0
        self._underrun_samples = 0
        self._overflow_samples = 0
        self._discarded_samples = 0
        self.downlink_latency_ms = Window()  # per push: when its first sample plays - when it was pushed
        self.start_latency_ms = Window()  # per reply: when its first sample plays - its first push

    @property
    def playing(self) -> bool:
        """Reply audio is being emitted now."""
        return self._state is PlayoutState.PLAYING

    @property
    def idle(self) -> bool:
        """Nothing queued and no reply in progress."""
        return self._reply is None

    @property
    def underrun_ms(self) -> float:
        """Silence inside replies, after underruns, in total."""
        return 1000 * self._underrun_samples / self.sample_rate

    @property
    def overflow_ms(self) -> float:
        """Reply audio dropped because the buffer was full, in total."""
        return 1000 * self._overflow_samples / self.sample_rate

    @property
    def prebuffer_ms(self) -> float:
        """The current prebuffer target: how long a reply waits after its first chunk before it plays."""
        return 1000 * self._target_s()

    def push(self, samples: np.ndarray, now: float) -> None:
        """Queue reply audio (int16 mono at the output rate); starts a reply if none is in progress."""
        if samples.size == 0:
            return
        if self._reply is None or self._reply.ended:
            self._begin_reply()
        reply = self._reply
        if reply.anchor is not None:
            lateness_s = (now - reply.anchor.at) - (reply.pushed - reply.anchor.pushed) / self.sample_rate
            worst = reply.worst_lateness_s
            reply.worst_lateness_s = lateness_s if worst is None else max(worst, lateness_s)
        if reply.anchor is None or reply.reanchor:
            reply.anchor = _Anchor(now, reply.pushed, self._played + self._queued)
            reply.reanchor = False
        reply.pushed += samples.size

        accepted = min(samples.size, self._capacity_samples - self._queued)
        if accepted < samples.size:
            self._overflow(samples.size - accepted, reply)
        if accepted == 0:
            return
        self._marks.append((self._played + self._queued, now, reply.start_unmarked))
        reply.start_unmarked = False
        self._chunks.append(np.array(samples[:accepted], dtype=np.int16))
        self._queued += accepted

    def end_reply(self, now: float) -> None:
        """No more audio will come for the current reply: what is queued plays out without waiting.

        `now` is accepted so that every event carries its time; the end of a reply needs no timing.
        """
        if self._reply is not None:
            self._reply.ended = True

    def flush(self) -> int:
        """Interruption: discard everything queued and return how many samples that was.

        The next frame carries a fade_ms fade-out of the audio that would have played, then silence; nothing
        pushed before the flush plays after that.
        """
        discarded = self._queued
        if self._state is PlayoutState.PLAYING and self._queued:
            tail = np.zeros(min(self._queued, self._fade_samples), dtype=np.int16)
            self._read_into(tail)
            self._flush_tail = (tail * _ramp(tail.size, rising=False)).astype(np.int16)
        self._chunks.clear()
        self._head = 0
        self._played += self._queued
        self._queued = 0
        self._marks.clear()
        self.flushes += 1
        self._discarded_samples += discarded
        self._finish_reply()
        return discarded

    def pull(self, now: float) -> np.ndarray:
        """Exactly frame_samples int16 samples: reply audio, or silence when idle or buffering."""
        frame = np.zeros(self.frame_samples, dtype=np.int16)
        if self._flush_tail is not None:
            frame[: self._flush_tail.size] = self._flush_tail
            self._flush_tail = None
            return frame
        offset = 0
        if self._state is PlayoutState.BUFFERING:
            start_at = self._start_at(now)  # playback starts to the sample, possibly inside this frame
            offset = None if start_at is None else max(0, round((start_at - now) * self.sample_rate))
            if offset is None or offset >= self.frame_samples:
                if self._in_gap:
                    self._underrun_samples += self.frame_samples
                return frame
            if self._in_gap:
                self._underrun_samples += offset
            self._state = PlayoutState.PLAYING
            self._in_gap = False
        if self._state is PlayoutState.PLAYING:
            self._play_into(frame, offset, now)
        return frame

    def stats(self) -> dict:
        ms_per_sample = 1000 / self.sample_rate
        return {
            "state": self._state.value,
            "prebuffer_ms": round(self.prebuffer_ms, 1),
            "buffered_ms": self._queued * ms_per_sample,
            "replies": self.replies,
            "underruns": self.underruns,
            "underrun_ms": self.underrun_ms,
            "overflow_ms": self.overflow_ms,
            "flushes": self.flushes,
            "discarded_ms": self._discarded_samples * ms_per_sample,
            "downlink_latency_ms": self.downlink_latency_ms.summary(),
            "start_latency_ms": self.start_latency_ms.summary(),
        }

    def _begin_reply(self) -> None:
        # A reply that ended but still plays out is done as far as timing goes; the new one plays straight after.
        self._finish_reply()
        self._reply = _Reply()
        self.replies += 1
        if self._state is PlayoutState.IDLE:
            self._state = PlayoutState.BUFFERING

    def _finish_reply(self) -> None:
        """Remember the reply's worst lateness; if nothing of it is left to play, go idle."""
        if self._reply is not None and self._reply.worst_lateness_s is not None:
            self._lateness_memory.append(self._reply.worst_lateness_s)
        self._reply = None
        if self._queued == 0:
            self._state = PlayoutState.IDLE
            self._in_gap = False
            self._fade_in_next = False

    def _target_s(self) -> float:
        worst = max(self._lateness_memory, default=0.0)  # no finished reply yet: assume on-time delivery
        if self._reply is not None and self._reply.worst_lateness_s is not None:
            worst = max(worst, self._reply.worst_lateness_s)
        return min(max(worst + self._margin_s, self._min_prebuffer_s), self._max_prebuffer_s)

    def _start_at(self, now: float) -> float | None:
        """When buffered playback may (re)start, or None while it cannot."""
        reply = self._reply
        if reply is None or reply.ended:
            return now
        if reply.anchor is None or reply.reanchor or self._queued < self.frame_samples + self._fade_samples:
            return None
        # Audio queued ahead of the anchor chunk plays first and so counts towards the wait.
        ahead_s = (reply.anchor.index - self._played) / self.sample_rate
        return reply.anchor.at + self._target_s() - ahead_s

    def _play_into(self, frame: np.ndarray, offset: int, now: float) -> None:
        """Fill frame[offset:] from the queue. While the reply goes on, fade_ms of audio stays queued as a
        reserve, so an underrun can always fade out the end of real audio instead of cutting it."""
        space = self.frame_samples - offset
        reply = self._reply
        going_on = reply is not None and not reply.ended  # more audio may come: keep the fade reserve
        underrun = going_on and self._queued - self._fade_samples < space
        count = min(self._queued, space)
        audio = frame[offset : offset + count]
        self._record_latency(count, now + offset / self.sample_rate)
        self._read_into(audio)

        if self._fade_in_next and count:
            head = min(count, self._fade_samples)
            audio[:head] = audio[:head] * _ramp(head, rising=True)
            self._fade_in_next = False
        if underrun:
            tail = min(count, self._fade_samples)
            audio[count - tail :] = audio[count - tail :] * _ramp(tail, rising=False)
            self.underruns += 1
            self._underrun_samples += space - count
            self._state = PlayoutState.BUFFERING
            self._in_gap = True
            self._fade_in_next = True
            reply.reanchor = True
        elif self._queued == 0 and not going_on:
            self._finish_reply()

    def _read_into(self, out: np.ndarray) -> None:
        """Move out.size samples from the head of the queue into out."""
        filled = 0
        while filled < out.size:
            chunk = self._chunks[0]
            take = min(out.size - filled, chunk.size - self._head)
            out[filled : filled + take] = chunk[self._head : self._head + take]
            filled += take
            self._head += take
            if self._head == chunk.size:
                self._chunks.popleft()
                self._head = 0
        self._queued -= out.size
        self._played += out.size

    def _record_latency(self, count: int, first_sample_at: float) -> None:
        """Latency marks of the pushes whose first sample is among the next `count`, played from first_sample_at."""
        end = self._played + count
        while self._marks and self._marks[0][0] < end:
            index, pushed_at, starts_reply = self._marks.popleft()
            latency_ms = 1000 * (first_sample_at + (index - self._played) / self.sample_rate - pushed_at)
            self.downlink_latency_ms.add(latency_ms)
            if starts_reply:
                self.start_latency_ms.add(latency_ms)

    def _overflow(self, dropped: int, reply: _Reply) -> None:
        self._overflow_samples += dropped
        if not reply.overflow_warned:
            reply.overflow_warned = True
            logger.warning(
                "call %s: playout buffer full (%.0f s), dropping the newest reply audio", self.call_id,
                self._capacity_samples / self.sample_rate,
            )
