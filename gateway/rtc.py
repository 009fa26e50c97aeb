"""aiortc helpers that the gateway and its callers both need (neither side's concern alone)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

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


async def close_peer(pc: RTCPeerConnection) -> None:
    """Close `pc`, immune to our own cancellation.

    aiortc makes a second close() await the first one's future directly, so cancelling any waiter (a hang-up
    cancelling a call's tasks) cancels that shared future and breaks every close in progress.
    """
    await asyncio.shield(pc.close())
