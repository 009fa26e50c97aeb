"""The direct mode's registrar learns Janus's SIP address from a REGISTER, over real UDP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from gateway.bridges.registrar import Registrar

REGISTER = (
    "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:40001;rport;branch=z9hG4bK1\r\n"
    "From: <sip:gemini@127.0.0.1>;tag=a\r\nTo: <sip:gemini@127.0.0.1>\r\n"
    "Call-ID: reg-1\r\nCSeq: 1 REGISTER\r\n"
    "Contact: <sip:gemini@127.0.0.1:40001;transport=udp>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
)


@pytest.fixture
async def registrar() -> AsyncIterator[Registrar]:
    registrar = await Registrar.start("127.0.0.1")
    yield registrar
    registrar.close()


@pytest.fixture
def janus(registrar: Registrar) -> Iterator[Callable[[str], None]]:
    """A UDP socket standing in for Janus's SIP stack: `send(message)` to the registrar; `.sock` to read."""
    host, port = registrar.uri.removeprefix("sip:").split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        send = lambda message: sock.sendto(message.encode(), (host, int(port)))  # noqa: E731
        send.sock = sock  # type: ignore[attr-defined]
        yield send


async def test_a_register_is_answered_and_its_contact_remembered(registrar: Registrar, janus) -> None:
    janus(REGISTER)
    contact = await registrar.contact_of("gemini", timeout=5)
    reply = (await asyncio.get_running_loop().sock_recv(janus.sock, 4096)).decode()
    assert contact == "sip:gemini@127.0.0.1:40001"
    assert reply.startswith("SIP/2.0 200 OK\r\n")
    assert "Call-ID: reg-1" in reply and "CSeq: 1 REGISTER" in reply and ";expires=300" in reply


async def test_anything_but_register_or_options_gets_no_answer(registrar: Registrar, janus) -> None:
    janus(REGISTER.replace("REGISTER sip", "INVITE sip"))
    await asyncio.sleep(0.2)
    with pytest.raises(BlockingIOError):
        janus.sock.recv(4096)
    assert registrar.contacts == {}
