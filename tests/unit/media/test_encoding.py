"""EncodingTrack: paced samples in, packets of the negotiated codec out, decodable by aiortc, never raising mid-call."""

from __future__ import annotations

import av
import numpy as np
import pytest
from aiortc.codecs import CODECS, get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from gateway.media.encoding import ENCODER_RATES, EncodingTrack
from gateway.media.track import PacedAudioTrack


class Prepared:
    """A frame source that hands out prepared frames of samples, then silence."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self._frames = list(frames)

    def pull(self, now: float) -> np.ndarray:
        return self._frames.pop(0)


def paced(clock, rate: int, frames: list[np.ndarray]) -> PacedAudioTrack:
    return PacedAudioTrack(Prepared(frames), rate, clock=clock, sleep=clock.sleep)


def tone_frames(rate: int, count: int, hz: float = 440.0) -> tuple[list[np.ndarray], np.ndarray]:
    n = rate // 50
    signal = (8000 * np.sin(2 * np.pi * hz * np.arange(n * count) / rate)).astype(np.int16)
    return [signal[i * n : (i + 1) * n] for i in range(count)], signal


def decode(codec: str, packets: list[av.Packet]) -> tuple[np.ndarray, int]:
    """The decoded audio, mono, and its rate."""
    params = next(c for c in CODECS["audio"] if c.name.lower() == codec)
    decoder = get_decoder(params)
    out, rate = [], 0
    for packet in packets:
        for frame in decoder.decode(JitterFrame(data=bytes(packet), timestamp=int(packet.pts))):
            samples = frame.to_ndarray().reshape(-1)
            out.append(samples[:: len(frame.layout.channels)])
            rate = frame.sample_rate
    return np.concatenate(out), rate


@pytest.mark.parametrize("codec", ["opus", "pcmu", "pcma", "g722"])
async def test_packets_decode_back_to_the_frames(clock, codec: str) -> None:
    rate = ENCODER_RATES[codec]
    frames, signal = tone_frames(rate, 25)
    track = EncodingTrack(paced(clock, rate, frames), codec)
    packets = [await track.recv() for _ in range(25)]
    step = packets[1].pts - packets[0].pts
    assert [p.pts for p in packets] == [packets[0].pts + i * step for i in range(25)], "RTP timestamps must advance evenly"
    decoded, decoded_rate = decode(codec, packets)
    decoded = decoded[:: decoded_rate // rate].astype(np.float64)  # Opus decodes to 48 kHz: pick the input's rate
    steady = slice(len(decoded) // 4, len(decoded) - len(decoded) // 4)  # past the codecs' start-up
    expected = signal.astype(np.float64)
    best = max(
        np.dot(decoded[steady], np.roll(expected, lag)[steady])
        / (np.linalg.norm(decoded[steady]) * np.linalg.norm(np.roll(expected, lag)[steady]))
        for lag in range(0, rate // 100)
    )
    assert best > 0.95, f"{codec}: decoded audio correlates {best:.3f} with what was encoded"


def test_a_track_at_another_rate_than_the_encoder_takes_is_refused(clock) -> None:
    with pytest.raises(ValueError, match="24000"):
        EncodingTrack(paced(clock, 48_000, []), "opus")


async def test_the_track_ends_with_its_source_and_stopping_it_stops_the_source(clock) -> None:
    source = paced(clock, 8_000, tone_frames(8_000, 1)[0])
    track = EncodingTrack(source, "pcmu")
    await track.recv()
    source.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()
    other = paced(clock, 8_000, tone_frames(8_000, 5)[0])
    EncodingTrack(other, "pcmu").stop()
    assert other.readyState == "ended"


@pytest.mark.parametrize("codec", ["opus", "pcmu"])
async def test_a_frame_that_cannot_be_encoded_is_skipped_without_raising(clock, codec: str) -> None:
    rate = ENCODER_RATES[codec]
    frames, _ = tone_frames(rate, 3)
    track = EncodingTrack(paced(clock, rate, frames), codec)

    def broken(samples: np.ndarray, pts: int) -> list[tuple[bytes, int]]:
        raise RuntimeError("the codec broke")

    track._encoder.encode = broken  # the first frame fails; a fresh encoder takes the ones after
    first, second = await track.recv(), await track.recv()
    assert track.encode_errors == 1
    clock_rate = next(c for c in CODECS["audio"] if c.name.lower() == codec).clockRate
    assert first.pts == clock_rate // 50, "the packet after the failure is the second frame's"
    assert second.pts == 2 * clock_rate // 50 and len(bytes(first)) > 0
