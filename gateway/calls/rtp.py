"""RTP-level work aiortc does not do: telephone-event (RFC 4733) in, RFC 3551 marker bits out.

aiortc has no telephone-event codec: unknown, the payload type is refused in negotiation; known, its packets
would reach the audio jitter buffer and the decoder thread, which dies on a codec it cannot decode. So the
codec is added to aiortc's table (to be negotiated), and its packets are taken out of the stream at the
receiver, before aiortc sees them. Out, aiortc sets the marker bit on every audio packet (the last packet of
each frame); phones resync their jitter buffer on it, so it is rewritten to mark talkspurts only.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable

from aiortc import RTCDtlsTransport, RTCRtpReceiver
from aiortc.codecs import CODECS
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket, is_rtcp

from gateway.calls.dtmf import Key, Rfc4733Decoder

log = logging.getLogger(__name__)

TELEPHONE_EVENT = "telephone-event"
# One beside Opus (48 kHz clock), one beside G.711 and G.722 (8 kHz clock); events 0-15 are the keys.
# Payload types as browsers use them; an answer takes the offer's. aiortc's codec preferences tell codecs
# apart by MIME type and fmtp parameters but not by clock rate, so the two must differ in their parameters:
# the 48 kHz one has none, which RFC 4733 (section 2.4.1) reads as events 0-15 too.
TELEPHONE_EVENT_CODECS = (
    RTCRtpCodecParameters(mimeType=f"audio/{TELEPHONE_EVENT}", clockRate=48_000, channels=1, payloadType=110),
    RTCRtpCodecParameters(mimeType=f"audio/{TELEPHONE_EVENT}", clockRate=8_000, channels=1, payloadType=126,
                          parameters={"0-15": None}),
)
SEQUENCE_WINDOW = 1024  # taken-out sequence numbers older than this behind the newest are folded into a count
MAX_STREAMS = 8  # RTP streams (SSRCs) of one receiver whose numbers are kept; the oldest goes first
MARKER = 0x80  # in the second byte of the RTP header
SENDING_GAP_S = 0.1  # packets sent again after this long (the caller's hold ended, the loop stalled): a talkspurt


def register_telephone_event() -> None:
    """Let aiortc negotiate telephone-event (process-wide, idempotent).

    Appended after the audio codecs, so an aiortc offer lists it last; an aiortc sender sends with the first
    negotiated codec only, so nothing ever sends with it. Every gateway receiver gets a TelephoneEventTap.
    """
    for codec in TELEPHONE_EVENT_CODECS:
        if codec not in CODECS["audio"]:
            CODECS["audio"].append(codec)


class SequenceCloser:
    """Audio sequence numbers of one stream with the telephone-event packets taken out of it.

    The events share the audio's sequence numbers. aiortc's audio jitter buffer waits for every missing number
    until 16 packets have piled up behind the hole, then drops the audio held before it: each key would cost
    80 ms of the caller's voice and a stall. So each audio packet is renumbered down by the event packets
    before it (the RTP timestamps still show the time the key took, which the uplink fills with silence).
    Extended (unwrapped) numbers keep the count right across reordering and the 16-bit wrap.
    """

    def __init__(self) -> None:
        self._newest: int | None = None
        self._removed: list[int] = []  # extended numbers, sorted, within SEQUENCE_WINDOW of the newest
        self._folded = 0  # removed numbers older than the window

    def remove(self, sequence_number: int) -> None:
        bisect.insort(self._removed, self._extend(sequence_number))
        while self._removed and self._removed[0] < self._newest - SEQUENCE_WINDOW:
            self._removed.pop(0)
            self._folded += 1

    def renumber(self, sequence_number: int) -> int:
        extended = self._extend(sequence_number)
        return (extended - self._folded - bisect.bisect_left(self._removed, extended)) & 0xFFFF

    def _extend(self, sequence_number: int) -> int:
        if self._newest is None:
            self._newest = sequence_number + (1 << 20)  # room below for packets that arrive late
            return self._newest
        delta = (sequence_number - self._newest + 0x8000) % 0x10000 - 0x8000
        extended = self._newest + delta
        self._newest = max(self._newest, extended)
        return extended


class TelephoneEventTap:
    """Takes telephone-event packets out of an aiortc receiver's stream and turns them into keys.

    aiortc's DTLS transport hands each decrypted RTP packet to `receiver._handle_rtp_packet`: the only
    place to see a packet before the jitter buffer does, and the one private name this needs.
    """

    def __init__(self, receiver: RTCRtpReceiver, payload_type: int, clock_rate: int,
                 on_key: Callable[[Key], None]) -> None:
        self._payload_type = payload_type
        self._on_key = on_key
        self._decoder = Rfc4733Decoder(clock_rate)
        self._streams: dict[int, SequenceCloser] = {}
        self._forward = receiver._handle_rtp_packet
        receiver._handle_rtp_packet = self._handle  # type: ignore[method-assign]

    async def _handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        closer = self._streams.get(packet.ssrc)
        if closer is None:
            if len(self._streams) >= MAX_STREAMS:
                del self._streams[next(iter(self._streams))]
            closer = self._streams[packet.ssrc] = SequenceCloser()
        if packet.payload_type == self._payload_type:
            closer.remove(packet.sequence_number)
            for key in self._decoder.packet(packet.timestamp, packet.payload):
                self._on_key(key)
            return
        packet.sequence_number = closer.renumber(packet.sequence_number)
        await self._forward(packet, arrival_time_ms=arrival_time_ms)


class TalkspurtMarker:
    """Sets the marker bit of outbound audio as RFC 3551 says: on the first packet of a talkspurt only.

    The gateway sends audio all the time (silence when the model is quiet), so a talkspurt is the stream's
    first packet, the first packet of reply audio after silence (`talking()` turning true), and the first
    packet after a pause in sending (a hold, when aiortc's sender sends nothing). aiortc's sender
    sends each packet as soon as the track returns it, in one task, so at that moment `talking()` describes
    the frame inside the packet. The packet is rewritten on its way to SRTP, in `transport._send_rtp`
    (private, the one place every outbound packet passes); RTCP passes untouched. Retransmissions (older
    sequence numbers) are never marked.
    """

    def __init__(self, transport: RTCDtlsTransport, talking: Callable[[], bool],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._talking = talking
        self._clock = clock
        self._was_talking = False
        self._newest: int | None = None
        self._sent_at = 0.0
        self._send = transport._send_rtp
        transport._send_rtp = self._send_marked  # type: ignore[method-assign]

    async def _send_marked(self, data: bytes) -> None:
        if len(data) >= 12 and not is_rtcp(data):
            second = data[1] & ~MARKER & 0xFF
            if self._starts_talkspurt(int.from_bytes(data[2:4], "big")):
                second |= MARKER
            data = data[:1] + bytes([second]) + data[2:]
        await self._send(data)

    def _starts_talkspurt(self, sequence_number: int) -> bool:
        first = self._newest is None
        if not first and not 0 < (sequence_number - self._newest) % 0x10000 < 0x8000:
            return False  # not newer than the newest sent: a retransmission
        self._newest = sequence_number
        now, talking = self._clock(), self._talking()
        start = first or now - self._sent_at > SENDING_GAP_S or (talking and not self._was_talking)
        self._sent_at, self._was_talking = now, talking
        return start
