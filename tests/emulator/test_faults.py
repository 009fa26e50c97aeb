"""Connection lifecycle and faults, and the SDK exception each one produces."""

from __future__ import annotations

import asyncio

import pytest
from google.genai import errors
from websockets.exceptions import InvalidStatus

from gateway.emulator import Emulator

from .conftest import MODEL, Recorder, client_for, live_config, send_audio
from .signals import utterance


async def _refused(emu: Emulator, model: str = MODEL, **client: object) -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:
        async with client_for(emu, **client).aio.live.connect(model=model, config=live_config()):
            pass
    return caught.value


async def test_goaway_comes_before_the_lifetime_ends_then_the_connection_closes_1011(make_emulator) -> None:
    emu: Emulator = await make_emulator(lifetime_s=1.0, goaway_notice_s=0.4)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            go_away = (await rec.next("goAway")).go_away
            error = await rec.closed()
    assert go_away.time_left.endswith("s") and float(go_away.time_left[:-1]) == pytest.approx(0.4, abs=0.15)
    assert isinstance(error, errors.APIError)
    assert (error.code, error.details) == (1011, "Deadline expired before operation could complete.")
    assert emu.connections[0].closed_code == 1011


async def test_goaway_notice_is_at_most_half_the_lifetime(make_emulator) -> None:
    emu: Emulator = await make_emulator(lifetime_s=0.6)  # default notice 10 s
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            go_away = (await rec.next("goAway")).go_away
            await rec.closed()
    assert float(go_away.time_left[:-1]) == pytest.approx(0.3, abs=0.15)


async def test_a_dropped_connection_raises_apierror_1006(emu: Emulator) -> None:
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await emu.connections[0].drop()
            error = await rec.closed()
    assert isinstance(error, errors.APIError) and error.code == 1006
    assert emu.connections[0].closed_code == 1006


async def test_a_close_with_code_and_reason_reaches_the_sdk(emu: Emulator) -> None:
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await emu.connections[0].close(1008, "Policy violation for the test")
            error = await rec.closed()
    assert isinstance(error, errors.APIError)
    assert (error.code, error.details) == (1008, "Policy violation for the test")


async def test_a_long_close_reason_is_cut_to_123_bytes_on_a_character_boundary(emu: Emulator) -> None:
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await emu.connections[0].close(1011, "é" * 100)
            error = await rec.closed()
    assert error.details == "é" * 61  # 122 bytes: the 62nd "é" would not fit


async def test_a_refused_setup_raises_from_connect_and_the_next_one_works(emu: Emulator) -> None:
    emu.refuse_next_setups(count=2)
    emu.refuse_next_setups(code=1007, reason="Request contains an invalid argument.")
    first, second, third = [await _refused(emu) for _ in range(3)]
    unavailable = (1011, "The service is currently unavailable.")
    assert (first.code, first.details) == (second.code, second.details) == unavailable
    assert (third.code, third.details) == (1007, "Request contains an invalid argument.")
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await session.send_realtime_input(text="hello")
            await rec.next("turn_complete")


async def test_a_stalled_connection_is_silent_for_the_stall_then_normal_again(emu: Emulator) -> None:
    loop = asyncio.get_running_loop()
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            emu.connections[0].stall(0.8)
            stalled_at = loop.time()
            await session.send_realtime_input(text="are you there?")
            await rec.next("audio")
            first_message_after = rec.times[0] - stalled_at
            await rec.next("turn_complete")
            emu.connections[0].stall(None)  # until unstall()
            await session.send_realtime_input(text="again")
            await asyncio.sleep(0.3)  # a negative check: nothing may arrive while stalled
            assert len(rec.messages) == rec.cursor
            emu.connections[0].unstall()
            await rec.next("turn_complete")
    assert first_message_after >= 0.75
    assert rec.texts("output_transcription") == ['reply 1: "are you there?"', 'reply 2: "again"']


async def test_a_wrong_api_key_closes_1007_and_the_right_one_works(make_emulator) -> None:
    emu: Emulator = await make_emulator(api_key="right-key")
    error = await _refused(emu, api_key="wrong-key")
    assert (error.code, error.details) == (1007, "API key not valid. Please pass a valid API key.")
    async with client_for(emu, api_key="right-key").aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await send_audio(session, utterance(0.3)[0])
            await rec.next("turn_complete")


@pytest.mark.parametrize("model", ["gemini-2.0-flash-live-001", "gemini-live-2.5-flash-preview", "no-such-model"])
async def test_an_unknown_model_closes_1008_like_the_real_service(emu: Emulator, model: str) -> None:
    error = await _refused(emu, model=model)
    assert error.code == 1008
    assert error.details.startswith(
        f"models/{model} is not found for API version v1beta, or is not supported for bidiGenerateContent."
    )
    assert len(error.details.encode()) <= 123


async def test_a_wrong_path_is_a_404_that_the_sdk_raises_as_invalid_status(emu: Emulator) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with client_for(emu, path="/not-here/").aio.live.connect(model=MODEL, config=live_config()):
            pass
    assert caught.value.response.status_code == 404
    assert emu.connections == []
