"""Opus encoding with libopus itself, straight from the downlink's 24 kHz mono.

aiortc's Opus encoder takes 48 kHz stereo: it converts every frame to that in a filter graph, and PyAV passes
it through another to cut it to the codec's frame size, before libopus sees it. libopus itself takes 8, 12,
16, 24 or 48 kHz mono, and its packets are the same whatever the input rate (the RTP clock stays 48 kHz), so
the downlink can hand it Live's 24 kHz as they are, with no resampler at all. PyAV does not expose libopus,
so its public C API is called through ctypes, on the copy PyAV has loaded (or the system's).

Settings, chosen by measurement (mono speech, 20 ms frames; similarity = waveform correlation after a decode,
as tests/bench/replies.py measures it): RESTRICTED_LOWDELAY (CELT only) at 64 kbit/s gives 0.996 at about a
third of the CPU of aiortc's path (VOIP mode, 96 kbit/s stereo: 0.985), with 4 ms less codec delay. VOIP mode
runs SILK, which is costlier and does not keep the waveform; its advantage, in-band FEC, needs `useinbandfec`,
which aiortc never negotiates.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from gateway.media.native import loaded_library

RTP_CLOCK = 48_000  # Opus's RTP clock rate, whatever the input rate (RFC 7587)
INPUT_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)
BITRATE = 64_000
COMPLEXITY = 10  # libopus's highest, as FFmpeg (and so aiortc) sets it
MAX_PACKET_BYTES = 1500  # at 64 kbit/s a 20 ms packet is about 160 bytes

_APPLICATION_RESTRICTED_LOWDELAY = 2051
_SET_BITRATE = 4002
_SET_COMPLEXITY = 4010
_OK = 0


class OpusError(RuntimeError):
    pass


@functools.cache
def libopus() -> ctypes.CDLL:
    """libopus as PyAV loaded it, or the system's; raises OpusError if there is none."""
    path = loaded_library("libopus") or ctypes.util.find_library("opus")
    if path is None:
        raise OpusError("libopus is not loaded by PyAV and not installed")
    lib = ctypes.CDLL(path)
    lib.opus_encoder_get_size.argtypes = [ctypes.c_int]
    lib.opus_encoder_get_size.restype = ctypes.c_int
    lib.opus_encoder_init.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int, ctypes.c_int]
    lib.opus_encoder_init.restype = ctypes.c_int
    lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int32]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encoder_ctl.restype = ctypes.c_int  # variadic: every argument is passed as a c_int32
    lib.opus_strerror.argtypes = [ctypes.c_int]
    lib.opus_strerror.restype = ctypes.c_char_p
    return lib


class OpusEncoder:
    """20 ms frames of int16 mono at `rate` in, one Opus packet each out, with its 48 kHz RTP timestamp.

    The encoder's state lives in a buffer this object owns (opus_encoder_init), so nothing needs freeing.
    """

    def __init__(self, rate: int) -> None:
        if rate not in INPUT_RATES:
            raise ValueError(f"libopus takes {', '.join(map(str, INPUT_RATES))} Hz, not {rate}")
        self.rate = rate
        self.frame_samples = rate // 50
        self._lib = lib = libopus()
        self._state = ctypes.create_string_buffer(lib.opus_encoder_get_size(1))
        self._check(lib.opus_encoder_init(self._state, rate, 1, _APPLICATION_RESTRICTED_LOWDELAY), "init")
        self._check(lib.opus_encoder_ctl(self._state, _SET_BITRATE, ctypes.c_int32(BITRATE)), "set bitrate")
        self._check(lib.opus_encoder_ctl(self._state, _SET_COMPLEXITY, ctypes.c_int32(COMPLEXITY)), "set complexity")
        self._out = ctypes.create_string_buffer(MAX_PACKET_BYTES)

    def encode(self, samples: np.ndarray, pts: int) -> list[tuple[bytes, int]]:
        """One frame (int16 mono, frame_samples long) whose first sample is number `pts` at `rate`."""
        if samples.dtype != np.int16 or samples.shape != (self.frame_samples,):
            raise ValueError(f"expected int16 ({self.frame_samples},), got {samples.dtype} {samples.shape}")
        samples = np.ascontiguousarray(samples)
        size = self._lib.opus_encode(self._state, samples.ctypes.data, self.frame_samples, self._out, MAX_PACKET_BYTES)
        self._check(size, "encode")
        return [(ctypes.string_at(self._out, size), pts * (RTP_CLOCK // self.rate))]

    def _check(self, result: int, what: str) -> None:
        if result < _OK:
            raise OpusError(f"libopus {what}: {self._lib.opus_strerror(result).decode()}")
