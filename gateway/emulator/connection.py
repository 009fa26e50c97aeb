"""One Live API WebSocket connection: the setup handshake, the reader/writer/timer tasks, and faults."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from typing import Any

from aiohttp import WSMsgType, web

from . import wire
from .conversation import Conversation
from .session import Session
from .setup import model_name, parse_setup
from .state import EmulatorState
from .wire import DEADLINE_EXPIRED, INTERNAL, INVALID_ARGUMENT, UNAVAILABLE, Close, ProtocolError, ServerKind

log = logging.getLogger(__name__)

SETUP_TIMEOUT_S = 30.0  # a connection that sends no setup for this long is closed
INBOX_LIMIT = 4096  # client messages waiting (a stall piles them up); beyond it the reader stops reading
AUDIO_BACKLOG = 64  # reply chunks waiting for the wire before the reply task waits too


class _Ended(Exception):
    """The socket is closed: the connection's task group winds down."""


class Outbox:
    """Server messages waiting for the wire, in order. Control messages never wait; audio waits for room."""

    def __init__(self, audio_limit: int = AUDIO_BACKLOG) -> None:
        self._items: deque[wire.ServerMessage] = deque()
        self._audio_limit = audio_limit
        self._audio = 0
        self._nonempty = asyncio.Event()
        self._room = asyncio.Event()

    def put(self, message: wire.ServerMessage) -> None:
        self._items.append(message)
        self._audio += message.kind is ServerKind.AUDIO
        self._nonempty.set()

    async def put_audio(self, message: wire.ServerMessage) -> None:
        while self._audio >= self._audio_limit:
            self._room.clear()
            await self._room.wait()
        self.put(message)

    async def get(self) -> wire.ServerMessage:
        while not self._items:
            self._nonempty.clear()
            await self._nonempty.wait()
        message = self._items.popleft()
        if message.kind is ServerKind.AUDIO:
            self._audio -= 1
            self._room.set()
        return message


