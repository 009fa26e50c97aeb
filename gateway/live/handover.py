"""GoAway handover: move a call to a new Live connection before the server closes the current one.

On `goAway {timeLeft}` the next connection is opened at once with the newest resumption handle, while the
current one keeps serving. The switch happens at a turn boundary (nothing in flight, the server says the
session is resumable there, the caller is not speaking), or when time is nearly up. If a newer handle
arrives first, the standby is reopened with it. If the standby cannot be opened (one report says Gemini
refuses a resume while the old socket is open), the old connection is retired at the boundary instead and
the session reconnects by handle: a short pause between turns rather than a cut reply.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from gateway.live.connection import LiveConnection
from gateway.live.errors import describe

if TYPE_CHECKING:
    from gateway.live.session import LiveSession

log = logging.getLogger(__name__)

DEFAULT_TIME_LEFT_S = 5.0
POLL_S = 0.05  # how often the caller's speaking state is rechecked while waiting for a boundary


def parse_duration(value: str | None) -> float:
    """A protobuf Duration string ("1.500s") in seconds."""
    try:
        return float(value.rstrip("s")) if value else DEFAULT_TIME_LEFT_S
    except ValueError:
        return DEFAULT_TIME_LEFT_S


class Handover:
    def __init__(self, session: LiveSession) -> None:
        self._session = session
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def start(self, old: LiveConnection, time_left: str | None) -> None:
        if self._task is not None and not self._task.done():
            return
        self._task = self._session.spawn(self._run(old, parse_duration(time_left)), "live-handover")

    def notice(self) -> None:
        """Something arrived on the current connection: a waiting handover rechecks its conditions."""
        self._changed.set()

    async def _run(self, old: LiveConnection, time_left_s: float) -> None:
        session = self._session
        loop = asyncio.get_running_loop()
        switch_by = loop.time() + time_left_s - min(1.0, time_left_s / 4)
        log.info("call %s: GoAway on connection %d, %.1f s left", session.call_id, old.number, time_left_s)
        standby: LiveConnection | None = None
        try:
            while old is session.current:
                if session.handle is None:
                    await self._retire_at_boundary(old, switch_by, "no resumption handle yet")
                    return
                if standby is None or standby.resumed_from != session.handle:
                    if standby is not None:
                        await session.close_connection(standby)
                        standby = None
                    try:
                        standby = await session.open_connection(session.handle)
                    except Exception as exc:
                        await self._retire_at_boundary(old, switch_by, describe(exc))
                        return
                    continue
                if self._ready(old, standby) or loop.time() >= switch_by:
                    break
                await self._wait(switch_by)
            if old is not session.current:
                return  # lost meanwhile: the session reconnects by itself
            if not self._ready(old, standby):
                log.warning("call %s: no turn boundary before the GoAway deadline; switching now", session.call_id)
                session.abandon_turn()
                session.stats.forced_handovers += 1
            await session.activate(standby)
            session.stats.handovers += 1
            log.info("call %s: handover from connection %d to %d", session.call_id, old.number, standby.number)
            standby = None
            await session.close_connection(old)
        finally:
            if standby is not None:
                await session.close_connection(standby)

    def _ready(self, old: LiveConnection, standby: LiveConnection | None) -> bool:
        session = self._session
        return (
            standby is not None
            and standby.resumed_from == session.handle
            and old.at_turn_boundary
            and not session.caller_speaking()
        )

    async def _retire_at_boundary(self, old: LiveConnection, switch_by: float, why: str) -> None:
        """Close the old connection at a turn boundary; the session then reconnects by handle."""
        session = self._session
        log.info("call %s: handing over by reconnect (%s)", session.call_id, why)
        loop = asyncio.get_running_loop()
        while old is session.current and loop.time() < switch_by:
            if old.at_turn_boundary and not session.caller_speaking():
                break
            await self._wait(switch_by)
        if old is session.current:
            old.retiring = True
            session.stats.handovers += 1
            await session.close_connection(old)

    async def _wait(self, until: float) -> None:
        self._changed.clear()
        timeout = max(0.0, min(POLL_S, until - asyncio.get_running_loop().time()))
        try:
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            pass
