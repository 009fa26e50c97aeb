"""Keep FFmpeg from starting thread pools: a voice gateway has nothing for them to do.

FFmpeg sizes its pools by the CPU count. Every filter graph starts one (idle) thread per CPU, and audio
conversion runs on filter graphs: PyAV's AudioResampler (our resamplers), the one inside each of aiortc's
encoders, and the one PyAV's encoder adds for codecs with a fixed frame size (Opus, G.722). That measured 6
threads a call on a 2-CPU machine, which would be about 200 a call on a 64-CPU host, where containers cap
threads (pids.max). A 20 ms audio frame has nothing to split across threads.

Telling libavutil there is one CPU (`av_cpu_force_count(1)`) makes every pool single-threaded, which starts no
thread at all. CPU feature detection (SIMD) is separate and unaffected. PyAV does not expose the call, so it is
made through ctypes on the libavutil that PyAV has loaded.
"""

from __future__ import annotations

import ctypes
import logging

from gateway.media.native import loaded_library

log = logging.getLogger(__name__)


def use_one_ffmpeg_thread() -> bool:
    """Make FFmpeg's automatic thread counts 1 for this process. False (and a warning) if it could not."""
    path = loaded_library("libavutil")
    if path is None:
        log.warning("libavutil not found in /proc/self/maps: FFmpeg may start a thread pool per audio converter")
        return False
    libavutil = ctypes.CDLL(path)
    libavutil.av_cpu_force_count(ctypes.c_int(1))
    libavutil.av_cpu_count.restype = ctypes.c_int
    return libavutil.av_cpu_count() == 1

