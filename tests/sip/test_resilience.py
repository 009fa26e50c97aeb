"""Many phones at once, and the bridge across a Janus restart: no call is left half-open on the gateway."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from gateway.api.keys import CALLS
from gateway.app import create_app
from gateway.bridges.bridge import SipBridge
from gateway.config import Settings
from gateway.emulator import EmulatorConfig
from tests.audio import best_match
from tests.fixtures import Gateway, until
from tests.sip.baresip import MIC_RATE, Phone
from tests.sip.conftest import (LEAD_S, SPEECH_S, call_through, direct_uri, history, microphone,
                                parrot_similarity)
from tests.sip.programs import Janus


async def test_five_phones_at_once_each_hear_only_themselves(bridge: SipBridge, gateway: Gateway,
                                                             make_phone) -> None:
    phones = await asyncio.gather(*(make_phone(name=f"phone{i}", seconds=8.0, seed=10 + i) for i in range(5)))
    await asyncio.gather(*(phone.dial(direct_uri(bridge)) for phone in phones))
    await asyncio.gather(*(phone.wait_for("CALL_ESTABLISHED") for phone in phones))
    await until(lambda: len(gateway.calls) == 5)
    assert {call.metadata["from"] for call in gateway.calls} == {f"sip:phone{i}@127.0.0.1" for i in range(5)}
    await asyncio.gather(*(phone.wait_for("CALL_CLOSED", timeout=20) for phone in phones))
    await until(lambda: len(gateway.calls) == 0)
    for i, phone in enumerate(phones):
        assert parrot_similarity(phone) >= 0.8, phone.name
        other = phones[(i + 1) % 5]
        sent, rate = other.recording("enc")
        crosstalk = best_match(sent[int(LEAD_S * rate):int((LEAD_S + SPEECH_S) * rate)], phone.recording("dec")[0])
        assert crosstalk[0] < 0.5, f"{phone.name} heard {other.name}"


async def test_a_janus_restart_ends_its_gateway_calls_and_the_bridge_registers_again(
        bridge: SipBridge, gateway: Gateway, janus: Janus, make_phone) -> None:
    phone = await make_phone(seconds=30.0)
    await call_through(bridge, gateway, phone)
    await janus.stop()
    await until(lambda: len(gateway.calls) == 0 and not bridge.ready.is_set())
    await janus.start()
    async with asyncio.timeout(20):
        await bridge.ready.wait()
    assert len(bridge.announced) == 2  # type: ignore[attr-defined]
    second = await make_phone(name="again", seconds=30.0)
    await call_through(bridge, gateway, second)
    await second.command("hangup")
    await until(lambda: len(gateway.calls) == 0)


@pytest.mark.parametrize("settings", [{"max_calls": 1}], indirect=True)
async def test_a_second_call_while_the_gateway_is_full_gets_486_and_the_first_goes_on(
        bridge: SipBridge, gateway: Gateway, make_phone) -> None:
    first, second = await make_phone(name="first", seconds=30.0), await make_phone(name="second")
    await first.dial(direct_uri(bridge))
    await first.wait_for("CALL_ESTABLISHED")
    await second.dial(direct_uri(bridge))
    assert "486" in (await second.wait_for("CALL_CLOSED")).get("param", "")
    assert len(gateway.calls) == 1 and len(bridge.calls) == 1
    await first.command("hangup")
    await until(lambda: len(gateway.calls) == 0)


async def received_packets(phone: Phone) -> int:
    """RTP packets the phone has taken in on its call so far (baresip's `audio_debug`)."""
    report = (await phone.command("audio_debug"))["data"]
    return int(re.search(r"rcvd=(\d+)", report).group(1))


async def test_a_phone_on_hold_for_20_s_keeps_its_call_and_is_answered_after(bridge: SipBridge, gateway: Gateway,
                                                                            make_phone) -> None:
    second_at = 28.0
    samples = np.concatenate([microphone(second_at, seed=5), microphone(10.0, seed=6)[int(LEAD_S * MIC_RATE):]])
    phone = await make_phone(samples=samples)
    call = await call_through(bridge, gateway, phone)
    await asyncio.sleep(6.0)  # the first reply has played
    assert (await phone.command("hold")).get("ok")  # a re-INVITE with a=sendonly; baresip stops sending
    await asyncio.sleep(20.0)
    received_on_hold = await received_packets(phone)
    assert (await phone.command("resume")).get("ok")
    await asyncio.sleep(7.0)  # the second utterance (28 s in) and its reply
    # baresip drops its recorder from the receive path on hold, so the second reply is counted, not compared.
    assert await received_packets(phone) - received_on_hold > 100
    await phone.wait_for("CALL_CLOSED", timeout=20)  # its WAV ended
    await until(lambda: len(gateway.calls) == 0)
    assert gateway.calls.created_total == 1, "the hold ended the call"
    assert parrot_similarity(phone) >= 0.8  # the first reply, recorded before the hold
    events = await history(gateway, call.id)
    turns = [(e["role"], e["text"]) for e in events if e["type"] == "transcript" and e["final"]]
    assert turns == [("user", "[speech 1.50 s]"), ("model", "reply 1"), ("user", "[speech 1.50 s]"),
                     ("model", "reply 2")]


async def test_after_a_gateway_restart_its_calls_are_hung_up_and_new_calls_go_through(
        bridge: SipBridge, gateway: Gateway, settings: Settings, emulator_config: EmulatorConfig,
        make_phone) -> None:
    phone = await make_phone(name="before", seconds=30.0)
    await call_through(bridge, gateway, phone)
    port = gateway.server.port
    await gateway.server.close()  # drains: the call ends, and the bridge hangs the phone up
    await phone.wait_for("CALL_CLOSED", timeout=15)
    restarted = TestServer(create_app(settings, emulator_config=emulator_config), host="127.0.0.1", port=port)
    await restarted.start_server()
    try:
        again = await make_phone(name="after", seconds=30.0)
        await again.dial(direct_uri(bridge))
        await again.wait_for("CALL_ESTABLISHED")
        calls = restarted.app[CALLS]
        await until(lambda: len(calls) == 1)
        await again.command("hangup")
        await until(lambda: len(calls) == 0)
    finally:
        await restarted.close()
