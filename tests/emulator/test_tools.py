"""Tool calls: a toolCall with an id after the user's turn, the reply after the toolResponse, cancellation."""

from __future__ import annotations

import json

from google.genai import types

from gateway.emulator import Emulator

from .conftest import MODEL, Recorder, client_for, live_config, send_audio
from .signals import silence, speech_like, utterance

WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather for a city",
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={
                    "city_name": types.Schema(type=types.Type.STRING),
                    "days": types.Schema(type=types.Type.INTEGER),
                    "metric": types.Schema(type=types.Type.BOOLEAN),
                },
            ),
        ),
        types.FunctionDeclaration(name="hang_up", description="End the call"),
    ]
)


async def test_a_tool_call_is_answered_and_the_reply_mentions_the_result(make_emulator) -> None:
    emu: Emulator = await make_emulator(tool_calls=True)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config(tools=[WEATHER])) as session:
        async with Recorder(session) as rec:
            await send_audio(session, utterance(0.4)[0])
            call = (await rec.next("toolCall")).tool_call.function_calls[0]
            assert "audio" not in rec.kinds
            assert (call.id, call.name) == ("fc-1", "get_weather")
            assert call.args == {"city_name": "test", "days": 1, "metric": True}  # parameter names kept verbatim
            await session.send_tool_response(
                function_responses=types.FunctionResponse(id="fc-9", name="get_weather", response={"x": 0})
            )  # an unknown id is ignored
            result = {"result": "sunny", "celsius": 21}
            await session.send_tool_response(
                function_responses=types.FunctionResponse(id=call.id, name=call.name, response=result)
            )
            await rec.next("turn_complete")
    assert rec.texts("output_transcription") == [f"reply 1 (get_weather: {json.dumps(result)})"]
    assert rec.kinds.index("toolCall") < rec.kinds.index("audio")


async def test_barge_in_while_a_tool_call_is_pending_cancels_it(emu: Emulator) -> None:
    emu.set_tool_calls(True)
    config = live_config(tools=[WEATHER], resume=None)
    async with client_for(emu).aio.live.connect(model=MODEL, config=config) as session:
        async with Recorder(session) as rec:
            await send_audio(session, utterance(0.4)[0])
            call = (await rec.next("toolCall")).tool_call.function_calls[0]
            await send_audio(session, speech_like(0.3, seed=4))
            cancellation = (await rec.next("toolCallCancellation")).tool_call_cancellation
            emu.set_tool_calls(False)
            await send_audio(session, silence(0.4))  # end the interrupting utterance
            await rec.next("turn_complete")
    assert cancellation.ids == [call.id]
    assert rec.texts("output_transcription") == ["reply 1"]  # the cancelled turn never got a reply
    assert "notResumable" in rec.kinds[: rec.kinds.index("toolCall")]
    assert "resumable" not in rec.kinds[rec.kinds.index("toolCall") : rec.kinds.index("turn_complete")]


async def test_no_tool_call_when_the_setup_declares_no_functions(make_emulator) -> None:
    emu: Emulator = await make_emulator(tool_calls=True)
    async with client_for(emu).aio.live.connect(model=MODEL, config=live_config()) as session:
        async with Recorder(session) as rec:
            await session.send_realtime_input(text="hi")
            await rec.next("turn_complete")
    assert "toolCall" not in rec.kinds
