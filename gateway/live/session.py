"""The Live side of one call: one conversation held over as many Live connections as it takes.

- Every connection asks for resumption handles; the newest resumable one is kept.
- The caller's audio goes through an `UplinkJournal`, so a new connection is given whatever the old one
  received after the newest handle, plus whatever arrived while no connection was up.
- An unexpected close is retried with exponential backoff and jitter, resuming by handle (or, with no
  handle, re-seeding a fresh session with the transcript history), until a time budget runs out.
- A `goAway` starts a handover (see `handover.py`): the next connection is opened while the current one
  still runs, and the switch happens at a turn boundary.
- A connection that says nothing at all for `stall_s` after the caller finished a turn is treated as lost
  (Gemini has been seen to stall silently, and a half-open TCP connection looks the same until pings fail).
Only the current connection's messages reach the listener.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from google import genai
from google.genai import types

from gateway.config import Profile
from gateway.live.connection import LiveConnection
from gateway.live.errors import Disposition, LiveFatalError, classify, describe, fatal_error
from gateway.live.handover import Handover
from gateway.live.journal import UplinkJournal
from gateway.live.setup import connect_config
from gateway.live.transcripts import Role, TranscriptAssembler
from gateway.stats import Window

log = logging.getLogger(__name__)

SETUP_TIMEOUT_S = 15.0  # connect() waits for setupComplete with no deadline of its own
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 5.0
CONTROL_QUEUE_SIZE = 32


class LinkState(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"


class LiveListener(Protocol):
    """What the call hears from the Live side. Callbacks run on the event loop and must not block."""

    def on_live_audio(self, pcm24: bytes) -> None: ...
    def on_transcript(self, role: Role, text: str, final: bool) -> None: ...
    def on_interrupted(self) -> None: ...
    def on_generation_complete(self) -> None: ...
    def on_turn_complete(self) -> None: ...
    def on_tool_call(self, calls: list[types.FunctionCall]) -> None: ...
    def on_tool_call_cancellation(self, ids: list[str]) -> None: ...
    def on_turn_abandoned(self) -> None: ...  # the turn in flight will be redone on another connection
    def on_link_state(self, state: LinkState, detail: str) -> None: ...


@dataclass
class LiveStats:
    connections: int = 0
    reconnects: int = 0
    handovers: int = 0
    forced_handovers: int = 0  # no turn boundary came before the GoAway deadline
    stalls: int = 0  # connections given up for saying nothing after the caller's turn
    resumes_refused: int = 0
    reseeds: int = 0
    audio_appended_bytes: int = 0  # caller audio handed to the session
    audio_sent_bytes: int = 0  # audio written to Live connections, replays included


Action = Callable[[LiveConnection], Awaitable[None]]


class LiveSession:
    def __init__(
        self,
        client: genai.Client,
        profile: Profile,
        call_id: str,
        listener: LiveListener,
        *,
        retry_budget_s: float = 30.0,
        stall_s: float = 20.0,
        caller_speaking: Callable[[], bool] = lambda: False,
        journal_max_s: float = 30.0,
    ) -> None:
        self._client = client
        self._profile = profile
        self.call_id = call_id
        self._listener = listener
        self._retry_budget_s = retry_budget_s
        self._stall_s = stall_s
        self._reply_due_at: float | None = None  # the caller finished a turn: Live should say something by then
        self.caller_speaking = caller_speaking
        self._journal = UplinkJournal(journal_max_s)
        self._transcripts = TranscriptAssembler(listener.on_transcript)
        self._control: asyncio.Queue[Action] = asyncio.Queue(CONTROL_QUEUE_SIZE)
        self._losses: asyncio.Queue[tuple[LiveConnection, BaseException]] = asyncio.Queue()
        self._switched = asyncio.Condition()
        self._numbers = itertools.count(1)
        self._tg: asyncio.TaskGroup | None = None
        self._connections: set[LiveConnection] = set()
        self._handover = Handover(self)
        self.current: LiveConnection | None = None
        self.handle: str | None = None
        self.stats = LiveStats()
        self.uplink_latency_ms = Window()  # caller audio out of the decoder -> its bytes written to Live

    # ----- what the call uses -----

    async def run(self) -> None:
        """Hold the conversation until cancelled; raises LiveFatalError when it cannot go on."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._pump_audio(), name=f"live-audio-{self.call_id}")
                tg.create_task(self._pump_control(), name=f"live-control-{self.call_id}")
                tg.create_task(self._watch_stall(), name=f"live-stall-{self.call_id}")
                await self._supervise()
        except BaseExceptionGroup as group:
            fatal = group.subgroup(LiveFatalError)
            if fatal is not None:
                raise fatal.exceptions[0] from None
            raise
        finally:
            await asyncio.gather(*(conn.close() for conn in list(self._connections)))

    def send_audio(self, pcm16: bytes, captured_at: float) -> None:
        """Caller audio, 16 kHz s16le mono, captured at that monotonic time. Never blocks; kept until a
        connection has it."""
        self.stats.audio_appended_bytes += len(pcm16)
        self._journal.append(pcm16, captured_at)

    def send_text(self, text: str) -> bool:
        """Typed input for the model; False if too much is already waiting."""
        if not self._enqueue(lambda conn: conn.send_text(text)):
            return False
        self._transcripts.typed(text)
        return True

    def send_tool_responses(self, responses: list[types.FunctionResponse]) -> bool:
        async def send(conn: LiveConnection) -> None:
            live = [r for r in responses if r.id in conn.pending_tool_calls]
            if len(live) < len(responses):
                log.info("call %s: dropping tool responses for calls this connection does not know", self.call_id)
            if live:
                await conn.send_tool_response(live)

        return self._enqueue(send)

    def expect_reply(self) -> None:
        """The caller finished a turn (speech ended, or text was typed): Live should answer."""
        if self._reply_due_at is None:
            self._reply_due_at = asyncio.get_running_loop().time() + self._stall_s

    @property
    def uplink_backlog_s(self) -> float:
        return self._journal.pending_s

    @property
    def transcript(self) -> tuple[tuple[str, str], ...]:
        """The final turns so far (role, text): what a fresh session is re-seeded with."""
        return tuple((role.value, text) for role, text in self._transcripts.history)

    def restore(self, handle: str | None, transcript: tuple[tuple[str, str], ...]) -> None:
        """Go on from another process's session (before `run()`): resume `handle`, re-seed from `transcript`."""
        self.handle = handle
        self._transcripts.history.extend((Role(role), text) for role, text in transcript)

    # ----- connections -----

    async def open_connection(self, handle: str | None) -> LiveConnection:
        """One attempt to open a connection (resuming `handle`), with a deadline for setupComplete."""
        number = next(self._numbers)
        config = connect_config(self._profile, call_id=self.call_id, handle=handle)
        async with asyncio.timeout(SETUP_TIMEOUT_S):
            conn = await LiveConnection.open(self._client, self._profile.model, config, number)
        self._connections.add(conn)
        self.stats.connections += 1
        log.info("call %s: Live connection %d open (%s)", self.call_id, number, "resumed" if handle else "new")
        return conn

    async def close_connection(self, conn: LiveConnection) -> None:
        self._connections.discard(conn)
        await conn.close()

    async def activate(self, conn: LiveConnection) -> None:
        """Make `conn` the current connection: replay the journal to it and start reading it."""
        assert self._tg is not None
        async with self._switched:
            self.current = conn
            self._journal.rewind()
            self._switched.notify_all()
        self._tg.create_task(self._receive(conn), name=f"live-receive-{self.call_id}-{conn.number}")

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task owned by this session: cancelled when the session ends."""
        assert self._tg is not None
        return self._tg.create_task(coro, name=f"{name}-{self.call_id}")

    async def _supervise(self) -> None:
        await self.activate(await self._connect())
        self._listener.on_link_state(LinkState.CONNECTED, "")
        while True:
            lost, error = await self._losses.get()
            if lost is not self.current:
                continue  # an old connection closing after a handover
            self.current = None
            if lost.retiring:
                log.info("call %s: handover by reconnecting (connection %d retired)", self.call_id, lost.number)
                await self.activate(await self._connect())
                continue
            if classify(error, resuming=False) is Disposition.FATAL:
                raise fatal_error(error)
            log.warning("call %s: Live connection %d lost: %s", self.call_id, lost.number, describe(error))
            self.stats.reconnects += 1
            self.abandon_turn()
            self._listener.on_link_state(LinkState.RECONNECTING, describe(error))
            await self.activate(await self._connect())
            self._listener.on_link_state(LinkState.CONNECTED, "")

    async def _connect(self) -> LiveConnection:
        """Open a connection, resuming the newest handle, retrying with backoff within the budget."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._retry_budget_s
        attempt = 0
        while True:
            handle = self.handle
            try:
                return await self._open_and_seed(handle)
            except Exception as exc:
                disposition = classify(exc, resuming=handle is not None)
                if disposition is Disposition.FATAL:
                    raise fatal_error(exc) from exc
                if disposition is Disposition.DROP_HANDLE:
                    log.warning("call %s: resume refused, starting afresh: %s", self.call_id, describe(exc))
                    self.handle = None
                    self.stats.resumes_refused += 1
                    continue
                remaining = give_up_at - loop.time()
                if remaining <= 0:
                    raise LiveFatalError(
                        "live_unavailable", f"gave up after {self._retry_budget_s:.0f} s: {describe(exc)}"
                    ) from exc
                delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt) * random.uniform(0.5, 1.0)
                attempt += 1
                log.info("call %s: %s; retrying in %.2f s", self.call_id, describe(exc), delay)
                await asyncio.sleep(min(delay, remaining))

    async def _open_and_seed(self, handle: str | None) -> LiveConnection:
        """Open a connection; a fresh one (no handle) is seeded with the conversation so far."""
        conn = await self.open_connection(handle)
        if handle is None and self._transcripts.history:
            try:
                await conn.send_history(self._transcripts.history_contents())
            except BaseException:
                await self.close_connection(conn)
                raise
            self.stats.reseeds += 1
        return conn

    def abandon_turn(self) -> None:
        """Leaving a connection mid-turn: the next one resumes from before that turn and redoes it."""
        self._transcripts.discard_open()
        self._listener.on_turn_abandoned()

    async def wait_for_connection(self, not_this: LiveConnection | None = None) -> LiveConnection:
        async with self._switched:
            await self._switched.wait_for(lambda: self.current is not None and self.current is not not_this)
            assert self.current is not None
            return self.current

    # ----- reading -----

    async def _receive(self, conn: LiveConnection) -> None:
        error: BaseException = ConnectionError("Live connection ended")
        try:
            async for message in conn.messages():
                self._dispatch(conn, message)
        except Exception as exc:
            error = exc
        self._connections.discard(conn)
        self._losses.put_nowait((conn, error))

    def _dispatch(self, conn: LiveConnection, message: types.LiveServerMessage) -> None:
        conn.note(message)
        if conn is not self.current:
            return
        if message.server_content is not None or message.tool_call is not None:
            self._reply_due_at = None
        content = message.server_content
        if content is not None:
            self._dispatch_content(content)
        if message.tool_call is not None:
            self._listener.on_tool_call(list(message.tool_call.function_calls or ()))
        if message.tool_call_cancellation is not None:
            self._listener.on_tool_call_cancellation(list(message.tool_call_cancellation.ids or ()))
        update = message.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self.handle = update.new_handle
            self._journal.checkpoint()
        if message.go_away is not None:
            self._handover.start(conn, message.go_away.time_left)
        self._handover.notice()

    def _dispatch_content(self, content: types.LiveServerContent) -> None:
        if content.model_turn is not None:
            self._transcripts.model_output_started()
            for part in content.model_turn.parts or ():
                if part.inline_data is not None and part.inline_data.data:
                    self._listener.on_live_audio(part.inline_data.data)
        if content.input_transcription is not None:
            t = content.input_transcription
            self._transcripts.fragment(Role.USER, t.text, bool(t.finished))
        if content.output_transcription is not None:
            t = content.output_transcription
            self._transcripts.fragment(Role.MODEL, t.text, bool(t.finished))
        if content.interrupted:
            self._transcripts.finish(Role.MODEL)
            self._listener.on_interrupted()
        if content.generation_complete:
            self._listener.on_generation_complete()
        if content.turn_complete:
            self._transcripts.finish(Role.USER)
            self._transcripts.finish(Role.MODEL)
            self._listener.on_turn_complete()

    async def _watch_stall(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self._stall_s / 4))
            conn = self.current
            if self._reply_due_at is None or loop.time() < self._reply_due_at or conn is None:
                continue
            self._reply_due_at = None
            self.stats.stalls += 1
            log.warning("call %s: no answer from Live connection %d for %.0f s; reconnecting",
                        self.call_id, conn.number, self._stall_s)
            await self.close_connection(conn)  # its receive loop reports the loss; the journal replays the turn

    # ----- writing -----

    async def _pump_audio(self) -> None:
        while True:
            chunk = await self._journal.next_chunk()
            conn = self.current
            if conn is None:
                await self.wait_for_connection()  # activation rewinds the journal: this chunk comes again
                continue
            try:
                await conn.send_audio(chunk.pcm)
                self.stats.audio_sent_bytes += len(chunk.pcm)
                if not chunk.sent:
                    chunk.sent = True
                    self.uplink_latency_ms.add(1000 * (time.monotonic() - chunk.captured_at))
            except Exception as exc:  # the receive loop reports the loss; the journal keeps the audio
                log.debug("call %s: audio send failed on connection %d: %s", self.call_id, conn.number, exc)
                await self.wait_for_connection(not_this=conn)

    async def _pump_control(self) -> None:
        while True:
            action = await self._control.get()
            conn = self.current or await self.wait_for_connection()
            try:
                await action(conn)
            except Exception as exc:  # one more try on the next connection, then it is reported lost
                log.info("call %s: send failed on connection %d (%s); retrying", self.call_id, conn.number, exc)
                try:
                    await action(await self.wait_for_connection(not_this=conn))
                except Exception as again:
                    log.warning("call %s: could not deliver input to Live: %s", self.call_id, again)

    def _enqueue(self, action: Action) -> bool:
        try:
            self._control.put_nowait(action)
            return True
        except asyncio.QueueFull:
            return False
