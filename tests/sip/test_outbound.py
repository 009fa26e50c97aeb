"""The bridge dials out (`POST /v1/dial` on its API): a phone that answers talks to a new gateway call; one
that is busy or never answers is reported with its SIP status, and no gateway call is left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.bridges.api import create_api
from gateway.bridges.bridge import SipBridge
from gateway.bridges.settings import BridgeSettings
from tests.fixtures import Gateway, until
from tests.sip.conftest import parrot_similarity


@pytest.fixture
async def dial_api(bridge: SipBridge, bridge_settings: BridgeSettings) -> AsyncIterator[str]:
    """The bridge's API; closed before the leak check of `bridge` runs."""
    server = TestServer(create_api(bridge, bridge_settings), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/v1/dial"))
    await server.close()


async def dial(url: str, **body: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        return response.status, await response.json()


async def test_a_dialled_phone_that_answers_talks_to_a_new_gateway_call(dial_api: str, gateway: Gateway,
                                                                        make_phone) -> None:
    phone = await make_phone(name="callee", codec="pcma", seconds=8.0, auto_answer=True)
    status, answer = await dial(dial_api, to=phone.uri, metadata={"campaign": "renewals"})
    assert status == 201, answer
    call = next(iter(gateway.calls))
    assert answer["call_id"] == call.id and answer["account"] == "direct" and answer["sip_call_id"]
    assert call.metadata["direction"] == "outbound" and call.metadata["campaign"] == "renewals"
    assert call.metadata["to"] == phone.uri
    await phone.wait_for("CALL_CLOSED", timeout=20)  # its WAV ended: it hung up
    await until(lambda: len(gateway.calls) == 0)
    assert parrot_similarity(phone) >= 0.8


async def test_a_dialled_phone_that_never_answers_is_reported_and_cancelled(dial_api: str, gateway: Gateway,
                                                                            make_phone) -> None:
    phone = await make_phone(name="away", seconds=30.0)
    status, answer = await dial(dial_api, to=phone.uri, ring_seconds=2)
    assert status == 409 and answer["error"]["code"] == "no_answer", answer
    assert answer["error"]["sip_status"] == 408
    await phone.wait_for("CALL_CLOSED")  # the INVITE was cancelled
    await until(lambda: len(gateway.calls) == 0)


async def test_a_dialled_phone_that_is_busy_is_reported_with_its_status(dial_api: str, gateway: Gateway,
                                                                        make_phone) -> None:
    phone = await make_phone(name="busy", seconds=30.0)
    dialling = asyncio.create_task(dial(dial_api, to=phone.uri))
    await phone.wait_for("CALL_INCOMING")
    await phone.command("hangup")  # baresip refuses a ringing call with 486 Busy Here
    status, answer = await dialling
    assert status == 409 and answer["error"]["code"] == "busy", answer
    assert answer["error"]["sip_status"] == 486
    await until(lambda: len(gateway.calls) == 0)


@pytest.mark.parametrize("body", [{}, {"to": 5}, {"to": "bob"}, {"to": "sip:a@b", "ring_seconds": 0},
                                  {"to": "sip:a@b", "headers": {"Via": "x"}}, {"to": "sip:a@b", "account": "x"}])
async def test_a_bad_dial_gets_a_clear_error_and_places_nothing(dial_api: str, gateway: Gateway,
                                                                body: dict[str, Any]) -> None:
    status, answer = await dial(dial_api, **body)
    assert status in (400, 404) and answer["error"]["code"] in ("bad_request", "bad_target", "unknown_account")
    assert gateway.calls.created_total == 0
