"""The SIP bridge: a Janus session with every account registered, and a PhoneCall for each call on it.

When the connection to Janus is lost (Janus restarted, the network broke), Janus has dropped every SIP leg,
so the bridge ends the gateway calls they were joined to, then reconnects and registers again. When the
bridge itself stops, it hangs up both legs of every call. Either way nothing is left half-open.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from gateway.bridges.gateway_api import GatewayClient
from gateway.bridges.janus import JanusError, JanusEvent, JanusSession
from gateway.bridges.line import Handle, Line
from gateway.bridges.phone_call import DialFailed, PhoneCall
from gateway.bridges.registrar import Registrar
from gateway.bridges.settings import DIRECT, BridgeSettings
from gateway.bridges.tasks import Backoff

log = logging.getLogger(__name__)

STEADY_S = 10.0  # a Janus connection that lasted this long resets the reconnect backoff


class SipBridge:
    def __init__(self, settings: BridgeSettings, http: aiohttp.ClientSession,
                 announce: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
        self.settings = settings
        self.gateway = GatewayClient(settings.gateway_url, http, settings.gateway_token)
        self.lines: list[Line] = []
        self.ready = asyncio.Event()  # Janus connected and every account registered
        self.janus: JanusSession | None = None
        self._announce = announce
        self._handles: dict[int, Handle] = {}
        self._calls: dict[PhoneCall, asyncio.Task[None]] = {}

    @property
    def calls(self) -> list[PhoneCall]:
        return list(self._calls)

    async def run(self) -> None:
        """Serve until cancelled, reconnecting to Janus whenever the connection is lost."""
        registrar = await Registrar.start(self.settings.direct_host) if self.settings.direct else None
        backoff = Backoff()
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                try:
                    await self._serve(registrar)
                except (JanusError, OSError, aiohttp.ClientError, TimeoutError) as exc:
                    log.warning("Janus at %s: %s; reconnecting", self.settings.janus_url, exc or type(exc).__name__)
                if loop.time() - started > STEADY_S:
                    backoff.reset()
                await backoff.wait()
        finally:
            if registrar is not None:
                registrar.close()

    async def dial(self, to: str, *, account: str | None = None, profile: str | None = None,
                   metadata: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                   ring_s: float | None = None) -> PhoneCall:
        """Call `to` (a SIP URI, or a number dialled through the account's registrar) and join it to a new
        gateway call once answered. Raises DialFailed when it is not answered or cannot be placed."""
        if not self.ready.is_set() or self.janus is None:
            raise DialFailed("not_ready", "the bridge is not connected to Janus")
        line = next((line for line in self.lines if line.account.name == (account or line.account.name)), None)
        if line is None:
            raise DialFailed("unknown_account", f"no account {account!r}")
        uri = target_uri(to, line.account.username, line.account.proxy, line.account.name == DIRECT)
        handle = line.free_handle()
        if handle is None:
            raise DialFailed("no_line", f"every line of account {line.account.name} is in a call")
        call = PhoneCall(handle, self.janus, self.gateway, self.settings.gateway_lost_s)
        answered: asyncio.Future[PhoneCall] = asyncio.get_running_loop().create_future()
        described = {**(metadata or {}), "bridge": "janus-sip", "direction": "outbound",
                     "account": line.account.name, "to": uri}
        self.start_call(call, call.run_outbound(uri, profile or line.account.profile, described, headers or {},
                                                ring_s or self.settings.ring_s, answered))
        return await asyncio.shield(answered)  # a caller that stops waiting does not stop the dial

    def start_call(self, call: PhoneCall, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run one call's life as a task the bridge owns (ended and awaited with the Janus session)."""
        task = asyncio.create_task(work, name=f"sip-call-{call.handle.id}")
        self._calls[call] = task
        task.add_done_callback(lambda _: self._calls.pop(call, None))
        return task

    async def _serve(self, registrar: Registrar | None) -> None:
        async with JanusSession(self.settings.janus_url, self._route) as janus:
            self.janus = janus
            try:
                await self._open_lines(janus, registrar)
                self.ready.set()
                await janus.closed.wait()
            except asyncio.CancelledError:
                await self._hang_up_all("bridge_shutdown")
                raise
            finally:
                self.ready.clear()
                self.janus = None
                await self._drop_all()

    async def _open_lines(self, janus: JanusSession, registrar: Registrar | None) -> None:
        self.lines = []
        self._handles.clear()
        for account in self.settings.lines():
            line = Line(account, janus, registrar, self._add_handle)
            self.lines.append(line)
            try:
                await line.open()
            except JanusError as exc:  # this account takes no calls (until Janus reconnects); the others do
                line.error = str(exc)
                log.error("account %s: %s", account.name, exc)
                self._announce(f"sip: failed {account.name}: {exc}")
                continue
            self._announce(f"sip: ready {account.name} at {line.uri}")

    def _add_handle(self, handle: Handle) -> None:
        self._handles[handle.id] = handle

    def _route(self, event: JanusEvent) -> None:
        handle = self._handles.get(event.handle_id)
        if handle is None:
            log.debug("Janus event for unknown handle %d ignored: %s", event.handle_id, event.kind)
            return
        if handle.call is not None:
            handle.call.deliver(event)
            return
        result = event.data.get("result", {}) if event.kind == "event" else {}
        if result.get("event") == "incomingcall" and self.janus is not None:
            call = PhoneCall(handle, self.janus, self.gateway, self.settings.gateway_lost_s)
            self.start_call(call, call.run_inbound(event))
            return
        handle.line.on_event(handle, event)

    async def _hang_up_all(self, reason: str) -> None:
        calls = list(self._calls)
        for task in self._calls.values():
            task.cancel()
        await asyncio.gather(*self._calls.values(), return_exceptions=True)
        await asyncio.gather(*(call.hang_up(reason) for call in calls), return_exceptions=True)

    async def _drop_all(self) -> None:
        """Janus is gone (and its SIP legs with it): end the gateway side of every call."""
        calls = list(self._calls)
        for task in self._calls.values():
            task.cancel()
        await asyncio.gather(*self._calls.values(), return_exceptions=True)
        await asyncio.gather(*(call.janus_lost() for call in calls if call.ended_by is None),
                             return_exceptions=True)
        for handle in self._handles.values():
            handle.call = None


def target_uri(to: str, username: str, proxy: str | None, direct: bool) -> str:
    """`to` as a SIP URI: as given, or a number at the account's registrar (its proxy, else its domain)."""
    if re.fullmatch(r"sips?:[^\s@]+@[^\s@]+", to):
        return to
    if not re.fullmatch(r"\+?[0-9*#]{1,32}", to) or direct:
        raise DialFailed("bad_target", f"{to!r} is not a SIP URI{'' if direct else ' or a number'}")
    host = (proxy or username).split("@")[-1].removeprefix("sips:").removeprefix("sip:").split(";")[0]
    return f"sip:{to}@{host}"
