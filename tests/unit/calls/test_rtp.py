"""Telephone-event packets taken out of an audio stream leave no hole that stalls aiortc's jitter buffer."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from gateway.calls.rtp import SequenceCloser

SAMPLES_PER_PACKET = 960


def audio_packet(sequence_number: int) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=sequence_number & 0xFFFF,
                       timestamp=(sequence_number * SAMPLES_PER_PACKET) & 0xFFFFFFFF, payload=b"x")
    packet._data = packet.payload  # what aiortc's receiver sets (the depayloaded frame) before the buffer
    return packet


def frames_kept_back(first: int, count: int, events: set[int], closer: SequenceCloser | None) -> int:
    """Feed a stream of `count` packets, those in `events` being telephone-events, into aiortc's audio jitter
    buffer (as its receiver sets it up); return how many audio frames it has not released (held or dropped)."""
    buffer = JitterBuffer(capacity=16, prefetch=4)
    audio = 0
    released = 0
    for sequence_number in range(first, first + count):
        if sequence_number in events:
            if closer is not None:
                closer.remove(sequence_number & 0xFFFF)
            continue
        packet = audio_packet(sequence_number)
        if closer is not None:
            packet.sequence_number = closer.renumber(packet.sequence_number)
        audio += 1
        released += buffer.add(packet)[1] is not None
    return audio - released


def test_with_the_holes_closed_the_buffer_keeps_back_only_its_prefetch_after_many_keys() -> None:
    keys = {n for start in range(20, 400, 40) for n in range(start, start + 8)}  # ten keys of 8 packets each
    assert frames_kept_back(0, 420, set(), None) == 4, "aiortc releases a frame once 4 more have arrived"
    assert frames_kept_back(0, 420, keys, SequenceCloser()) == 4
    assert frames_kept_back(0, 420, keys, None) >= 4 + 10 * 4, "each hole costs at least the 4 frames before it"


def test_the_count_survives_the_16_bit_wrap() -> None:
    keys = set(range(65_530, 65_540))  # across the wrap from 65535 to 0
    assert frames_kept_back(65_500, 80, keys, SequenceCloser()) == 4


def test_a_late_audio_packet_is_numbered_by_the_events_before_it_only() -> None:
    closer = SequenceCloser()
    assert closer.renumber(100) == 100
    closer.remove(102)
    closer.remove(103)
    assert closer.renumber(104) == 102
    assert closer.renumber(101) == 101, "arrived after the events, but it was sent before them"
    assert closer.renumber(105) == 103
