"""aiortc helpers that the gateway and its callers both need (neither side's concern alone).

aioice, under aiortc, has no options for its host candidates: not which addresses (aioice#57), which UDP ports
(aioice#47) or which address to advertise behind a 1:1 NAT. Each is added here, narrowly and process-wide, as a
setting applied once at startup.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import ipaddress
import logging
from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Gather host ICE candidates only on `addresses` (process-wide).

    aioice gathers on every interface and offers no filter (aioice#57); it also never gathers on loopback,
    which a gateway bound to 127.0.0.1 needs. Replacing its address lookup is the narrowest fix.
    """
    chosen = list(addresses)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [  # type: ignore[assignment]
        a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)
    ]
    log.info("ICE host candidates restricted to %s", ", ".join(chosen))


class _HostCandidates:
    """Where host candidates bind (`ports`) and what they advertise (`public_address`); None = aioice's way."""

    ports: range | None = None
    public_address: str | None = None
    next_index = 0  # where in `ports` the next bind starts: after the port bound last, so they take turns


_host = _HostCandidates()
_gathering = contextvars.ContextVar("gathering_host_candidates", default=False)
_aioice_gather = aioice.ice.Connection.get_component_candidates
_loop_bind = asyncio.BaseEventLoop.create_datagram_endpoint


def restrict_host_ports(ports: range | None) -> None:
    """Bind host ICE candidates only to UDP ports in `ports` (process-wide; None: any port).

    aioice binds each host candidate to port 0 and has no option (aioice#47, aiortc#487). While it gathers
    (a context variable says so) the event loop's datagram bind tries the range instead of port 0, so
    nothing of aioice is copied and every other socket of the process is left alone.
    """
    _host.ports = ports
    _install()
    if ports is not None:
        log.info("ICE host candidates bound to UDP ports %d-%d", ports.start, ports[-1])


def advertise_host_address(address: str | None) -> None:
    """Write `address` into host candidates instead of the interface's own (1:1 NAT; process-wide).

    aioice keeps a candidate's advertised `host` apart from `_network_host`, the address it really uses, so
    only what callers are told changes; the sockets stay on the interface.
    """
    _host.public_address = address
    _install()
    if address is not None:
        log.info("ICE host candidates advertise %s", address)


def _install() -> None:
    aioice.ice.Connection.get_component_candidates = _gather  # type: ignore[method-assign]
    asyncio.BaseEventLoop.create_datagram_endpoint = _bind  # type: ignore[method-assign]


async def _gather(connection: aioice.ice.Connection, *args: Any, **kwargs: Any) -> list[aioice.Candidate]:
    token = _gathering.set(True)
    try:
        candidates = await _aioice_gather(connection, *args, **kwargs)
    finally:
        _gathering.reset(token)
    public = _host.public_address
    if public is not None:
        version = ipaddress.ip_address(public).version
        for candidate in candidates:
            if candidate.type == "host" and ipaddress.ip_address(candidate.host).version == version:
                candidate.host = public
    return candidates


async def _bind(loop: asyncio.BaseEventLoop, protocol_factory: Any, local_addr: Any = None, *args: Any,
                **kwargs: Any) -> Any:
    ports = _host.ports
    if ports is None or not _gathering.get() or local_addr is None or local_addr[1] != 0:
        return await _loop_bind(loop, protocol_factory, local_addr, *args, **kwargs)
    for offset in range(len(ports)):
        index = (_host.next_index + offset) % len(ports)
        try:
            bound = await _loop_bind(loop, protocol_factory, (local_addr[0], ports[index]), *args, **kwargs)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
        else:
            _host.next_index = index + 1
            return bound
    log.warning("no free UDP port for media on %s in %d-%d: widen GATEWAY_ICE_PORT_RANGE",
                local_addr[0], ports.start, ports[-1])
    raise OSError(errno.EADDRINUSE, f"every UDP port in {ports.start}-{ports[-1]} is in use")


async def close_peer(pc: RTCPeerConnection) -> None:
    """Close `pc`, immune to our own cancellation.

    aiortc makes a second close() await the first one's future directly, so cancelling any waiter (a hang-up
    cancelling a call's tasks) cancels that shared future and breaks every close in progress.
    """
    await asyncio.shield(pc.close())
