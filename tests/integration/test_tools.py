"""Function calls are relayed to the caller, answered, and cancelled when the caller barges in."""

from __future__ import annotations

import pytest

from gateway.client.signals import silence, speech_like
from gateway.config import BUILTIN_PROFILES, Profile
from tests.fixtures import answered
from tests.integration.test_call import RATE

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
}
TOOLS_SETTINGS = {"profiles": {**BUILTIN_PROFILES, "tools": Profile(name="tools", tools=(WEATHER,))}}

pytestmark = [
    pytest.mark.parametrize("settings", [TOOLS_SETTINGS], indirect=True),
    pytest.mark.parametrize("emulator_config", [{"tool_calls": True}], indirect=True),
]


async def test_a_tool_call_is_answered_by_the_caller_and_the_reply_follows(make_caller) -> None:
    caller = await answered(make_caller(profile="tools"))
    caller.say(speech_like(0.6, seed=51), RATE)
    caller.say(silence(0.8), RATE)
    call = await caller.wait_for("tool_call", timeout=10)
    assert (call["name"], call["args"]) == ("get_weather", {"city": "test"})
    caller.send({"type": "tool_result", "id": call["id"], "result": {"forecast": "sunny"}})
    reply = await caller.wait_for("transcript", lambda e: e["role"] == "model" and e["final"], timeout=10)
    assert reply["text"] == 'reply 1 (get_weather: {"forecast": "sunny"})'


async def test_barging_in_cancels_a_pending_tool_call(make_caller) -> None:
    caller = await answered(make_caller(profile="tools"))
    caller.say(speech_like(0.6, seed=52), RATE)
    caller.say(silence(0.8), RATE)
    call = await caller.wait_for("tool_call", timeout=10)
    mark = len(caller.events)
    caller.say(speech_like(0.6, seed=53), RATE)
    caller.say(silence(0.8), RATE)
    cancelled = await caller.wait_for("tool_cancelled", since=mark, timeout=10)
    assert cancelled["ids"] == [call["id"]]
    caller.send({"type": "tool_result", "id": call["id"], "result": "too late"})
    error = await caller.wait_for("error", since=mark, timeout=5)
    assert error["code"] == "bad_event"
