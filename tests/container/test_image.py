"""The gateway image as a user runs it: built from the Dockerfile, on a bridge network with its HTTP port and a
UDP range published on 127.0.0.1 (GATEWAY_ICE_PORT_RANGE, GATEWAY_ICE_PUBLIC_ADDRESS: no relay), a non-default
GATEWAY_PORT, and stopped with a timeout above its drain."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest

from gateway.client.caller import Caller
from tests.container.podman import Podman
from tests.fixtures import answered
from tests.gateway_process import free_port, wait_healthy
from tests.integration.test_nat import call_with_one_turn, host_candidates
from tests.nat import free_udp_range

pytestmark = pytest.mark.container

DRAIN_S = 4.0
STOP_TIMEOUT_S = 20  # podman stop -t: above the drain, as the README says (podman's default is 10 s)
START_S = 60.0


@dataclass
class Container:
    name: str
    url: str
    media_ports: range


@asynccontextmanager
async def gateway_container(podman: Podman, image: str, network: str) -> AsyncIterator[Container]:
    """The image on `network`: its GATEWAY_PORT and media range published on 127.0.0.1, the same numbers inside."""
    port, media = free_port(), free_udp_range(10, ("127.0.0.1",))
    span = f"{media.start}-{media[-1]}"
    name = f"gateway-test-{port}"
    podman("run", "--detach", "--name", name, "--network", network,
           "--publish", f"127.0.0.1:{port}:{port}/tcp", "--publish", f"127.0.0.1:{span}:{span}/udp",
           "--env", f"GATEWAY_PORT={port}", "--env", f"GATEWAY_ICE_PORT_RANGE={span}",
           "--env", "GATEWAY_ICE_PUBLIC_ADDRESS=127.0.0.1", "--env", f"GATEWAY_DRAIN_SECONDS={DRAIN_S}", image)
    container = Container(name, f"http://127.0.0.1:{port}", media)
    try:
        await wait_healthy(container.url, timeout=START_S)
        yield container
    finally:
        code, logs = await podman.run_async("logs", name)
        print(f"--- {name} ---\n{logs[-5000:]}")  # shown by pytest when the test fails
        podman("rm", "--force", "--time", "0", name)


async def test_its_healthcheck_follows_a_non_default_gateway_port(podman: Podman, gateway_image: str,
                                                                 network: str) -> None:
    async with gateway_container(podman, gateway_image, network) as container:
        code, output = await podman.run_async("healthcheck", "run", container.name)
        assert code == 0, f"healthcheck: exit {code} {output!r}"
        _, status = await podman.run_async("inspect", "--format", "{{.State.Health.Status}}", container.name)
        assert status.strip() == "healthy"


async def test_a_call_reaches_the_container_through_its_published_udp_range(podman: Podman, gateway_image: str,
                                                                            network: str) -> None:
    async with gateway_container(podman, gateway_image, network) as container:
        advertised = host_candidates(await call_with_one_turn(container.url, seed=61))
    # Inside, the gateway sits on the bridge's private address: only the advertised one reaches it.
    assert advertised and all(address == "127.0.0.1" and port in container.media_ports for address, port in advertised)


async def test_podman_stop_with_a_timeout_above_the_drain_drains_the_call_and_exits_0(
    podman: Podman, gateway_image: str, network: str
) -> None:
    async with gateway_container(podman, gateway_image, network) as container, aiohttp.ClientSession() as http:
        caller = await answered(Caller(container.url))
        stopped_at = time.monotonic()
        stop = asyncio.create_task(podman.run_async("stop", "--time", str(STOP_TIMEOUT_S), container.name))
        async with asyncio.timeout(5):  # SIGTERM arrives: /readyz turns, and is still answered
            while True:
                async with http.get(f"{container.url}/readyz") as response:
                    if response.status == 503:
                        break
                await asyncio.sleep(0.05)
        async with http.get(f"{container.url}/v1/calls/{caller.call_id}") as response:
            assert response.status == 200, "the call in progress must still be served during the drain"
        ended = await caller.wait_for("ended", timeout=DRAIN_S + 10)
        assert ended["reason"] == "server_shutdown"
        assert ended["_received"] - stopped_at >= DRAIN_S - 0.1, "the call was cut before the drain deadline"
        code, _ = await stop
        assert code == 0
        _, state = await podman.run_async("inspect", "--format", "{{json .State}}", container.name)
        assert json.loads(state)["ExitCode"] == 0, state
        caller.call_id = None
        await caller.hang_up()
