"""Calls whose peer connection the gateway offers (`"type": "offer_request"`, for a phone a bridge dials):
the offer, a real aiortc peer answering it, the answer's mistakes, and an answer that never comes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from tests.fixtures import Gateway, until


@pytest.fixture
async def http(no_leaks: None) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def request_offer(http: aiohttp.ClientSession, gateway: Gateway, **body: Any) -> dict[str, Any]:
    async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer_request", **body}) as response:
        assert response.status == 201, await response.text()
        assert response.headers["Location"] == f"/v1/calls/{(offer := await response.json())['call_id']}"
        return offer


async def post_answer(http: aiohttp.ClientSession, gateway: Gateway, call_id: str, sdp: str,
                      content_type: str = "application/sdp") -> tuple[int, dict[str, Any]]:
    async with http.post(f"{gateway.url}/v1/calls/{call_id}/answer", data=sdp,
                         headers={"Content-Type": content_type}) as response:
        return response.status, (await response.json() if response.status != 204 else {})


async def answering_peer(offer_sdp: str) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTrack(AudioStreamTrack())  # aiortc's silence
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return pc, pc.localDescription.sdp


async def test_the_gateways_offer_lists_the_profiles_codecs_and_an_answer_connects_it(
        http: aiohttp.ClientSession, gateway: Gateway) -> None:
    offer = await request_offer(http, gateway, profile="phone", metadata={"to": "sip:bob@example.com"})
    assert offer["type"] == "offer" and offer["resume_token"]
    audio = offer["sdp"].split("m=audio", 1)[1]
    names = re.findall(r"a=rtpmap:\d+ ([\w-]+)/(\d+)", audio)
    assert names == [("PCMU", "8000"), ("PCMA", "8000"), ("G722", "8000"), ("telephone-event", "8000")]
    assert offer["sdp"].count("a=fingerprint:") == 1 and "a=ptime:20" in audio
    call = gateway.calls.get(offer["call_id"])
    assert call.state == "offered" and call.metadata == {"to": "sip:bob@example.com"}
    pc, answer = await answering_peer(offer["sdp"])
    try:
        assert await post_answer(http, gateway, call.id, answer) == (204, {})
        await until(lambda: pc.connectionState == "connected" and call.state == "active")
        assert call.leg is not None and call.leg.codec == "pcmu"
        status, error = await post_answer(http, gateway, call.id, answer)
        assert status == 409 and error["error"]["code"] == "not_offered"
    finally:
        await pc.close()
        await gateway.calls.hang_up(call.id)


async def test_a_bad_answer_gets_a_clear_error_and_the_offer_still_waits(http: aiohttp.ClientSession,
                                                                         gateway: Gateway) -> None:
    offer = await request_offer(http, gateway)
    call_id = offer["call_id"]
    for sdp, content_type, status, code in (("hello", "application/sdp", 400, "malformed_sdp"),
                                            ("v=0", "text/plain", 415, "unsupported_media_type")):
        answer = await post_answer(http, gateway, call_id, sdp, content_type)
        assert (answer[0], answer[1]["error"]["code"]) == (status, code)
    status, error = await post_answer(http, gateway, "nope", "v=0")
    assert status == 404 and error["error"]["code"] == "call_not_found"
    assert gateway.calls.get(call_id).state == "offered"
    pc, answer = await answering_peer(offer["sdp"])
    try:
        assert (await post_answer(http, gateway, call_id, answer))[0] == 204
        await until(lambda: pc.connectionState == "connected")
    finally:
        await pc.close()
        await gateway.calls.hang_up(call_id)


@pytest.mark.parametrize("settings", [{"answer_timeout_s": 0.5}], indirect=True)
async def test_an_offer_never_answered_ends_the_call_as_no_answer(http: aiohttp.ClientSession,
                                                                   gateway: Gateway) -> None:
    offer = await request_offer(http, gateway)
    await until(lambda: len(gateway.calls) == 0)
    async with http.get(f"{gateway.url}/v1/calls/{offer['call_id']}") as response:
        ended = await response.json()
    assert (ended["state"], ended["end_reason"]) == ("ended", "no_answer")
