"""`gateway sip-bridge` as its own process, as an operator runs it."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp

from tests.fixtures import Gateway
from tests.sip.programs import Janus, stop


async def test_sip_bridge_prints_where_to_call_serves_its_health_and_stops_on_sigterm(
        janus: Janus, gateway: Gateway) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "sip-bridge", "--janus", janus.url, "--gateway", gateway.url,
        "--port", "0", stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            api = re.search(r"API on (http://\S+),", (await process.stdout.readline()).decode())
            ready = (await process.stdout.readline()).decode().strip()
        assert api and re.fullmatch(r"sip: ready direct at sip:gemini@127\.0\.0\.1:\d+", ready), ready
        async with aiohttp.ClientSession() as http, http.get(api.group(1) + "/healthz") as response:
            health = await response.json()
        assert response.status == 200 and health["janus"] == "ready"
        assert health["lines"] == [{"account": "direct", "uri": ready.rsplit(" ", 1)[1], "calls": 0,
                                    "max_calls": 10}]
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        await stop(process)
