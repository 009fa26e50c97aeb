"""A WebRTC caller in aiortc: what a browser or a phone bridge does, for `gateway call`, tests and benchmarks.

It places a call with `POST /v1/calls`, plays queued audio as its microphone (paced like a real one),
records what the gateway sends back with arrival times, and keeps every event from the `events` channel.
It resumes the call over a new peer connection when the gateway says `migrate` (its replica is draining), and,
with `resume_after_silence_s`, when the gateway's audio stops (which it never does while the call lives).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from gateway.media.resample import resample
from gateway.media.track import PacedAudioTrack
from gateway.rtc import close_peer

log = logging.getLogger(__name__)

MIC_RATE = 48_000
FRAME_MS = 20
RESUME_RETRY_S = 1.0
RESUME_GIVE_UP_S = 30.0  # the gateway keeps a detached call for 30 s by default


class CallRefused(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"{status} {error.get('code')}: {error.get('message')}")
        self.status = status
        self.code = error.get("code")
        self.error = error


class Microphone:
    """Queued audio, played out one frame at a time; silence when there is nothing queued."""

    def __init__(self, rate: int = MIC_RATE) -> None:
        self.rate = rate
        self.frame = rate * FRAME_MS // 1000
        self._queue: deque[np.ndarray] = deque()
        self._position = 0  # index of the next sample to play
        self._queued_until = 0  # index at which the queued audio ends
        self._starts: deque[int] = deque()  # where each queued clip begins
        self.clip_starts: list[float] = []  # clock time at which each clip began playing

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def say(self, pcm: np.ndarray, rate: int) -> float:
        """Queue int16 mono audio at `rate` after what is already queued; returns its duration in seconds."""
        samples = resample(np.asarray(pcm, dtype=np.int16), rate, self.rate)
        start = max(self._queued_until, self._position)
        self._starts.append(start)
        self._queued_until = start + samples.size
        self._queue.append(samples)
        return samples.size / self.rate

    @property
    def idle(self) -> bool:
        return not self._queue

    def pull(self, now: float) -> np.ndarray:
        end = self._position + self.frame
        while self._starts and self._starts[0] < end:
            self.clip_starts.append(now + (self._starts.popleft() - self._position) / self.rate)
        out = np.zeros(self.frame, dtype=np.int16)
        filled = 0
        while self._queue and filled < self.frame:
            head = self._queue[0]
            take = min(head.size, self.frame - filled)
            out[filled : filled + take] = head[:take]
            filled += take
            if take == head.size:
                self._queue.popleft()
            else:
                self._queue[0] = head[take:]
        self._position = end
        return out


@dataclass
class Recording:
    """What the gateway sent, as mono int16 frames with the time each arrived."""

    rate: int = 0
    frames: list[np.ndarray] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    def add(self, samples: np.ndarray, rate: int, arrived: float) -> None:
        self.rate = rate
        self.frames.append(samples)
        self.arrivals.append(arrived)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, dtype=np.int16)


class Caller:
    def __init__(
        self,
        base_url: str,
        *,
        codec: str | None = None,
        profile: str | None = None,
        token: str | None = None,
        ice_servers: Sequence[dict[str, Any]] = (),
        relay_only: bool = False,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        resume_after_silence_s: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.codec = codec
        self.profile = profile
        self.ice_servers = list(ice_servers)  # e.g. a client token's, or the last answer's `ice_servers`
        self.relay_only = relay_only
        self.token = token  # may change between requests (a client token expires; the resume token stays)
        self._clock = clock
        self._on_event = on_event
        self.mic = Microphone()
        self.recording = Recording()
        self.events: list[dict[str, Any]] = []
        self._event_arrived = asyncio.Condition()
        self.call_id: str | None = None
        self.resume_token: str | None = None
        self.pc: RTCPeerConnection | None = None
        self.channel: RTCDataChannel | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # those of the current peer connection
        self.connected = asyncio.Event()
        self.resumes = 0  # made on the caller's own initiative (migrate, silence)
        self.resume_failure: Exception | None = None
        self._resume_after_silence_s = resume_after_silence_s
        self._resumer: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._connected_at = 0.0

    async def __aenter__(self) -> Caller:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.hang_up()

    async def connect(self) -> dict[str, Any]:
        """Place the call; returns the JSON answer (call_id, sdp, resume_token)."""
        return await self._offer({"profile": self.profile} if self.profile else {})

    async def resume(self) -> dict[str, Any]:
        """Attach a new peer connection to the same call (after a network change, say)."""
        await self._close_pc()
        return await self._offer({"resume": {"call_id": self.call_id, "token": self.resume_token}})

    async def drop(self) -> None:
        """Vanish: close the peer connection without hanging up."""
        await self._close_pc()

    async def hang_up(self) -> None:
        for task in (self._resumer, self._watchdog):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.call_id is not None and self._http is not None:
            async with self._http.delete(f"{self.base_url}/v1/calls/{self.call_id}", headers=self._headers()):
                pass
        await self._close_pc()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def say(self, pcm: np.ndarray, rate: int) -> float:
        return self.mic.say(pcm, rate)

    def send(self, event: dict[str, Any]) -> None:
        assert self.channel is not None and self.channel.readyState == "open", "the events channel is not open"
        self.channel.send(json.dumps(event))

    async def wait_for(
        self,
        kind: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda e: True,
        timeout: float = 10.0,
        since: int = 0,
    ) -> dict[str, Any]:
        """The first event of `kind` matching `predicate` from index `since` on, waiting up to `timeout`."""
        seen = since
        async with asyncio.timeout(timeout):
            async with self._event_arrived:
                while True:
                    for event in self.events[seen:]:
                        if event.get("type") == kind and predicate(event):
                            return event
                    seen = len(self.events)
                    await self._event_arrived.wait()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    async def _offer(self, extra: dict[str, Any]) -> dict[str, Any]:
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        servers = [RTCIceServer(**server) for server in self.ice_servers]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
        self.pc = pc
        self.connected.clear()
        transceiver = pc.addTransceiver(PacedAudioTrack(self.mic, self.mic.rate), direction="sendrecv")
        if self.codec:
            wanted = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name.lower() == self.codec]
            transceiver.setCodecPreferences(wanted)
        self.channel = pc.createDataChannel("events")
        self.channel.on("message", self._on_message)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", lambda: pc.connectionState == "connected" and self._on_connected())
        await pc.setLocalDescription(await pc.createOffer())
        if self._http is None:
            self._http = aiohttp.ClientSession()
        body = {"type": "offer", "sdp": pc.localDescription.sdp, **extra}
        async with self._http.post(f"{self.base_url}/v1/calls", json=body, headers=self._headers()) as response:
            answer = await response.json()
        if response.status != 201:
            await self._close_pc()
            raise CallRefused(response.status, answer.get("error", {}))
        self.call_id = answer["call_id"]
        self.resume_token = answer["resume_token"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        if self._resume_after_silence_s and self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch_audio(self._resume_after_silence_s), name="caller-watch")
        return answer

    def _on_connected(self) -> None:
        self._connected_at = self._clock()
        self.connected.set()

    def _resume_soon(self, why: str) -> None:
        if self._resumer is None or self._resumer.done():
            self._resumer = asyncio.create_task(self._resume_for(why), name="caller-resume")

    async def _resume_for(self, why: str) -> None:
        """Resume, retrying while the gateway is unreachable or busy; a refusal (404, 403) is final."""
        log.info("caller: resuming call %s: %s", self.call_id, why)
        give_up_at = self._clock() + RESUME_GIVE_UP_S
        while True:
            try:
                await self.resume()
                self.resumes += 1
                return
            except (CallRefused, aiohttp.ClientError) as exc:
                if isinstance(exc, CallRefused) and exc.status < 500 or self._clock() > give_up_at:
                    log.warning("caller: could not resume call %s: %s", self.call_id, exc)
                    self.resume_failure = exc
                    return
            await asyncio.sleep(RESUME_RETRY_S)

    async def _watch_audio(self, silence_s: float) -> None:
        """The gateway sends audio (silence included) all through a call: none for `silence_s` means its
        replica is gone."""
        while not self.of_type("ended"):
            await asyncio.sleep(silence_s / 4)
            last = max(self.recording.arrivals[-1] if self.recording.arrivals else 0.0, self._connected_at)
            if self.connected.is_set() and self._clock() - last > silence_s:
                self._resume_soon(f"no audio from the gateway for {silence_s:.1f} s")
                await self._resumer  # type: ignore[misc]

    def _on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.create_task(self._record(track), name="caller-record")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            samples = frame.to_ndarray().reshape(-1)
            if len(frame.layout.channels) == 2:
                samples = samples[::2]  # aiortc decodes Opus as stereo; both channels are the same
            self.recording.add(samples.astype(np.int16, copy=False), frame.sample_rate, self._clock())

    def _on_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            log.warning("caller: not JSON on the events channel: %r", message[:80])
            return
        event["_received"] = self._clock()
        self.events.append(event)
        if event.get("type") == "migrate":
            self._resume_soon("the gateway moves the call to another replica")
        if self._on_event is not None:
            self._on_event(event)
        task = asyncio.create_task(self._notify(), name="caller-notify")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._event_arrived:
            self._event_arrived.notify_all()

    async def _close_pc(self) -> None:
        if self.pc is not None:
            await close_peer(self.pc)
            self.pc = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
