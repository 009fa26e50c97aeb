"""A one-purpose SIP registrar for the bridge's direct mode (no PBX): it learns where Janus listens.

Janus's SIP plugin binds each account's SIP stack to a port of its own choosing and never reports it, so a
phone could not know where to send a direct INVITE. In direct mode the bridge registers its account with this
registrar instead of a PBX: Janus's REGISTER names its stack's address in `Contact`, which is the address the
bridge prints (`sip: ready ...`). It answers REGISTER (and OPTIONS) with 200 and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import re

log = logging.getLogger(__name__)

ANSWERED = ("via", "from", "to", "call-id", "cseq")


class Registrar(asyncio.DatagramProtocol):
    """`await Registrar.start(host)`; `await registrar.contact_of(user)` once Janus has registered."""

    def __init__(self) -> None:
        self.contacts: dict[str, str] = {}
        self._registered: dict[str, asyncio.Event] = {}
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def start(cls, host: str, port: int = 0) -> Registrar:
        registrar = cls()
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: registrar, local_addr=(host, port))
        return registrar

    @property
    def uri(self) -> str:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return f"sip:{host}:{port}"

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def contact_of(self, user: str, timeout: float = 10.0) -> str:
        """The Contact URI `user` registered (waits for the REGISTER)."""
        async with asyncio.timeout(timeout):
            await self._registered.setdefault(user, asyncio.Event()).wait()
        return self.contacts[user]

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]
        self._transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode("utf-8", "replace")
        method = text.split(" ", 1)[0]
        if method not in ("REGISTER", "OPTIONS"):
            return
        headers = _headers(text)
        reply = ["SIP/2.0 200 OK"] + [f"{name}: {value}" for name, value in headers if name.lower() in ANSWERED]
        if method == "REGISTER":
            contact = next((v for n, v in headers if n.lower() in ("contact", "m")), None)
            expires = next((v for n, v in headers if n.lower() == "expires"), "3600")
            match = re.search(r"<?(sips?:([^@>;]+)@[^>;]+)", contact or "")
            if match:
                self.contacts[match.group(2)] = match.group(1)
                self._registered.setdefault(match.group(2), asyncio.Event()).set()
                reply.append(f"Contact: <{match.group(1)}>;expires={expires.strip()}")
        reply += ["Content-Length: 0", "", ""]
        assert self._transport is not None
        self._transport.sendto("\r\n".join(reply).encode(), addr)


def _headers(message: str) -> list[tuple[str, str]]:
    head = message.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    return [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in head) if value]
