"""EncodingTrack: frames in, packets of the negotiated codec out, decodable by aiortc, never raising mid-call."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.codecs import CODECS, get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from gateway.media.encoding import EncodingTrack

RATES = {"opus": 48_000, "pcmu": 8_000, "pcma": 8_000, "g722": 16_000}


class FrameTrack(MediaStreamTrack):
    """Hands out prepared frames, then ends."""

    kind = "audio"

    def __init__(self, frames: list[av.AudioFrame]) -> None:
        super().__init__()
        self._frames = list(frames)

    async def recv(self) -> av.AudioFrame:
        if not self._frames or self.readyState != "live":
            self.stop()
            raise MediaStreamError
        return self._frames.pop(0)


def tone_frames(rate: int, count: int, hz: float = 440.0) -> tuple[list[av.AudioFrame], np.ndarray]:
    n = rate // 50
    signal = (8000 * np.sin(2 * np.pi * hz * np.arange(n * count) / rate)).astype(np.int16)
    frames = []
    for i in range(count):
        frame = av.AudioFrame.from_ndarray(signal[i * n : (i + 1) * n].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, i * n, fractions.Fraction(1, rate)
        frames.append(frame)
    return frames, signal


def decode(codec: str, packets: list[av.Packet]) -> np.ndarray:
    params = next(c for c in CODECS["audio"] if c.name.lower() == codec)
    decoder = get_decoder(params)
    out = []
    for packet in packets:
        for frame in decoder.decode(JitterFrame(data=bytes(packet), timestamp=int(packet.pts))):
            samples = frame.to_ndarray().reshape(-1)
            out.append(samples[:: len(frame.layout.channels)])
    return np.concatenate(out)


@pytest.mark.parametrize("codec", ["opus", "pcmu", "pcma", "g722"])
async def test_packets_decode_back_to_the_frames(codec: str) -> None:
    rate = RATES[codec]
    frames, signal = tone_frames(rate, 25)
    track = EncodingTrack(FrameTrack(frames), codec)
    packets = [await track.recv() for _ in range(25)]
    step = packets[1].pts - packets[0].pts
    assert [p.pts for p in packets] == [packets[0].pts + i * step for i in range(25)], "RTP timestamps must advance evenly"
    decoded = decode(codec, packets).astype(np.float64)
    steady = slice(len(decoded) // 4, len(decoded) - len(decoded) // 4)  # past the codecs' start-up
    expected = signal.astype(np.float64)
    best = max(
        np.dot(decoded[steady], np.roll(expected, lag)[steady])
        / (np.linalg.norm(decoded[steady]) * np.linalg.norm(np.roll(expected, lag)[steady]))
        for lag in range(0, rate // 100)
    )
    assert best > 0.95, f"{codec}: decoded audio correlates {best:.3f} with what was encoded"


async def test_the_track_ends_with_its_source_and_stopping_it_stops_the_source() -> None:
    source = FrameTrack(tone_frames(8_000, 1)[0])
    track = EncodingTrack(source, "pcmu")
    await track.recv()
    with pytest.raises(MediaStreamError):
        await track.recv()
    other = FrameTrack(tone_frames(8_000, 5)[0])
    EncodingTrack(other, "pcmu").stop()
    assert other.readyState == "ended"


async def test_a_frame_that_cannot_be_encoded_is_skipped_without_raising() -> None:
    good, _ = tone_frames(8_000, 2)
    bad = av.AudioFrame.from_ndarray(np.zeros((1, 160), dtype=np.float32), format="flt", layout="mono")
    bad.sample_rate = 8_000
    track = EncodingTrack(FrameTrack([good[0], bad, good[1]]), "pcmu")
    first, second = await track.recv(), await track.recv()
    assert track.encode_errors == 1
    assert (len(bytes(first)), len(bytes(second))) == (160, 160)
