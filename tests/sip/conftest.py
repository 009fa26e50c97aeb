"""Phone calls through real programs: baresip (the phone) -> Janus's SIP plugin -> the bridge -> a real gateway.

Janus and every phone are started per test with their own config in a temporary folder, on 127.0.0.1. The
gateway (with its emulator) and the bridge run in the test's event loop, so the test sees both sides. The
tests need Debian's janus, baresip, sip-tester and gcc: skipped without them, or failed when CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from gateway.bridges.bridge import SipBridge
from gateway.bridges.settings import BridgeSettings
from gateway.calls.call import Call
from gateway.client.signals import silence, speech_like
from tests.audio import best_match
from tests.fixtures import Gateway, until
from tests.sip.baresip import MIC_RATE, Phone
from tests.sip.programs import Janus, compile_shim, require_programs

LEAD_S, SPEECH_S = 1.0, 1.5

pytestmark = pytest.mark.sip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/sip/" in str(item.fspath):
            item.add_marker(pytest.mark.sip)


@pytest.fixture(scope="session")
def shims(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_programs()
    folder = tmp_path_factory.mktemp("shims")
    return {name: compile_shim(name, folder) for name in ("loopback_visible", "alsa_paced")}


@pytest.fixture
async def janus(tmp_path: Path, shims: dict[str, Path]) -> AsyncIterator[Janus]:
    server = Janus(tmp_path / "janus", shims["loopback_visible"])
    server.folder.mkdir()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def bridge_settings(janus: Janus, gateway: Gateway) -> BridgeSettings:
    return BridgeSettings(janus_url=janus.url, gateway_url=gateway.url, direct_max_calls=6, gateway_lost_s=3.0)


@pytest.fixture
async def bridge(bridge_settings: BridgeSettings, no_leaks: None) -> AsyncIterator[SipBridge]:
    """The bridge in direct mode, registered and ready; its ready lines are in `bridge.announced`."""
    async with running_bridge(bridge_settings) as bridge:
        yield bridge


@contextlib.asynccontextmanager
async def running_bridge(settings: BridgeSettings) -> AsyncIterator[SipBridge]:
    announced: list[str] = []
    async with aiohttp.ClientSession() as http:
        bridge = SipBridge(settings, http, announce=announced.append)
        bridge.announced = announced  # type: ignore[attr-defined]
        task = asyncio.create_task(bridge.run(), name="sip-bridge-under-test")
        try:
            async with asyncio.timeout(20):
                await bridge.ready.wait()
            yield bridge
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def make_phone(tmp_path: Path,
                     shims: dict[str, Path]) -> AsyncIterator[Callable[..., Coroutine[Any, Any, Phone]]]:
    """`await make_phone(codec="pcma", seconds=12, seed=3)`: a started phone whose microphone says one
    utterance (1 s in) and then stays silent until `seconds`."""
    phones: list[Phone] = []

    async def make(name: str = "phone", codec: str = "pcmu", seconds: float = 10.0, seed: int = 1,
                   auto_answer: bool = False, samples: np.ndarray | None = None) -> Phone:
        phone = Phone(tmp_path / f"{name}-{len(phones)}", shims["alsa_paced"], name, codec, auto_answer)
        phones.append(phone)
        await phone.start(microphone(seconds, seed) if samples is None else samples)
        return phone

    yield make
    await asyncio.gather(*(phone.stop() for phone in phones))


def microphone(seconds: float, seed: int) -> np.ndarray:
    return np.concatenate([silence(LEAD_S, rate=MIC_RATE), speech_like(SPEECH_S, seed=seed, rate=MIC_RATE),
                           silence(seconds - LEAD_S - SPEECH_S, rate=MIC_RATE)])


async def history(gateway: Gateway, call_id: str) -> list[dict[str, Any]]:
    """A call's events from the gateway's SSE stream (its whole history; the stream closes after `ended`)."""
    events = []
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/v1/calls/{call_id}/events") as response:
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data:"):
                events.append(json.loads(line[5:]))
    return events


def direct_uri(bridge: SipBridge) -> str:
    return bridge.lines[0].uri


async def call_through(bridge: SipBridge, gateway: Gateway, phone: Phone) -> Call:
    """`phone` calls the bridge; the gateway's call, once both legs are up (and the call has its metadata)."""
    await phone.dial(direct_uri(bridge))
    await phone.wait_for("CALL_ESTABLISHED")
    await until(lambda: any(call.metadata for call in gateway.calls))
    return next(call for call in gateway.calls if call.metadata)


def parrot_similarity(phone: Phone, said_at_s: float = LEAD_S) -> float:
    """How faithfully the phone heard back (its "dec" recording) the utterance it sent ("enc") at `said_at_s`."""
    sent, rate = phone.recording("enc")
    heard, heard_rate = phone.recording("dec")
    assert heard_rate == rate
    utterance = sent[int(said_at_s * rate):int((said_at_s + SPEECH_S) * rate)]
    return best_match(utterance, heard)[0]
