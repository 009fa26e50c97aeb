"""The wire format with a plain WebSocket client: every key spelling, both base64 alphabets, key in the query."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.emulator import Emulator
from gateway.media.resample import StreamResampler

from .conftest import MODEL, Recorder, client_for, live_config, send_audio
from .signals import RATE_IN, expected_reply, from_pcm, pcm, peak_ncc, utterance

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
SETUP_SNAKE = {
    "setup": {
        "model": f"models/{MODEL}",
        "realtime_input_config": {"automatic_activity_detection": {"silence_duration_ms": 200}},
        "input_audio_transcription": {},
        "output_audio_transcription": {},
    }
}


def _uri(emu: Emulator, query: str = "") -> str:
    return emu.url.replace("https://", "wss://") + "/" + PATH + query  # "//ws/...", as the SDK sends it


def _open(emu: Emulator, query: str = "", headers: dict[str, str] | None = None) -> Any:
    return connect(_uri(emu, query), ssl=emu.client_ssl_context(), additional_headers=headers)


async def _frame(ws: ClientConnection) -> dict[str, Any]:
    raw = await ws.recv()
    assert isinstance(raw, bytes), "the server sends JSON in binary frames"
    return json.loads(raw)


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _audio_message(samples: bytes, variant: int) -> dict[str, Any]:
    """Four spellings: camelCase or snake_case keys, standard or URL-safe base64, padded or not."""
    std, url = base64.b64encode(samples).decode(), base64.urlsafe_b64encode(samples).decode()
    data = [std, url.rstrip("="), std.rstrip("="), url][variant % 4]
    if variant % 2:
        return {"realtime_input": {"audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}}}
    return {"realtimeInput": {"audio": {"data": data, "mimeType": "audio/pcm;rate=16000"}}}


async def test_every_key_spelling_and_base64_variant_makes_one_clean_utterance(make_emulator) -> None:
    emu: Emulator = await make_emulator(api_key="query-key")
    audio, speech = utterance(0.6)
    async with _open(emu, "?key=query-key") as ws:
        await ws.send(json.dumps(SETUP_SNAKE))
        assert await _frame(ws) == {"setupComplete": {}}
        for index, start in enumerate(range(0, audio.size, 320)):
            await ws.send(json.dumps(_audio_message(pcm(audio[start : start + 320]), index)))
        frames = []
        while not frames or "turnComplete" not in frames[-1].get("serverContent", {}):
            frames.append(await _frame(ws))
    turns = [f["serverContent"]["modelTurn"] for f in frames if "modelTurn" in f["serverContent"]]
    reply = b"".join(base64.b64decode(turn["parts"][0]["inlineData"]["data"]) for turn in turns)
    assert peak_ncc(from_pcm(reply), expected_reply(speech)) > 0.9
    assert frames[0] == {"serverContent": {"inputTranscription": {"text": "[speech 0.60 s]", "finished": True}}}
    assert not any("_" in key for key in _keys(frames)), "server keys are lowerCamelCase"
    assert emu.connections[0].counts["audio"] == audio.size // 320 + (audio.size % 320 > 0)


async def test_deprecated_media_chunks_video_and_context_updates_are_accepted_and_counted(emu: Emulator) -> None:
    audio, _ = utterance(0.3)
    jpeg = base64.urlsafe_b64encode(b"\xff\xd8\xff\xe0fake jpeg").decode()
    async with _open(emu) as ws:
        await ws.send(json.dumps(SETUP_SNAKE))
        await _frame(ws)
        await ws.send(json.dumps({"realtime_input": {"video": {"data": jpeg, "mime_type": "image/jpeg"}}}))
        await ws.send(json.dumps({"contextUpdate": {"systemInstruction": {"parts": [{"text": "Be brief."}]}}}))
        for start in range(0, audio.size, 320):
            data = base64.b64encode(pcm(audio[start : start + 320])).decode()
            await ws.send(json.dumps({"realtime_input": {"mediaChunks": [{"data": data, "mime_type": "audio/pcm"}]}}))
        while "turnComplete" not in (await _frame(ws)).get("serverContent", {}):
            pass
    counts = emu.connections[0].counts
    assert counts["video"] == 1 and counts["contextUpdate"] == 1
    assert counts["audio"] == -(-audio.size // 320)
    assert emu.connections[0].audio_in_samples == audio.size


async def test_audio_at_another_rate_is_resampled_to_16khz(emu: Emulator) -> None:
    async with _open(emu) as ws:
        await ws.send(json.dumps(SETUP_SNAKE))
        await _frame(ws)
        data = base64.b64encode(bytes(2 * 4800)).decode()  # 100 ms at 48 kHz
        await ws.send(json.dumps({"realtimeInput": {"audio": {"data": data, "mimeType": "audio/pcm;rate=48000"}}}))
        await emu.wait_for(lambda: emu.connections[0].audio_in_samples > 0)
    # A streaming converter holds back its filter delay until more audio comes.
    held_back = RATE_IN // 10 - emu.connections[0].audio_in_samples
    assert 0 <= held_back <= StreamResampler(48_000, RATE_IN).delay_s * RATE_IN + 1


@pytest.mark.parametrize(
    "headers, query",
    [
        ({"x-goog-api-key": "k"}, ""),
        ({"Authorization": "Bearer k"}, ""),
        ({"Authorization": "Token k"}, ""),
        ({}, "?key=k"),
    ],
)
async def test_the_key_is_taken_from_header_authorization_or_query(
    make_emulator, headers: dict[str, str], query: str
) -> None:
    emu: Emulator = await make_emulator(api_key="k")
    async with _open(emu, query, headers) as ws:
        await ws.send(json.dumps(SETUP_SNAKE))
        assert await _frame(ws) == {"setupComplete": {}}


async def test_a_stalled_connection_still_answers_pings(emu: Emulator) -> None:
    async with _open(emu) as ws:
        await ws.send(json.dumps(SETUP_SNAKE))
        await _frame(ws)
        emu.connections[0].stall(None)
        await ws.send(json.dumps({"realtimeInput": {"text": "hello?"}}))
        async with asyncio.timeout(2):
            await (await ws.ping())
        assert emu.connections[0].stalled and emu.connections[0].counts["text"] == 0


@pytest.mark.parametrize("query", ["", "?key=other"])
async def test_a_missing_or_wrong_key_is_refused_with_1007(make_emulator, query: str) -> None:
    emu: Emulator = await make_emulator(api_key="k")
    async with _open(emu, query) as ws:
        await ws.send(json.dumps(SETUP_SNAKE))
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
    rcvd = caught.value.rcvd
    assert (rcvd.code, rcvd.reason) == (1007, "API key not valid. Please pass a valid API key.")


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(['{"realtimeInput": {"text": "hi"}}'], id="first-message-not-setup"),
        pytest.param(["{not json"], id="malformed-json"),
        pytest.param([json.dumps(SETUP_SNAKE), json.dumps(SETUP_SNAKE)], id="second-setup"),
        pytest.param([json.dumps(SETUP_SNAKE), '{"bogusMessage": {}}'], id="unknown-message"),
        pytest.param([json.dumps(SETUP_SNAKE), '{"realtimeInput": {}, "clientContent": {}}'], id="two-top-level-keys"),
        pytest.param([json.dumps(SETUP_SNAKE), '{"realtimeInput": {"activityStart": {}}}'], id="activity-start-aad-on"),
        pytest.param([json.dumps(SETUP_SNAKE), '{"realtimeInput": {"audio": {"data": "!!!"}}}'], id="bad-base64"),
        pytest.param(['{"setup": {}}'], id="setup-without-model"),
        pytest.param(['{"setup": {"model": "models/gemini-3.8-live", "tools": {}}}'], id="tools-not-a-list"),
        pytest.param(
            [json.dumps(SETUP_SNAKE), '{"client_content": {"turns": [{"parts": "hi"}], "turn_complete": true}}'],
            id="parts-not-a-list",
        ),
    ],
)
async def test_protocol_errors_close_1007_and_leave_other_connections_alone(emu: Emulator, frames: list[str]) -> None:
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as healthy:
        async with Recorder(healthy) as rec:
            async with _open(emu) as ws:
                for frame in frames:
                    await ws.send(frame)
                with pytest.raises(ConnectionClosed) as caught:
                    while True:
                        await ws.recv()
            assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (1007, "Request contains an invalid argument.")
            await send_audio(healthy, utterance(0.3)[0])
            await rec.next("turn_complete")
    assert rec.texts("output_transcription") == ["reply 1"]
