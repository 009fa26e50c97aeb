"""A 1:1 NAT in user space, for tests: each public `address:port` forwards to the same port on a private address.

Like a container runtime's published UDP range (or docker-proxy), it cannot keep the caller's source address,
so the inside sees each caller at a socket of its own on `inside_address` (a peer-reflexive candidate to
ICE), and the caller sees every answer come from the public address and port it wrote to.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import Counter
from typing import Any

Address = tuple[str, int]


def free_udp_range(size: int, addresses: tuple[str, ...], first: int = 20000, last: int = 40000) -> range:
    """`size` consecutive UDP ports free on every one of `addresses` right now (checked by binding)."""
    for _ in range(100):  # a random start, so test runs at once rarely try the same ports
        start = random.randrange(first, last - size)
        ports = range(start, start + size)
        if all(_udp_free(a, p) for a in addresses for p in ports):
            return ports
    raise RuntimeError(f"no {size} free UDP ports in a row between {first} and {last}")


def _udp_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self._on_datagram = on_datagram

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._on_datagram(data, addr)


class OneToOneNat:
    """Public `public_address:p` <-> private `private_address:p` for every p in `ports`."""

    def __init__(self, public_address: str, private_address: str, inside_address: str, ports: range) -> None:
        self.public_address, self.private_address, self.inside_address = public_address, private_address, inside_address
        self.ports = ports
        self.inbound: Counter[int] = Counter()  # datagrams forwarded to each private port
        self.outbound: Counter[int] = Counter()  # ... and back out of each public port
        self._public: dict[int, _Side] = {}
        self._inside: dict[tuple[int, Address], _Side | None] = {}  # None: still opening
        self._opening: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> OneToOneNat:
        loop = asyncio.get_running_loop()
        for port in self.ports:
            _, side = await loop.create_datagram_endpoint(
                lambda port=port: _Side(lambda data, addr: self._inbound(port, data, addr)),
                local_addr=(self.public_address, port))
            self._public[port] = side
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._opening:
            task.cancel()
        for side in [*self._public.values(), *self._inside.values()]:
            if side is not None and side.transport is not None:
                side.transport.close()

    def _inbound(self, port: int, data: bytes, caller: Address) -> None:
        if (port, caller) not in self._inside:
            self._inside[(port, caller)] = None
            task = asyncio.get_running_loop().create_task(self._open_inside(port, caller, data), name="nat-open")
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)
            return
        inside = self._inside[(port, caller)]
        if inside is not None and inside.transport is not None:  # else dropped, as a NAT busy mapping would
            inside.transport.sendto(data)
            self.inbound[port] += 1

    async def _open_inside(self, port: int, caller: Address, first: bytes) -> None:
        def back_out(data: bytes, addr: Address) -> None:
            public = self._public[port].transport
            assert public is not None
            public.sendto(data, caller)
            self.outbound[port] += 1

        _, inside = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Side(back_out), local_addr=(self.inside_address, 0), remote_addr=(self.private_address, port))
        self._inside[(port, caller)] = inside
        self._inbound(port, first, caller)
