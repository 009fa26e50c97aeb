"""When the gateway last heard anything at all from a caller's peer: a vanished peer is one that sends nothing.

RTP alone says nothing about liveness: a phone on hold, silence suppression or a bridge that stops relaying
all stop it while the peer is alive. A live peer keeps sending something else: RTCP reports about the audio
the gateway never stops sending (every 1-5 s from browsers, aiortc and Janus), DTLS and SCTP, and STUN
consent checks (RFC 7675, every 5 s or so). aiortc has no "last packet" API, so:
- every non-STUN datagram is counted by aiortc's DTLS transport, which `getStats()` reports publicly as the
  transport's `packetsReceived`: polled about once a second;
- STUN is answered inside aioice and counted nowhere, so the peer's binding requests are seen by wrapping the
  ICE connection's `request_received` (reached through `RTCIceTransport._connection`, the one private name
  here). It matters when the peer holds the call with `a=inactive` and may send STUN only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.stats import RTCTransportStats

log = logging.getLogger(__name__)

POLL_PERIOD_S = 1.0


class PeerLiveness:
    def __init__(self, pc: RTCPeerConnection, clock: Callable[[], float] = time.monotonic, call_id: str = "") -> None:
        self._pc = pc
        self._clock = clock
        self._packets = 0
        self._next_poll = clock()
        self.heard_at = clock()
        self._watch_stun(call_id)

    async def poll(self) -> None:
        """Count the peer's datagrams now and then (at most once per POLL_PERIOD_S); cheap to call often."""
        now = self._clock()
        if now < self._next_poll:
            return
        self._next_poll = now + POLL_PERIOD_S
        report = await self._pc.getStats()
        packets = sum(s.packetsReceived for s in report.values() if isinstance(s, RTCTransportStats))
        if packets != self._packets:
            self._packets = packets
            self.heard_at = self._clock()

    def _watch_stun(self, call_id: str) -> None:
        transceivers = self._pc.getTransceivers()
        ice = transceivers[0].receiver.transport.transport if transceivers else None
        connection = getattr(ice, "_connection", None)
        if connection is None or not hasattr(connection, "request_received"):
            log.warning("call %s: cannot see STUN from the caller (aiortc changed); RTCP and data count", call_id)
            return
        answer = connection.request_received

        def heard(*args: Any, **kwargs: Any) -> None:
            self.heard_at = self._clock()
            answer(*args, **kwargs)

        connection.request_received = heard
