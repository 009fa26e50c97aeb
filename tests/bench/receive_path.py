"""Time aiortc's audio receive path in this process (the bench's callers): RTP packet in -> decoded frame out.

aiortc releases an audio frame only once the four packets after it have arrived (JitterBuffer(capacity=16,
prefetch=4) in rtcrtpreceiver.py), then decodes it in a thread. The gateway's uplink receiver runs the same
code, so the same delay sits in front of everything the gateway measures on the uplink; measured here, on the
callers, it explains most of the barge-in end-to-end time. `install()` wraps two aiortc methods of this process
only (one clock read and a dict entry per packet).
"""

from __future__ import annotations

import time
from typing import Any

from aiortc import rtcrtpreceiver

from gateway.stats import Window

MAX_PENDING = 500  # packets remembered per track until their frame comes out (lost or never decoded: dropped)

delay_ms = Window(20_000)
_arrivals: dict[int, dict[int, float]] = {}  # id(track) -> RTP timestamp -> arrival time
_origins: dict[int, int] = {}  # id(track) -> the stream's first RTP timestamp (aiortc's pts 0)


def install() -> None:
    handle, recv = rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet, rtcrtpreceiver.RemoteStreamTrack.recv

    async def timed_handle(self: Any, packet: Any, arrival_time_ms: int) -> None:
        track = self._track
        if track is not None and track.kind == "audio":
            pending = _arrivals.setdefault(id(track), {})
            _origins.setdefault(id(track), packet.timestamp)
            if len(pending) >= MAX_PENDING:
                pending.clear()
            pending.setdefault(packet.timestamp, time.monotonic())
        await handle(self, packet, arrival_time_ms)

    async def timed_recv(self: Any) -> Any:
        frame = await recv(self)
        pending = _arrivals.get(id(self))
        if pending and frame.pts is not None:
            arrived = pending.pop((_origins[id(self)] + frame.pts) % 2**32, None)
            if arrived is not None:
                delay_ms.add(1000 * (time.monotonic() - arrived))
        return frame

    rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet = timed_handle  # type: ignore[method-assign]
    rtcrtpreceiver.RemoteStreamTrack.recv = timed_recv  # type: ignore[method-assign]
