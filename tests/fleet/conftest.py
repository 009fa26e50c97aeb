"""Fixtures of the fleet tests: a cluster of real programs per test module, and callers through HAProxy."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from gateway.client.caller import Caller
from gateway.fleet.registry import Registry
from tests.fixtures import callers_of
from tests.fleet.cluster import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Redis, the emulator, three replicas and HAProxy; a module sets FLEET_ENV for the replicas' settings."""
    fleet = Cluster(tmp_path_factory.mktemp("fleet"), env=getattr(request.module, "FLEET_ENV", {}))
    try:
        yield fleet.start()
    finally:
        fleet.stop()


@pytest.fixture
async def callers(cluster: Cluster) -> AsyncIterator[Callable[..., Caller]]:
    """aiortc callers that place their calls through HAProxy; each hangs up when the test ends."""
    async with callers_of(cluster.lb_url) as make:
        yield make


@pytest.fixture
async def registry(cluster: Cluster) -> AsyncIterator[Registry]:
    """The test's own view of the fleet's registry (it reads who owns a call)."""
    view = await Registry.connect(cluster.redis_url, "test")
    yield view
    await view.close()


def sse_events(text: str) -> list[dict[str, Any]]:
    """The events of a whole SSE stream's text."""
    return [json.loads(line.removeprefix("data: ")) for line in text.splitlines() if line.startswith("data: ")]


async def fleet_requests(cluster: Cluster) -> dict[str, Counter[str]]:
    """`gateway_fleet_requests` of each replica (asked directly, not through HAProxy), by route."""
    counts: dict[str, Counter[str]] = {}
    async with aiohttp.ClientSession() as http:
        for replica in cluster.gateways:
            async with http.get(f"{replica.url}/metrics") as response:
                text = await response.text()
            counts[replica.name] = Counter({
                line.split('route="')[1].split('"')[0]: int(float(line.split()[-1]))
                for line in text.splitlines() if line.startswith("gateway_fleet_requests_total{")
            })
    return counts
