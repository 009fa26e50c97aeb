"""The emulated model on one connection: user turns in, parrot replies out, barge-in, tools, resumption.

State changes and the messages that announce them happen together, without an await in between, so the
reply task and the input handler never see each other half-way (see `Link.send`).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import random
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from gateway.media.resample import StreamResampler

from . import wire
from .conversation import Conversation
from .replies import INPUT_RATE, OUTPUT_RATE, PlaybackClock, parrot, plan_reply, tone
from .setup import SessionSetup
from .state import EmulatorState
from .turns import TurnDetector, TurnEvent, TurnEventKind
from .wire import INVALID_ARGUMENT, ProtocolError

log = logging.getLogger(__name__)

MAX_QUEUED_TURNS = 8  # user turns waiting for a reply (only under NO_INTERRUPTION); the oldest is dropped
_RATE_PARAM = re.compile(r"rate=(\d+)")


def _is_content(turn: Any) -> bool:
    """A Content object: {"role": str?, "parts": [Part objects]?}."""
    if not isinstance(turn, dict) or not isinstance(turn.get("role", ""), str):
        return False
    parts = turn.get("parts", [])
    return isinstance(parts, list) and all(isinstance(part, dict) for part in parts)


class Link(Protocol):
    """What the session needs from its connection."""

    counts: Counter[str]

    def send(self, message: wire.ServerMessage) -> None:
        """Queue a message for the wire, in order; never waits."""

    async def send_audio(self, message: wire.ServerMessage) -> None:
        """Queue reply audio, waiting while the outbox is full."""

    async def unstalled(self) -> float:
        """Wait while the connection is stalled; return how long that was."""


class ReplyPhase(StrEnum):
    TOOL_WAIT = "tool_wait"  # a toolCall is out, waiting for its toolResponse
    GENERATING = "generating"  # audio chunks are going out
    PLAYING = "playing"  # generationComplete sent; waiting for the assumed real-time playback to end


@dataclass(frozen=True, eq=False)
class Job:
    """A user turn waiting for its reply."""

    prompt_audio_s: float
    utterance: np.ndarray | None = None  # speech: the reply parrots it
    text: str | None = None  # typed text: the reply is a tone and the transcript quotes it


@dataclass(eq=False)
class ActiveReply:
    job: Job
    phase: ReplyPhase = ReplyPhase.GENERATING
    task: asyncio.Task[None] | None = None
    call_id: str | None = None
    tool_result: asyncio.Future[Any] | None = field(default=None, repr=False)


class Session:
    def __init__(
        self,
        link: Link,
        setup: SessionSetup,
        conversation: Conversation,
        lineage: int,
        state: EmulatorState,
        rng: random.Random,
        label: str,
    ) -> None:
        self.setup = setup
        self.conversation = conversation
        self.lineage = lineage
        self.audio_in_samples = 0  # on this connection only
        self._link = link
        self._state = state
        self._rng = rng
        self._label = label
        self._detector = TurnDetector(setup.activity)
        self._input_resampler: StreamResampler | None = None  # for audio sent at another rate
        self._jobs: deque[Job] = deque(maxlen=MAX_QUEUED_TURNS)
        self._reply: ActiveReply | None = None
        self._resumable_sent: bool | None = None
        self._call_ids = itertools.count(1)
        self._tg: asyncio.TaskGroup | None = None
        self._transcribe_input = setup.raw.get("inputAudioTranscription") is not None
        self._transcribe_output = setup.raw.get("outputAudioTranscription") is not None

    def start(self, tg: asyncio.TaskGroup) -> None:
        """Called once setupComplete is queued; replies run as tasks of `tg`."""
        self._tg = tg
        self._refresh_resumption(new_handle=True)

    def handle(self, key: str, body: Any) -> None:
        """One client message (top-level key, normalised body)."""
        self._link.counts[key] += 1
        match key:
            case "realtimeInput":
                self._realtime_input(body)
            case "clientContent":
                self._client_content(body)
            case "toolResponse":
                self._tool_response(body)
            case "contextUpdate":
                if not isinstance(body, dict):
                    raise ProtocolError(INVALID_ARGUMENT, "contextUpdate must be an object")
                log.debug("%s: contextUpdate accepted (the parrot has no instructions to update)", self._label)
            case "setup":
                raise ProtocolError(INVALID_ARGUMENT, "a second setup message")
            case _:
                raise ProtocolError(INVALID_ARGUMENT, f"unknown client message {key!r}")

    # --- input -------------------------------------------------------------------------------------------

    def _realtime_input(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise ProtocolError(INVALID_ARGUMENT, "realtimeInput must be an object")
        chunks = body.get("mediaChunks") or []
        if not isinstance(chunks, list):
            raise ProtocolError(INVALID_ARGUMENT, "mediaChunks must be a list")
        for blob in chunks:  # deprecated, still accepted: audio counts as audio, images as video
            self._media(blob)
        if "audio" in body:
            self._audio(body["audio"])
        if "video" in body:
            self._media(body["video"])
        signals = (("activityStart", self._detector.activity_start), ("activityEnd", self._detector.activity_end))
        for signal, detect in signals:
            if signal in body:
                self._link.counts[signal] += 1
                if self.setup.activity.automatic:
                    raise ProtocolError(INVALID_ARGUMENT, f"{signal} needs automatic activity detection disabled")
                self._on_turn_events(detect())
        if body.get("audioStreamEnd") in (True, "true"):
            self._link.counts["audioStreamEnd"] += 1
            self._on_turn_events(self._detector.stream_end())
        if "text" in body:
            self._typed_text(body["text"])

    def _media(self, blob: Any) -> None:
        mime = blob.get("mimeType", "") if isinstance(blob, dict) else ""
        if isinstance(mime, str) and mime.startswith("audio/"):
            self._audio(blob)
        elif isinstance(mime, str) and mime.startswith(("image/", "video/")):
            wire.decode_base64(blob.get("data"))
            self._link.counts["video"] += 1
        else:
            raise ProtocolError(INVALID_ARGUMENT, f"unsupported media type {mime!r}")

    def _audio(self, blob: Any) -> None:
        if not isinstance(blob, dict):
            raise ProtocolError(INVALID_ARGUMENT, "audio must be a Blob")
        mime = blob.get("mimeType") or "audio/pcm"
        if not isinstance(mime, str) or not mime.startswith("audio/pcm"):
            raise ProtocolError(INVALID_ARGUMENT, f"audio must be audio/pcm, not {mime!r}")
        data = wire.decode_base64(blob.get("data"))
        samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)
        rate_match = _RATE_PARAM.search(mime)
        rate = int(rate_match.group(1)) if rate_match else INPUT_RATE
        if not 8000 <= rate <= 48000:
            raise ProtocolError(INVALID_ARGUMENT, f"unsupported audio rate {rate}")
        if rate != INPUT_RATE:  # the real service resamples any input rate
            if self._input_resampler is None or self._input_resampler.in_rate != rate:
                self._input_resampler = StreamResampler(rate, INPUT_RATE)
            samples = self._input_resampler.process(samples)
        self._link.counts["audio"] += 1
        self.audio_in_samples += samples.size
        self.conversation.audio_in_samples += samples.size
        self._on_turn_events(self._detector.feed(samples))

    def _on_turn_events(self, events: list[TurnEvent]) -> None:
        for event in events:
            if event.kind is TurnEventKind.STARTED:
                if self.setup.activity.interrupts:
                    self._barge_in()
                self._refresh_resumption()
            else:
                self._speech_turn(event.utterance)

    def _speech_turn(self, utterance: np.ndarray) -> None:
        seconds = utterance.size / INPUT_RATE
        label = f"[speech {seconds:.2f} s]"
        log.debug("%s: user turn %s", self._label, label)
        if self._transcribe_input:
            self._link.send(wire.input_transcription(label))
        self.conversation.record("user", label)
        self._submit(Job(prompt_audio_s=seconds, utterance=utterance))

    def _typed_text(self, text: Any) -> None:
        if not isinstance(text, str):
            raise ProtocolError(INVALID_ARGUMENT, "realtimeInput.text must be a string")
        self._link.counts["text"] += 1
        if self.setup.activity.interrupts:
            self._barge_in()
        self.conversation.record("user", text)
        self._submit(Job(prompt_audio_s=0.0, text=text))

    def _client_content(self, body: Any) -> None:
        turns = body.get("turns", []) if isinstance(body, dict) else None
        if not isinstance(turns, list) or not all(_is_content(turn) for turn in turns):
            raise ProtocolError(INVALID_ARGUMENT, "clientContent.turns must be a list of Content")
        if body.get("turnComplete") not in (True, "true"):
            self.conversation.seed(turns)
            log.debug("%s: history seeded, turn counter now %d", self._label, self.conversation.turn)
            self._refresh_resumption(new_handle=True)
            return
        self._barge_in()  # clientContent "will interrupt any current model generation" (types.py)
        self.conversation.history.extend(copy.deepcopy(turns))
        user_turns = [turn for turn in turns if turn.get("role", "user") == "user"]
        parts = user_turns[-1].get("parts", []) if user_turns else []
        text = "".join(part["text"] for part in parts if isinstance(part.get("text"), str))
        self._submit(Job(prompt_audio_s=0.0, text=text))

    def _tool_response(self, body: Any) -> None:
        responses = body.get("functionResponses") if isinstance(body, dict) else None
        if not isinstance(responses, list):
            raise ProtocolError(INVALID_ARGUMENT, "toolResponse.functionResponses must be a list")
        reply = self._reply
        for response in responses:
            call_id = response.get("id") if isinstance(response, dict) else None
            if reply is None or reply.tool_result is None or reply.tool_result.done() or call_id != reply.call_id:
                log.info("%s: ignoring toolResponse for unknown call id %r", self._label, call_id)
                continue
            reply.tool_result.set_result(response.get("response", {}))

    # --- replies -----------------------------------------------------------------------------------------

    def _submit(self, job: Job) -> None:
        if self._reply is None:
            self._start(job)
        else:
            if len(self._jobs) == self._jobs.maxlen:
                log.warning("%s: too many user turns waiting for a reply; dropping the oldest", self._label)
            self._jobs.append(job)
        self._refresh_resumption()

    def _start(self, job: Job) -> None:
        assert self._tg is not None, "start() first"
        reply = ActiveReply(job)
        self._reply = reply
        reply.task = self._tg.create_task(self._play(reply))

    def _barge_in(self) -> None:
        """The user interrupts: the reply in flight stops here and the rest of it is never sent."""
        reply, self._reply = self._reply, None
        self._jobs.clear()
        if reply is None:
            return
        assert reply.task is not None
        reply.task.cancel()
        if reply.phase is ReplyPhase.TOOL_WAIT:
            assert reply.call_id is not None
            self._link.send(wire.tool_call_cancellation([reply.call_id]))
        else:
            self._link.send(wire.interrupted())
            self._link.send(wire.turn_complete())
        log.debug("%s: barge-in during %s", self._label, reply.phase)

    async def _call_tool(self, reply: ActiveReply) -> str:
        """Send a toolCall for the first declared function and wait for its result; the transcript note."""
        function = self.setup.functions[0]
        reply.call_id = f"fc-{next(self._call_ids)}"
        reply.phase = ReplyPhase.TOOL_WAIT
        reply.tool_result = asyncio.get_running_loop().create_future()
        self._link.send(wire.tool_call(reply.call_id, function.name, function.example_args()))
        result = await reply.tool_result
        reply.phase = ReplyPhase.GENERATING
        return f" ({function.name}: {json.dumps(result)})"

    async def _play(self, reply: ActiveReply) -> None:
        """One reply: [toolCall ...] audio chunks, outputTranscription, generationComplete, turnComplete."""
        job = reply.job
        note = await self._call_tool(reply) if self._state.tool_calls and self.setup.functions else ""
        utterance = job.utterance
        audio = parrot(utterance) if utterance is not None and utterance.size else tone()
        loop = asyncio.get_running_loop()
        clock = PlaybackClock()
        started = loop.time()
        for index, chunk in enumerate(plan_reply(audio.size, self._state.mode, self._rng)):
            await asyncio.sleep(max(0.0, started + chunk.send_at_s - loop.time()))
            started += await self._link.unstalled()  # a stall shifts the rest of the schedule
            await self._link.send_audio(wire.audio_chunk(audio[chunk.start : chunk.end].tobytes()))
            clock.add(loop.time(), chunk.duration_s)
            if index == 0:
                self._first_chunk_sent(job, note)
        self._link.send(wire.generation_complete())
        reply.phase = ReplyPhase.PLAYING
        assert clock.ends_at is not None
        await asyncio.sleep(max(0.0, clock.ends_at - loop.time()))
        self._reply = None
        self._link.send(wire.turn_complete(job.prompt_audio_s, audio.size / OUTPUT_RATE))
        if self._jobs:
            self._start(self._jobs.popleft())
        self._refresh_resumption(new_handle=True)

    def _first_chunk_sent(self, job: Job, note: str) -> None:
        """The model has started speaking: this reply is now part of the conversation."""
        self.conversation.turn += 1
        transcript = f"reply {self.conversation.turn}"
        if job.text is not None:
            transcript += f": {json.dumps(job.text, ensure_ascii=False)}"
        transcript += note
        self.conversation.record("model", transcript)
        if self._transcribe_output:
            self._link.send(wire.output_transcription(transcript))

    # --- resumption --------------------------------------------------------------------------------------

    def _refresh_resumption(self, new_handle: bool = False) -> None:
        """Tell the client when resumability changes; a resumable update carries a fresh handle."""
        if not self.setup.resumption:
            return
        resumable = not self._detector.speaking and self._reply is None and not self._jobs
        if resumable and (new_handle or self._resumable_sent is not True):
            handle = self._state.handles.issue(self.conversation, self.lineage)
            self._link.send(wire.resumption_update(handle))
        elif not resumable and self._resumable_sent is not False:
            self._link.send(wire.resumption_update(None))
        self._resumable_sent = resumable
