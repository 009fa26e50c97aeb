"""Drain (contract): on SIGTERM a real `gateway serve` turns /readyz to 503 at once, keeps serving the calls in
progress until they end or GATEWAY_DRAIN_SECONDS passes, then ends them (`server_shutdown`) and exits 0."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.client.caller import Caller, CallRefused
from gateway.client.signals import speech_like
from tests.fixtures import answered
from tests.gateway_process import GatewayProcess, gateway_process
from tests.integration.test_call import say_and_hear_reply

DRAIN_S = 12.0  # room for a resume and a whole turn inside the drain, even on a loaded machine
EXIT_S = 15.0  # after the calls end: cleanup and exit, generously


async def _readyz(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    async with http.get(f"{url}/readyz") as response:
        await response.read()
        return response


async def _until_draining(http: aiohttp.ClientSession, server: GatewayProcess) -> aiohttp.ClientResponse:
    """The signal is delivered asynchronously: poll /readyz (briefly) until it turns."""
    async with asyncio.timeout(3):
        while (response := await _readyz(http, server.url)).status == 200:
            await asyncio.sleep(0.02)
    return response


def _candidate_fragment(caller: Caller) -> str:
    """The caller's own first candidate as a trickle sdpfrag (harmless to add twice)."""
    assert caller.pc is not None
    line = next(l for l in caller.pc.localDescription.sdp.splitlines() if l.startswith("a=candidate:"))
    return f"a=mid:0\r\n{line}\r\n"


async def test_sigterm_mid_call_keeps_serving_it_until_the_deadline_then_ends_it_and_exits_0(tmp_path: Path) -> None:
    async with gateway_process(tmp_path, GATEWAY_DRAIN_SECONDS=str(DRAIN_S)) as server, aiohttp.ClientSession() as http:
        talker = await answered(Caller(server.url))
        leaver = await answered(Caller(server.url))
        assert (await _readyz(http, server.url)).status == 200

        signalled_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        readyz = await _until_draining(http, server)
        assert readyz.status == 503 and readyz.headers["Retry-After"].isdigit()
        late = Caller(server.url)
        with pytest.raises(CallRefused) as refused:
            await late.connect()
        assert (refused.value.status, refused.value.code) == (503, "draining")
        await late.hang_up()

        # Every follow-up of the calls in progress is still answered.
        async with http.get(f"{server.url}/v1/calls/{talker.call_id}") as response:
            assert response.status == 200 and (await response.json())["state"] == "active"
        async with http.patch(f"{server.url}/v1/calls/{talker.call_id}", data=_candidate_fragment(talker),
                              headers={"Content-Type": "application/trickle-ice-sdpfrag"}) as response:
            assert response.status == 204
        async with http.delete(f"{server.url}/v1/calls/{leaver.call_id}") as response:
            assert response.status == 204
        assert (await leaver.wait_for("ended"))["reason"] == "hangup"
        leaver.call_id = None
        await leaver.hang_up()
        await talker.resume()
        await talker.connected.wait()
        await say_and_hear_reply(talker, speech_like(0.8, seed=41))
        replies = [e["text"] for e in talker.of_type("transcript") if e["role"] == "model" and e["final"]]
        assert replies == ["reply 1"], "a turn during the drain is replied to"

        ended = await talker.wait_for("ended", timeout=DRAIN_S + 10)
        assert ended["reason"] == "server_shutdown"
        assert ended["_received"] - signalled_at >= DRAIN_S - 0.1, "the call was cut before the drain deadline"
        assert await server.exit_code(EXIT_S) == 0, server.log()[-3000:]
        talker.call_id = None  # nothing left to DELETE
        await talker.hang_up()
    assert "draining" in server.log()


async def test_the_last_call_hung_up_during_the_drain_lets_the_process_exit_at_once(tmp_path: Path) -> None:
    async with gateway_process(tmp_path, GATEWAY_DRAIN_SECONDS="600") as server, aiohttp.ClientSession() as http:
        caller = await answered(Caller(server.url))
        server.process.send_signal(signal.SIGTERM)
        await _until_draining(http, server)
        async with http.delete(f"{server.url}/v1/calls/{caller.call_id}") as response:
            assert response.status == 204
        # Far inside the 600 s drain: nothing is left to wait for.
        assert await server.exit_code(EXIT_S) == 0, server.log()[-3000:]
        assert (await caller.wait_for("ended", timeout=5))["reason"] == "hangup"
        caller.call_id = None
        await caller.hang_up()


async def test_a_second_signal_ends_the_calls_without_waiting_out_the_drain(tmp_path: Path) -> None:
    async with gateway_process(tmp_path, GATEWAY_DRAIN_SECONDS="600") as server, aiohttp.ClientSession() as http:
        caller = await answered(Caller(server.url))
        server.process.send_signal(signal.SIGINT)
        await _until_draining(http, server)
        server.process.send_signal(signal.SIGTERM)
        assert (await caller.wait_for("ended", timeout=EXIT_S))["reason"] == "server_shutdown"
        assert await server.exit_code(EXIT_S) == 0, server.log()[-3000:]
        caller.call_id = None
        await caller.hang_up()
