"""One SIP account on Janus: a registered master handle and its helpers, one call per handle at a time.

Janus's SIP plugin gives each handle one call; "helper" handles share the master's registration, and Janus
passes an INVITE to a free helper when the master is busy. So an account that takes `max_calls` calls at once
is one master plus `max_calls - 1` helpers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.bridges.janus import JanusError, JanusEvent, JanusSession
from gateway.bridges.registrar import Registrar
from gateway.bridges.settings import Account

if TYPE_CHECKING:
    from gateway.bridges.phone_call import PhoneCall

log = logging.getLogger(__name__)

SIP_PLUGIN = "janus.plugin.sip"
REGISTER_TIMEOUT_S = 15.0


class Handle:
    """One Janus SIP handle of a line."""

    def __init__(self, handle_id: int, line: Line) -> None:
        self.id = handle_id
        self.line = line
        self.call: PhoneCall | None = None


class Line:
    def __init__(self, account: Account, janus: JanusSession, registrar: Registrar | None,
                 on_handle: Callable[[Handle], None]) -> None:
        self.account = account
        self.uri = account.username  # where phones reach it; in direct mode, Janus's own address
        self.handles: list[Handle] = []
        self.error: str | None = None  # why it could not register
        self._janus = janus
        self._registrar = registrar
        self._on_handle = on_handle  # the bridge routes the handle's events from now on
        self._registered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def open(self) -> None:
        """Attach and register the master, then its helpers. Raises JanusError if the account cannot register."""
        account = self.account
        master = self._new_handle(await self._janus.attach(SIP_PLUGIN))
        body: dict[str, Any] = {
            "request": "register", "username": account.username, "secret": account.secret,
            "register_ttl": account.register_ttl, "incoming_header_prefixes": ["X-"],
        }
        for key in ("proxy", "authuser", "display_name"):
            if getattr(account, key):
                body[key] = getattr(account, key)
        if self._registrar is not None:
            body["proxy"] = self._registrar.uri
        answer = await self._janus.message(master.id, body)
        result = answer.get("result", {})
        if result.get("event") == "registered":
            self._registered.set_result(result)
        try:
            async with asyncio.timeout(REGISTER_TIMEOUT_S):
                registered = await self._registered
        except TimeoutError:
            raise JanusError(f"account {account.name}: no answer to REGISTER from {body.get('proxy')}") from None
        master_id = registered.get("master_id")
        if self._registrar is not None:
            self.uri = await self._registrar.contact_of(account.username.split(":", 1)[1].split("@", 1)[0])
        for _ in range(account.max_calls - 1):
            helper = self._new_handle(await self._janus.attach(SIP_PLUGIN))
            await self._janus.message(helper.id, {"request": "register", "type": "helper",
                                                  "username": account.username, "master_id": master_id})
        log.info("account %s: registered as %s, %d call(s) at once", account.name, self.uri, len(self.handles))

    def _new_handle(self, handle_id: int) -> Handle:
        handle = Handle(handle_id, self)
        self.handles.append(handle)
        self._on_handle(handle)
        return handle

    def free_handle(self) -> Handle | None:
        if self.error is not None:
            return None
        return next((handle for handle in self.handles if handle.call is None), None)

    def on_event(self, handle: Handle, event: JanusEvent) -> None:
        """An event on one of this line's handles that no call is following: registration, mostly."""
        result = event.data.get("result", {}) if event.kind == "event" else {}
        name = result.get("event")
        if name == "registered" and not self._registered.done():
            self._registered.set_result(result)
        elif name == "registration_failed":
            log.error("account %s: registration failed: %s %s", self.account.name, result.get("code"),
                      result.get("reason"))
            if not self._registered.done():
                self._registered.set_exception(JanusError(f"account {self.account.name}: registration failed "
                                                          f"({result.get('code')} {result.get('reason')})"))
        elif name == "missed_call":
            log.warning("account %s: a call from %s was refused: every line is busy", self.account.name,
                        result.get("caller"))
        elif event.kind == "event":
            log.info("account %s: Janus event %s ignored", self.account.name, name or event.data)
