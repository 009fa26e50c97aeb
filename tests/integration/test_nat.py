"""Media behind a 1:1 NAT without TURN: host candidates bound to GATEWAY_ICE_PORT_RANGE and advertising
GATEWAY_ICE_PUBLIC_ADDRESS, reached by a real aiortc caller through a NAT (tests/nat.py) to a real
`gateway serve`. The container suite does the same through podman's published UDP range."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gateway.client.caller import Caller, CallRefused
from gateway.client.signals import speech_like
from tests.audio import best_match
from tests.gateway_process import gateway_process
from tests.integration.test_call import heard, say_and_hear_reply
from tests.nat import OneToOneNat, free_udp_range

PRIVATE, PUBLIC, INSIDE = "127.0.0.1", "127.0.0.2", "127.0.0.3"  # all on loopback: Linux routes 127/8 to lo


def host_candidates(sdp: str) -> list[tuple[str, int]]:
    """(address, port) of every host candidate in `sdp`."""
    found = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            assert fields[7] == "host", line
            found.append((fields[4], int(fields[5])))
    return found


async def call_with_one_turn(url: str, seed: int) -> str:
    """Place a call, say one utterance, check that its parrot reply came back, hang up; returns the answer SDP."""
    caller = Caller(url)
    try:
        answer = await caller.connect()
        await caller.wait_for("ready")
        await caller.connected.wait()
        utterance = speech_like(0.8, seed=seed)
        await say_and_hear_reply(caller, utterance)
    finally:
        await caller.hang_up()
    assert [e["text"] for e in caller.of_type("transcript") if e["role"] == "model" and e["final"]] == ["reply 1"]
    assert best_match(utterance, heard(caller))[0] > 0.8
    return answer["sdp"]


async def test_a_caller_reaches_the_gateway_through_its_public_address_on_a_port_in_the_range(tmp_path: Path) -> None:
    ports = free_udp_range(8, (PRIVATE, PUBLIC))
    settings = {"GATEWAY_ICE_PORT_RANGE": f"{ports.start}-{ports[-1]}", "GATEWAY_ICE_PUBLIC_ADDRESS": PUBLIC}
    async with OneToOneNat(PUBLIC, PRIVATE, INSIDE, ports) as nat, gateway_process(tmp_path, **settings) as server:
        advertised = host_candidates(await call_with_one_turn(server.url, seed=51))
    assert advertised, "the answer has no host candidate"
    assert all(address == PUBLIC and port in ports for address, port in advertised), advertised
    port = advertised[0][1]
    assert nat.inbound[port] and nat.outbound[port], "nothing crossed the NAT: the public address was not used"


async def test_with_every_port_of_the_range_taken_a_call_gets_503_and_the_next_one_works(tmp_path: Path) -> None:
    ports = free_udp_range(1, (PRIVATE,))
    async with gateway_process(tmp_path, GATEWAY_ICE_PORT_RANGE=str(ports.start)) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind((PRIVATE, ports.start))
            refused_caller = Caller(server.url)
            with pytest.raises(CallRefused) as refused:
                await refused_caller.connect()
            await refused_caller.hang_up()
        assert (refused.value.status, refused.value.code) == (503, "no_media_port")
        caller = Caller(server.url)
        try:
            answer = await caller.connect()
            await caller.wait_for("ready")
        finally:
            await caller.hang_up()
    assert set(host_candidates(answer["sdp"])) == {(PRIVATE, ports.start)}
