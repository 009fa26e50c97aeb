"""A bare aiortc parrot: the floor the gateway is measured against in `make bench`.

    python tests/bench/parrot_server.py --port PORT

What any aiortc voice server pays for, and nothing more: ICE, DTLS, SRTP both ways, aiortc's Opus decode (its
thread) and encode (aiortc's default path: frames returned by the track, encoded in its executor), an energy
VAD on the caller's audio, and a paced 20 ms outbound track that replays each utterance at 48 kHz when it ends
(silence otherwise). Speech while a reply plays cuts it (barge-in). No Live hop, no resampling, no journal, no
playout buffer. It tells the caller what the benchmark's scenarios wait for on the `events` channel (`ready`,
`state`, `interrupted`, `turn_complete`), so the same callers drive it and the gateway. The VAD uses the Live
API emulator's default settings, so a reply starts as long after the caller stops as the gateway's does.
Signalling: bare_server.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import sys
import time
from collections import deque
from pathlib import Path

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: make `tests.bench` importable

from gateway.client.caller import Microphone  # noqa: E402
from gateway.media.vad import EnergyVad, VadConfig, VadEventKind  # noqa: E402
from tests.bench.bare_server import serve  # noqa: E402

RATE = 48_000
FRAME = RATE // 50  # 20 ms
LOOKBACK = RATE  # caller audio kept while nobody speaks: a speech start is dated up to 40 ms back
EMULATOR_VAD = VadConfig(start_threshold_dbfs=-50.0, end_threshold_dbfs=-45.0, start_ms=40, end_ms=500)


class ReplyTrack(MediaStreamTrack):
    """20 ms frames at 48 kHz mono, paced from a monotonic start: the queued reply, or silence."""

    kind = "audio"

    def __init__(self, parrot: Parrot) -> None:
        super().__init__()
        self._parrot = parrot
        self._start: float | None = None
        self._frames = 0
        self._time_base = fractions.Fraction(1, RATE)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None or now - (self._start + self._frames / 50) > 0.02:
            self._start = now - self._frames / 50  # first frame, or late by more than a frame: restart the schedule
        await asyncio.sleep(max(0.0, self._start + self._frames / 50 - now))
        frame = av.AudioFrame.from_ndarray(self._parrot.next_frame().reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._frames * FRAME
        frame.time_base = self._time_base
        self._frames += 1
        return frame


class Parrot:
    """One call: the caller's speech in, the same speech back once it ends."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self._vad = EnergyVad(RATE, EMULATOR_VAD)
        self._heard: deque[np.ndarray] = deque()  # caller audio since `_heard_from`
        self._heard_from = 0  # absolute sample index of the first sample in `_heard`
        self._heard_until = 0
        self._speech_from: int | None = None
        self._reply = Microphone(RATE)  # the queue of replies, played out frame by frame like a microphone
        self._playing = False
        self._channel: RTCDataChannel | None = None
        self._task: asyncio.Task[None] | None = None
        pc.on("track", lambda track: self._on_track(pc, track))
        pc.on("datachannel", self._on_channel)

    def next_frame(self) -> np.ndarray:
        """The next 20 ms of the reply, or silence; tells the caller when a reply starts and ends."""
        replying = not self._reply.idle
        if replying and not self._playing:
            self._playing = True
            self._send({"type": "state", "state": "speaking"})
        elif not replying and self._playing:
            self._end_turn()
        return self._reply.pull(0.0)

    def _on_track(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._task is None:
            pc.addTrack(ReplyTrack(self))
            self._task = asyncio.get_running_loop().create_task(self._listen(track))

    def _on_channel(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        self._send({"type": "ready"})

    async def _listen(self, track: MediaStreamTrack) -> None:
        """Drain the caller's track until it ends (aiortc queues frames without bound)."""
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                samples = frame.to_ndarray().reshape(-1)[:: len(frame.layout.channels)]  # aiortc decodes to stereo
                self._hear(np.ascontiguousarray(samples))

    def _hear(self, samples: np.ndarray) -> None:
        self._heard.append(samples)
        self._heard_until += samples.size
        for event in self._vad.process(samples):
            if event.kind is VadEventKind.START:
                self._speech_from = event.sample
                if self._playing:
                    self._barge_in()
            elif self._speech_from is not None:
                self._reply.say(self._utterance(self._speech_from, event.sample), RATE)
                self._speech_from = None
        keep_from = self._heard_until - LOOKBACK if self._speech_from is None else self._speech_from
        while self._heard and self._heard_from + self._heard[0].size <= keep_from:
            self._heard_from += self._heard.popleft().size

    def _utterance(self, start: int, end: int) -> np.ndarray:
        audio = np.concatenate(self._heard)
        return audio[max(0, start - self._heard_from) : max(0, end - self._heard_from)]

    def _barge_in(self) -> None:
        self._reply = Microphone(RATE)
        self._send({"type": "interrupted", "source": "local"})
        self._end_turn()

    def _end_turn(self) -> None:
        self._playing = False
        self._send({"type": "turn_complete"})
        self._send({"type": "state", "state": "listening"})

    def _send(self, event: dict) -> None:
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(json.dumps(event))


if __name__ == "__main__":
    serve(__doc__, Parrot)
