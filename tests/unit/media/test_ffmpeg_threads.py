"""Audio conversion and encoding start no FFmpeg threads once the gateway has set FFmpeg to one thread."""

from __future__ import annotations

import ctypes
import fractions
import os

import av
import numpy as np
from aiortc.codecs import CODECS, get_encoder

from gateway.media.ffmpeg_threads import use_one_ffmpeg_thread
from gateway.media.native import loaded_library
from gateway.media.resample import StreamResampler


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def convert_and_encode() -> list[object]:
    """What a call does with FFmpeg: resamplers both ways, and an encoder with a fixed frame size."""
    kept: list[object] = []
    for in_rate, out_rate, channels in ((48000, 16000, 2), (24000, 16000, 1)):
        resampler = StreamResampler(in_rate, out_rate, channels)
        resampler.process(np.zeros(in_rate // 50 * channels, dtype=np.int16))
        kept.append(resampler)
    for name, rate in (("g722", 16000),):
        encoder = get_encoder(next(c for c in CODECS["audio"] if c.name.lower() == name))
        frame = av.AudioFrame.from_ndarray(np.zeros((1, rate // 50), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, fractions.Fraction(1, rate)
        encoder.encode(frame)
        kept.append(encoder)
    return kept


def test_with_one_ffmpeg_thread_a_call_s_converters_and_encoders_start_no_threads() -> None:
    path = loaded_library("libavutil")
    assert path is not None
    ctypes.CDLL(path).av_cpu_force_count(4)  # as on a 4-CPU machine, whatever this one has
    before = threads()
    kept = convert_and_encode()
    assert threads() >= before + 4, "FFmpeg did not start its pools: this test shows nothing"
    del kept

    assert use_one_ffmpeg_thread()
    before = threads()
    kept = convert_and_encode()
    assert threads() <= before
    del kept