class EmulatedConnection:
    """A client connection and everything observable about it (tests read these attributes)."""

    def __init__(
        self, conn_id: int, request: web.Request, ws: web.WebSocketResponse, api_version: str, key_ok: bool,
        state: EmulatorState,
    ) -> None:
        self.id = conn_id
        self.call_id: str | None = request.headers.get("x-gateway-call-id")
        self.api_version = api_version
        self.model: str | None = None
        self.setup: dict[str, Any] | None = None  # keys normalised to camelCase
        self.resumed_from: str | None = None  # the handle the setup asked to resume (even if refused)
        self.session: Session | None = None
        self.counts: Counter[str] = Counter()
        self.sent_kinds: list[str] = []
        self.closed_code: int | None = None
        self.label = f"connection {conn_id}" + (f" (call {self.call_id})" if self.call_id else "")
        self._request = request
        self._ws = ws
        self._key_ok = key_ok
        self._state = state
        self._loop = asyncio.get_running_loop()
        self.opened_at = self._loop.time()
        self._outbox = Outbox()
        self._inbox: asyncio.Queue[str | bytes] = asyncio.Queue(maxsize=INBOX_LIMIT)
        self._running = asyncio.Event()
        self._running.set()
        self._unstall_timer: asyncio.TimerHandle | None = None
        self._ended = asyncio.Event()

    # --- what tests and the control API look at ----------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.closed_code is None

    @property
    def stalled(self) -> bool:
        return not self._running.is_set()

    @property
    def conversation(self) -> Conversation | None:
        return self.session.conversation if self.session else None

    @property
    def lineage(self) -> int | None:
        return self.session.lineage if self.session else None

    @property
    def audio_in_samples(self) -> int:
        return self.session.audio_in_samples if self.session else 0

    def describe(self) -> dict[str, Any]:
        conversation = self.conversation
        return {
            "id": self.id,
            "call_id": self.call_id,
            "model": self.model,
            "api_version": self.api_version,
            "open": self.is_open,
            "closed_code": self.closed_code,
            "stalled": self.stalled,
            "resumed": self.resumed_from is not None,
            "turn": conversation.turn if conversation else 0,
            "audio_in_s": round(self.audio_in_samples / 16_000, 3),
            "counts": dict(self.counts),
            "sent": len(self.sent_kinds),
        }

    # --- faults ------------------------------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with a close frame carrying `code` and `reason` (cut to 123 bytes)."""
        if self.closed_code is not None:
            return
        self.closed_code = code
        log.info("%s: closing with %d %r", self.label, code, reason)
        try:
            await self._ws.close(code=code, message=Close(code, reason).reason_bytes())
        finally:
            self._ended.set()

    async def drop(self) -> None:
        """Abort the TCP connection without a close frame (the client sees 1006)."""
        if self.closed_code is not None:
            return
        self.closed_code = 1006
        log.info("%s: dropping the connection", self.label)
        transport = self._request.transport
        if transport is not None:
            transport.abort()
        self._ended.set()

    def stall(self, seconds: float | None = None) -> None:
        """Go silent: send nothing and process nothing for `seconds` (None = until `unstall()`).

        The reader keeps reading, so WebSocket pings are still answered (aiohttp answers them in receive()).
        """
        log.info("%s: stalling for %s s", self.label, "ever" if seconds is None else seconds)
        self._running.clear()
        if self._unstall_timer is not None:
            self._unstall_timer.cancel()
        if seconds is not None:
            self._unstall_timer = self._loop.call_later(seconds, self.unstall)

    def unstall(self) -> None:
        if self._unstall_timer is not None:
            self._unstall_timer.cancel()
            self._unstall_timer = None
        self._running.set()

    # --- the Link the session talks to -------------------------------------------------------------------

    def send(self, message: wire.ServerMessage) -> None:
        self._outbox.put(message)

    async def send_audio(self, message: wire.ServerMessage) -> None:
        await self._outbox.put_audio(message)

    async def unstalled(self) -> float:
        if self._running.is_set():
            return 0.0
        since = self._loop.time()
        await self._running.wait()
        return self._loop.time() - since

    # --- lifetime ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; everything it started is finished when this returns."""
        try:
            session = await self._handshake()
            if session is not None:
                await self._serve(session)
        except ProtocolError as exc:
            log.info("%s: refused: %s", self.label, exc)
            await self.close(exc.close.code, exc.close.reason)
        finally:
            if self._unstall_timer is not None:
                self._unstall_timer.cancel()
            if self.closed_code is not None:
                await self._ended.wait()  # a close handshake started elsewhere finishes first

    async def _handshake(self) -> Session | None:
        """Read the setup and answer setupComplete, or raise ProtocolError to refuse it."""
        try:
            async with asyncio.timeout(SETUP_TIMEOUT_S):
                message = await self._ws.receive()
        except TimeoutError:
            raise ProtocolError(DEADLINE_EXPIRED, "no setup message") from None
        if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            self._closed_by_peer()
            return None
        if not self._key_ok:
            raise ProtocolError(wire.API_KEY_INVALID, "missing or wrong API key")
        key, body = wire.parse_client_message(message.data)
        self.counts[key] += 1
        if key != "setup":
            raise ProtocolError(INVALID_ARGUMENT, f"the first message must be setup, not {key!r}")
        self.setup = body if isinstance(body, dict) else None
        if self.setup is not None and isinstance(self.setup.get("model"), str):
            self.model = model_name(self.setup["model"])
        refusal = self._state.take_refusal()
        if refusal is not None:
            raise ProtocolError(refusal.close, "setup refused on request (fault injection)")
        setup = parse_setup(body, self.api_version)
        if setup.handle is None:
            conversation, lineage = Conversation(), self._state.new_lineage()
        else:
            self.resumed_from = setup.handle
            # How the real service refuses an unknown or expired handle is not documented; it rejects an
            # invalid setup with 1007 "Request contains an invalid argument.", so the emulator does the same.
            restored = self._state.handles.restore(setup.handle)
            if restored is None:
                raise ProtocolError(INVALID_ARGUMENT, "unknown or expired resumption handle")
            conversation, lineage = restored
            if self._state.config.exclusive_resume and self._state.lineage_in_use(lineage):
                raise ProtocolError(UNAVAILABLE, "the conversation is still open on another connection")
        self.session = Session(
            self, setup, conversation, lineage, self._state, self._state.rng_for(self.id), self.label
        )
        self.send(wire.setup_complete())
        log.info("%s: session started (model %s, resumed %s)", self.label, setup.model, bool(self.resumed_from))
        return self.session

    async def _serve(self, session: Session) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read())
                tg.create_task(self._write())
                tg.create_task(self._process(session))
                tg.create_task(self._watch_end())
                if self._state.config.lifetime_s is not None:
                    tg.create_task(self._lifetime())
                session.start(tg)
        except* _Ended:
            pass
        except* Exception:
            log.exception("%s: internal error", self.label)
            await self.close(INTERNAL.code, INTERNAL.reason)

    async def _watch_end(self) -> None:
        await self._ended.wait()
        raise _Ended

    async def _read(self) -> None:
        while True:
            message = await self._ws.receive()
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await self._inbox.put(message.data)
            elif message.type is WSMsgType.CLOSING:
                return  # our own close() is under way and finishes the handshake
            else:
                self._closed_by_peer()
                return

    def _closed_by_peer(self) -> None:
        if self.closed_code is None:
            self.closed_code = self._ws.close_code or 1006
            log.info("%s: closed by the client (%d)", self.label, self.closed_code)
        self._ended.set()

    async def _write(self) -> None:
        while True:
            message = await self._outbox.get()
            await self.unstalled()
            try:
                await self._ws.send_bytes(message.encode())
            except ConnectionError:
                self._closed_by_peer()
                return
            self.sent_kinds.append(message.kind.value)

    async def _process(self, session: Session) -> None:
        try:
            while True:
                raw = await self._inbox.get()
                await self.unstalled()
                key, body = wire.parse_client_message(raw)
                session.handle(key, body)
                await asyncio.sleep(0)  # a backlog must not starve the reply task or other connections
        except ProtocolError as exc:
            log.info("%s: protocol error: %s", self.label, exc)
            await self.close(exc.close.code, exc.close.reason)

    async def _lifetime(self) -> None:
        """goAway before the configured lifetime ends, then close like the real service at its limit."""
        config = self._state.config
        assert config.lifetime_s is not None and config.goaway_at_s is not None
        closes_at = self.opened_at + config.lifetime_s
        await asyncio.sleep(max(0.0, self.opened_at + config.goaway_at_s - self._loop.time()))
        self.send(wire.go_away(closes_at - self._loop.time()))
        await asyncio.sleep(max(0.0, closes_at - self._loop.time()))
        await self.close(DEADLINE_EXPIRED.code, DEADLINE_EXPIRED.reason)
