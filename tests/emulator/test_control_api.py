"""The HTTPS control API (for a standalone emulator) and connection tagging by call id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from google.genai import errors

from gateway.emulator import Emulator

from .conftest import MODEL, Recorder, client_for, live_config


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=emu.client_ssl_context())
    async with aiohttp.ClientSession(base_url=emu.url, connector=connector) as session:
        yield session


async def _fault(http: aiohttp.ClientSession, body: Any) -> tuple[int, Any]:
    async with http.post("/emulator/faults", json=body) as response:
        return response.status, await response.json()


async def test_connections_are_listed_with_their_call_id_and_state(emu: Emulator, http: aiohttp.ClientSession) -> None:
    tagged = client_for(emu, headers={"x-gateway-call-id": "call-42"})
    async with tagged.aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await session.send_realtime_input(text="hi")
            await rec.next("turn_complete")
            async with http.get("/emulator/connections") as response:
                listed = await response.json()
            assert [c.call_id for c in emu.active("call-42")] == ["call-42"]
            assert emu.active("call-7") == []
    assert listed == [
        {
            "id": 1, "call_id": "call-42", "model": MODEL, "api_version": "v1beta", "open": True, "closed_code": None,
            "stalled": False, "resumed": False, "turn": 1, "audio_in_s": 0.0,
            "counts": {"setup": 1, "realtimeInput": 1, "text": 1}, "sent": len(emu.connections[0].sent_kinds),
        }
    ]
    assert emu.active() == []


async def test_faults_can_be_injected_over_https(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            conn = emu.connections[0]
            stall = {"fault": "stall", "connection": conn.id, "seconds": None}
            assert await _fault(http, stall) == (200, {"fault": "stall", "connections": [1]})
            assert conn.stalled
            assert (await _fault(http, {"fault": "unstall", "connection": "all"}))[0] == 200
            assert not conn.stalled
            status, _ = await _fault(http, {"fault": "close", "connection": conn.id, "code": 1008, "reason": "Go away"})
            error = await rec.closed()
    assert status == 200
    assert isinstance(error, errors.APIError) and (error.code, error.details) == (1008, "Go away")

    refuse = {"fault": "refuse_setup", "count": 1, "code": 1013}
    assert await _fault(http, refuse) == (200, {"fault": "refuse_setup", "pending": 1})
    with pytest.raises(errors.APIError) as caught:
        async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()):
            pass
    assert caught.value.code == 1013

    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            drop = {"fault": "drop", "connection": "all"}
            assert await _fault(http, drop) == (200, {"fault": "drop", "connections": [3]})
            assert (await rec.closed()).code == 1006


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"fault": "explode", "connection": "all"}, 400, "invalid_fault"),
        ({"fault": "close", "connection": "all", "code": 1006}, 400, "invalid_code"),
        ({"fault": "close", "connection": "all", "reason": 5}, 400, "invalid_reason"),
        ({"fault": "stall", "connection": "all", "seconds": -1}, 400, "invalid_seconds"),
        ({"fault": "refuse_setup", "count": 0}, 400, "invalid_count"),
        ({"fault": "drop", "connection": "first"}, 400, "invalid_connection"),
        ({"fault": "drop", "connection": 99}, 404, "unknown_connection"),
        (["not", "an", "object"], 400, "malformed"),
    ],
)
async def test_bad_fault_requests_get_a_json_error(
    http: aiohttp.ClientSession, body: Any, status: int, code: str
) -> None:
    got_status, got = await _fault(http, body)
    assert got_status == status and got["error"]["code"] == code and got["error"]["message"]


async def test_malformed_json_gets_400(http: aiohttp.ClientSession) -> None:
    async with http.post("/emulator/faults", data=b"{oops") as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "malformed"
