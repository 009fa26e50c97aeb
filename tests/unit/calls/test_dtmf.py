"""RFC 4733 telephone-events become one key each, whatever repeats or goes missing; control messages are checked."""

from __future__ import annotations

import struct

import pytest

from gateway.calls.dtmf import DIGITS, Key, Rfc4733Decoder, key_from_message

END = 0x80
VOLUME = 10


def payload(event: int, duration: int, end: bool = False) -> bytes:
    return struct.pack("!BBH", event, (END if end else 0) | VOLUME, duration)


def press(decoder: Rfc4733Decoder, timestamp: int, event: int, packets: int, step: int) -> list[Key]:
    """What a phone sends for one key: `packets` updates 20 ms apart, then its end packet three times."""
    keys = []
    for n in range(1, packets + 1):
        keys += decoder.packet(timestamp, payload(event, n * step))
    for _ in range(3):
        keys += decoder.packet(timestamp, payload(event, packets * step, end=True))
    return keys


def test_a_key_is_reported_once_when_it_ends_with_its_duration_despite_three_end_packets() -> None:
    decoder = Rfc4733Decoder(8000)
    assert press(decoder, 1000, 4, packets=5, step=160) == [Key("4", 100)]


def test_the_duration_is_read_at_the_events_clock_rate() -> None:
    assert press(Rfc4733Decoder(48_000), 5, 11, packets=8, step=960) == [Key("#", 160)]


def test_every_code_from_0_to_15_is_a_key_and_other_events_are_ignored() -> None:
    decoder = Rfc4733Decoder(8000)
    keys = [k for event in range(16) for k in press(decoder, 100 * event, event, packets=2, step=160)]
    assert "".join(k.digit for k in keys) == DIGITS
    assert press(decoder, 99_999, 16, packets=2, step=160) == []  # flash
    assert decoder.packet(123, b"\x01\x80") == []  # too short to be an event


def test_a_key_whose_end_packets_were_all_lost_is_reported_when_the_next_begins() -> None:
    decoder = Rfc4733Decoder(8000)
    assert decoder.packet(1000, payload(1, 160)) == []
    assert decoder.packet(1000, payload(1, 320)) == []
    assert decoder.packet(2000, payload(2, 160)) == [Key("1", 40)]
    assert decoder.packet(2000, payload(2, 320, end=True)) == [Key("2", 40)]


def test_a_late_packet_of_a_finished_key_does_not_report_it_again() -> None:
    decoder = Rfc4733Decoder(8000)
    assert press(decoder, 1000, 7, packets=3, step=160) == [Key("7", 60)]
    assert decoder.packet(1000, payload(7, 320)) == []
    assert decoder.packet(1000, payload(7, 480, end=True)) == []


def test_a_control_message_becomes_a_key_and_bad_ones_say_what_is_wrong() -> None:
    assert key_from_message({"digit": "5", "duration_ms": 250}) == Key("5", 250)
    assert key_from_message({"digit": "b"}) == Key("B", 100)
    assert Key("*", 80).event("control") == {"type": "dtmf", "digit": "*", "duration_ms": 80, "source": "control"}
    assert Key("4", 80).as_text() == "The caller pressed 4."
    bad_durations = [{"digit": "1", "duration_ms": d} for d in (0, 1.5, True, 10**6, "100")]
    for bad in [{}, {"digit": "E"}, {"digit": "12"}, {"digit": 1}, *bad_durations]:
        with pytest.raises(ValueError):
            key_from_message(bad)
