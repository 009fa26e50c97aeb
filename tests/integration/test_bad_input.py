"""Bad input gets its documented 4xx JSON error (or an error event) and never disturbs a call in progress."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from gateway.client.signals import speech_like
from tests.audio import best_match
from tests.fixtures import Gateway, answered
from tests.integration.test_call import heard, say_and_hear_reply


async def _data_channel_only_offer() -> str:
    pc = RTCPeerConnection()
    pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def _audio_offer(codec_line: str | None = None) -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    if codec_line is None:
        return sdp
    # Keep only one payload type, renamed to a codec the gateway does not have.
    lines = []
    for line in sdp.splitlines():
        if line.startswith("m=audio"):
            parts = line.split()
            line = " ".join(parts[:3] + ["96"])
        elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")) and not line.startswith(
            ("a=rtpmap:96 ", "a=fmtp:96 ", "a=rtcp-fb:96 ")
        ):
            continue
        elif line.startswith("a=rtpmap:96 "):
            line = codec_line
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("malformed JSON", {"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "bad_json"),
    ("JSON that is not an object", {"json": [1, 2]}, 400, "bad_json"),
    ("no sdp", {"json": {"type": "offer"}}, 400, "bad_request"),
    ("not SDP at all", {"json": {"type": "offer", "sdp": "hello"}}, 400, "malformed_sdp"),
    ("broken SDP", {"json": {"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:x\r\n"}},
     400, "malformed_sdp"),
    ("wrong content type", {"data": "hello", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
    ("oversized body", {"json": {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 20_000}}, 413, "too_large"),
    ("unknown profile", {"json": {"type": "offer", "sdp": "OFFER", "profile": "nope"}}, 400, "unknown_profile"),
    ("bad metadata", {"json": {"type": "offer", "sdp": "OFFER", "metadata": [1]}}, 400, "bad_metadata"),
    ("resume of an unknown call", {"json": {"type": "offer", "sdp": "OFFER", "resume": {"call_id": "x", "token": "y"}}},
     404, "call_not_found"),
    ("resume without token", {"json": {"type": "offer", "sdp": "OFFER", "resume": {"call_id": "x"}}},
     400, "bad_request"),
]


async def _post(http: aiohttp.ClientSession, url: str, request: dict[str, Any], offer: str) -> aiohttp.ClientResponse:
    if "json" in request:
        body = json.loads(json.dumps(request["json"]).replace('"OFFER"', json.dumps(offer)))
        return await http.post(url, json=body)
    return await http.post(url, data=request["data"], headers=request["headers"])


async def test_each_bad_request_gets_its_error_and_the_call_in_progress_goes_on(gateway: Gateway, make_caller) -> None:
    caller = await answered(make_caller())
    offer = await _audio_offer()
    async with aiohttp.ClientSession() as http:
        for name, request, status, code in CASES:
            response = await _post(http, f"{gateway.url}/v1/calls", request, offer)
            body = await response.json()
            assert (response.status, body["error"]["code"]) == (status, code), name
            assert body["error"]["message"], name
        for method in ("GET", "DELETE"):
            async with http.request(method, f"{gateway.url}/v1/calls/no-such-call") as response:
                assert response.status == 404 and (await response.json())["error"]["code"] == "call_not_found"
        async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer", "sdp": await _data_channel_only_offer()}) as response:
            assert (response.status, (await response.json())["error"]["code"]) == (422, "no_audio")
        async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer", "sdp": await _audio_offer("a=rtpmap:96 AMR/8000")}) as response:
            assert (response.status, (await response.json())["error"]["code"]) == (422, "no_common_codec")
        async with http.post(f"{gateway.url}/whip", json={"sdp": offer}) as response:
            assert response.status == 415
        async with http.patch(f"{gateway.url}/v1/calls/{caller.call_id}", data="x",
                              headers={"Content-Type": "text/plain"}) as response:
            assert response.status == 415
        async with http.post(f"{gateway.url}/v1/calls", json={"type": "offer", "sdp": offer,
                             "resume": {"call_id": caller.call_id, "token": "wrong"}}) as response:
            assert (response.status, (await response.json())["error"]["code"]) == (403, "bad_resume_token")
    assert len(gateway.calls) == 1, "bad requests must not leave calls behind"
    utterance = speech_like(1.0, seed=11)
    await say_and_hear_reply(caller, utterance)
    assert best_match(utterance, heard(caller))[0] > 0.8, "the call in progress was disturbed"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", "bad_json"),
        (b"\x00\x01", "bad_message"),
        ('"just a string"', "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "text"}', "bad_event"),
        ('{"type": "text", "text": "' + "x" * 5000 + '"}', "bad_event"),
        ('{"type": "tool_result", "id": "nope", "result": 1}', "bad_event"),
    ],
)
async def test_junk_on_the_data_channel_gets_an_error_event_and_the_call_goes_on(make_caller, message, code) -> None:
    caller = await answered(make_caller())
    mark = len(caller.events)
    caller.channel.send(message)
    error = await caller.wait_for("error", since=mark)
    assert error["code"] == code
    caller.send({"type": "ping", "id": 42})
    assert (await caller.wait_for("pong", since=mark))["id"] == 42
