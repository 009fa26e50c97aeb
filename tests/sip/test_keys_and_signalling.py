"""Keys from the phone (SIP INFO and RFC 2833) reach the call as `dtmf` events; SIP the bridge does not
handle (a MESSAGE) is ignored and calls go on."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.bridges.bridge import SipBridge
from tests.fixtures import Gateway, until
from tests.sip.conftest import call_through, direct_uri, history, microphone
from tests.sip.sipp import keypad_scenario, message_scenario, run_scenario, ulaw


def target_of(bridge: SipBridge) -> str:
    return direct_uri(bridge).rsplit("@", 1)[1]


async def test_keys_sent_as_sip_info_reach_the_call_as_dtmf_events(bridge: SipBridge, gateway: Gateway,
                                                                   tmp_path: Path) -> None:
    audio = tmp_path / "keypad.ulaw"
    audio.write_bytes(ulaw(microphone(12.0, seed=4)[::2]))  # 16 -> 8 kHz by dropping samples: fine for a keypad
    keys = [("5", 160), ("#", 250), ("*", 100)]
    phone = asyncio.create_task(run_scenario(tmp_path / "sipp", keypad_scenario(audio, keys), target_of(bridge),
                                             "gemini"))
    await until(lambda: any(call.metadata for call in gateway.calls) or phone.done())  # answered
    call = next(iter(gateway.calls))
    assert call.metadata["sip_headers"] == {"X-Ticket": "4711"} and call.metadata["from_name"] == "Keypad"
    await phone
    await until(lambda: len(gateway.calls) == 0)
    dtmf = [event for event in await history(gateway, call.id) if event["type"] == "dtmf"]
    assert dtmf == [{"type": "dtmf", "digit": digit, "duration_ms": ms, "source": "control"} for digit, ms in keys]


async def test_keys_sent_as_rfc_2833_events_reach_the_call_as_dtmf_events(bridge: SipBridge, gateway: Gateway,
                                                                          make_phone) -> None:
    phone = await make_phone(seconds=30.0)
    call = await call_through(bridge, gateway, phone)
    await asyncio.sleep(1.0)
    for digit in "4#":
        assert (await phone.command("sndcode", digit)).get("ok")
        await asyncio.sleep(0.3)
        assert (await phone.command("sndcode", "\x00")).get("ok") is not None  # key released
        await asyncio.sleep(0.5)
    await phone.command("hangup")
    await until(lambda: len(gateway.calls) == 0)
    dtmf = [event for event in await history(gateway, call.id) if event["type"] == "dtmf"]
    assert [(event["digit"], event["source"]) for event in dtmf] == [("4", "rfc4733"), ("#", "rfc4733")]


async def test_sip_the_bridge_does_not_handle_is_ignored_and_calls_go_on(bridge: SipBridge, gateway: Gateway,
                                                                         make_phone, tmp_path: Path) -> None:
    await run_scenario(tmp_path / "pager", message_scenario(), target_of(bridge), "gemini")  # Janus: a `message`
    phone = await make_phone(seconds=30.0)
    await call_through(bridge, gateway, phone)
    await phone.command("hangup")
    await until(lambda: len(gateway.calls) == 0)
