"""Fixtures for tests with real parts (registered by tests/conftest.py): a gateway on 127.0.0.1 with its embedded
emulator, real aiortc callers, and a leak check after each test."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection

from gateway.api.keys import CALLS
from gateway.app import EMULATOR, create_app
from gateway.calls.manager import CallManager
from gateway.client.caller import Caller
from gateway.config import Settings
from gateway.emulator import Emulator, EmulatorConfig

OUR_TASK_PREFIXES = ("call-", "live-", "uplink", "caller-", "close-")


@dataclass
class Gateway:
    url: str
    emulator: Emulator
    calls: CallManager
    server: TestServer  # a test may stop it


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """Gateway settings; a test changes some with `@pytest.mark.parametrize("settings", [{...}], indirect=True)`."""
    return Settings(ice_addresses=("127.0.0.1",), **getattr(request, "param", {}))


@pytest.fixture
def emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    """The embedded emulator's settings; parametrize indirectly like `settings`."""
    return EmulatorConfig(**{"mode": "burst", "seed": 7, **getattr(request, "param", {})})


@pytest.fixture
async def gateway(aiohttp_server: Any, settings: Settings, emulator_config: EmulatorConfig) -> Gateway:
    app = create_app(settings, emulator_config=emulator_config)
    server = await aiohttp_server(app, host="127.0.0.1")
    return Gateway(str(server.make_url("")).rstrip("/"), app[EMULATOR], app[CALLS], server)


@pytest.fixture
async def no_leaks(gateway: Gateway) -> AsyncIterator[None]:
    """After the test (and its callers' hang-ups): no calls, Live connections, peers, tasks or sockets left."""
    sockets_before = _open_sockets()
    yield
    await _settle(lambda: len(gateway.calls) == 0 and not gateway.emulator.active())
    assert len(gateway.calls) == 0, "calls left behind"
    assert not gateway.emulator.active(), "Live connections left open"
    gc.collect()
    open_peers = [o for o in gc.get_objects() if type(o) is RTCPeerConnection and o.connectionState != "closed"]
    assert not open_peers, f"{len(open_peers)} peer connections left open"
    assert not _our_tasks(), f"tasks left running: {sorted(t.get_name() for t in _our_tasks())}"
    await _settle(lambda: _open_sockets() <= sockets_before)
    assert _open_sockets() <= sockets_before, f"sockets: {sockets_before} before, {_open_sockets()} after"


@pytest.fixture
async def make_caller(gateway: Gateway, no_leaks: None) -> AsyncIterator[Callable[..., Caller]]:
    """Callers for this test; every one hangs up when the test ends."""
    async with callers_of(gateway.url) as make:
        yield make


@contextlib.asynccontextmanager
async def callers_of(url: str) -> AsyncIterator[Callable[..., Caller]]:
    """Make callers of `url`; every one hangs up at the end."""
    made: list[Caller] = []

    def make(**options: Any) -> Caller:
        caller = Caller(url, **options)
        made.append(caller)
        return caller

    try:
        yield make
    finally:
        await asyncio.gather(*(caller.hang_up() for caller in made))


async def answered(caller: Caller) -> Caller:
    """Place the call and wait until the Live session is up and media flows."""
    await caller.connect()
    await caller.wait_for("ready")
    await caller.connected.wait()
    return caller


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `condition` holds; TimeoutError after `timeout`."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def _our_tasks() -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and t.get_name().startswith(OUR_TASK_PREFIXES)]


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


async def _settle(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Give teardown a moment to finish; return as soon as `condition` holds."""
    try:
        await until(condition, timeout)
    except TimeoutError:
        pass
