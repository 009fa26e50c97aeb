"""What a phone bridge does to a call, done from a real aiortc caller: keys sent as RFC 4733 packets inside its
audio stream, the gateway's RTP captured as it arrives, silences of every kind, and the server-side stream read
over HTTP. aiortc can neither send telephone-events nor go quiet on purpose, so these reach into the caller's
own aiortc objects (never the gateway's).
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket, is_rtcp
from aiortc.sdp import SessionDescription

from gateway.calls.dtmf import DIGITS
from gateway.client.caller import Caller
from tests.fixtures import Gateway

FRAME_MS = 20
END_PACKETS = 3  # RFC 4733: the end of an event is sent three times


def events_url(gateway: Gateway, caller: Caller) -> str:
    return f"{gateway.url}/v1/calls/{caller.call_id}/events"


def audio_of(pc: RTCPeerConnection) -> Any:
    return pc.getTransceivers()[0]


def negotiated_payload_type(answer_sdp: str, name: str) -> tuple[int, int]:
    """(payload type, clock rate) of codec `name` in an answer's audio section."""
    (audio,) = [m for m in SessionDescription.parse(answer_sdp).media if m.kind == "audio"]
    (codec,) = [c for c in audio.rtp.codecs if c.name.lower() == name]
    return codec.payloadType, codec.clockRate


class KeyPad:
    """Presses keys the way a phone does: while a key is down its telephone-event packets take the place of
    the audio packets (same stream, same sequence numbers), the last one sent three times with the end bit."""

    def __init__(self, pc: RTCPeerConnection, payload_type: int, clock_rate: int) -> None:
        self._payload_type = payload_type
        self._step = clock_rate * FRAME_MS // 1000
        self._keys: list[tuple[int, int, asyncio.Future[None]]] = []  # (event, packets, done)
        self._sent = 0
        self._start: int | None = None  # RTP timestamp of the key being sent
        transport = audio_of(pc).sender.transport
        self._send = transport._send_rtp
        transport._send_rtp = self._send_rtp

    async def press(self, digit: str, duration_ms: int) -> None:
        done = asyncio.get_running_loop().create_future()
        self._keys.append((DIGITS.index(digit), duration_ms // FRAME_MS, done))
        await asyncio.wait_for(done, 5)

    async def _send_rtp(self, data: bytes) -> None:
        if self._keys and not is_rtcp(data):
            data = self._event_instead_of(data)
        await self._send(data)

    def _event_instead_of(self, audio: bytes) -> bytes:
        sequence_number, timestamp, ssrc = struct.unpack("!HII", audio[2:12])
        event, packets, done = self._keys[0]
        first = self._start is None
        if first:
            self._start = timestamp
        self._sent += 1
        end = self._sent > packets
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, min(self._sent, packets) * self._step)
        packet = RtpPacket(payload_type=self._payload_type, marker=int(first), sequence_number=sequence_number,
                           timestamp=self._start, ssrc=ssrc, payload=payload)
        if self._sent == packets + END_PACKETS:
            self._keys.pop(0)
            self._sent, self._start = 0, None
            done.set_result(None)
        return packet.serialize()


@dataclass
class Captured:
    sequence_number: int
    marker: bool
    payload: bytes


def capture_rtp(pc: RTCPeerConnection) -> list[Captured]:
    """Every RTP packet the caller receives, as it arrives (install before media flows)."""
    packets: list[Captured] = []
    receiver = audio_of(pc).receiver
    forward = receiver._handle_rtp_packet

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        packets.append(Captured(packet.sequence_number, bool(packet.marker), packet.payload))
        await forward(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = handle
    return packets


def send_only_stun(pc: RTCPeerConnection) -> Callable[[], None]:
    """From now on the caller sends nothing but STUN (its ICE stays up): no RTP, RTCP, DTLS or SCTP.
    Returns the undo."""
    transport = audio_of(pc).sender.transport
    send_rtp, send_data = transport._send_rtp, transport._send_data

    async def nothing(data: bytes) -> None:
        return None

    transport._send_rtp = transport._send_data = nothing

    def undo() -> None:
        transport._send_rtp, transport._send_data = send_rtp, send_data

    return undo


async def vanish(pc: RTCPeerConnection) -> None:
    """The caller's network dies: its sockets close and nothing says goodbye (no RTCP BYE, no DTLS alert)."""
    await audio_of(pc).receiver.transport.transport.stop()


@dataclass
class EventStream:
    """A reader of `GET /v1/calls/<id>/events`: every event it has read so far, in order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    comments: int = 0
    closed: bool = False
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, kind: str, predicate: Callable[[dict[str, Any]], bool] = lambda e: True,
                       timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if event["type"] == kind and predicate(event):
                        return event
                if self.closed:
                    raise AssertionError(f"the stream closed without a {kind!r} event: {self.events}")
                self._arrived.clear()
                await self._arrived.wait()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def read(self, response: aiohttp.ClientResponse) -> None:
        """Read until the server closes the stream; each line is `data: <json>`, a `:` comment, or blank."""
        try:
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    self.events.append(json.loads(line[len("data: "):]))
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    assert line == "", f"not an SSE line: {line!r}"
                self._arrived.set()
        finally:
            self.closed = True
            self._arrived.set()


@asynccontextmanager
async def following(http: aiohttp.ClientSession, url: str) -> AsyncIterator[EventStream]:
    """The call's event stream at `url`, read in the background while the block runs."""
    response = await http.get(url)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    stream = EventStream()

    async def run() -> None:
        async with response:
            await stream.read(response)

    reading = asyncio.create_task(run(), name="caller-sse")
    try:
        yield stream
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
