"""A phone calls the bridge (direct INVITE to Janus) and talks to the gateway: audio, hang-ups, refusals."""

from __future__ import annotations

import pytest

from gateway.bridges.bridge import SipBridge
from gateway.bridges.settings import BridgeSettings
from tests.fixtures import Gateway, until
from tests.sip.conftest import call_through, direct_uri, microphone, parrot_similarity, running_bridge
from tests.sip.sipp import hung_up_scenario, run_scenario, ulaw


async def test_the_bridge_announces_where_phones_can_call(bridge: SipBridge) -> None:
    uri = direct_uri(bridge)
    assert bridge.announced == [f"sip: ready direct at {uri}"]  # type: ignore[attr-defined]
    assert uri.startswith("sip:gemini@127.0.0.1:") and int(uri.rsplit(":", 1)[1]) > 0


@pytest.mark.parametrize("codec", ["pcmu", "pcma", "g722"])
async def test_a_phone_hears_the_parrot_reply(codec: str, bridge: SipBridge, gateway: Gateway, make_phone) -> None:
    phone = await make_phone(codec=codec, seconds=7.0)
    call = await call_through(bridge, gateway, phone)
    assert call.leg is not None and call.leg.codec == codec
    assert call.metadata["from"] == "sip:phone@127.0.0.1"
    assert call.metadata["dialled"] == "gemini" and call.metadata["direction"] == "inbound"
    closed = await phone.wait_for("CALL_CLOSED", timeout=15)  # the phone's WAV ended: it hung up
    assert "end of file" in closed.get("param", "")
    await until(lambda: len(gateway.calls) == 0)
    assert parrot_similarity(phone) >= 0.8


async def test_a_phone_hang_up_ends_the_gateway_call(bridge: SipBridge, gateway: Gateway, make_phone) -> None:
    phone = await make_phone(seconds=30.0)
    await call_through(bridge, gateway, phone)
    await phone.command("hangup")
    await until(lambda: len(gateway.calls) == 0)
    await until(lambda: not bridge.calls)


async def test_the_gateway_ending_a_call_hangs_the_phone_up(bridge: SipBridge, gateway: Gateway, make_phone) -> None:
    phone = await make_phone(seconds=30.0)
    call = await call_through(bridge, gateway, phone)
    await gateway.calls.hang_up(call.id)
    await phone.wait_for("CALL_CLOSED", timeout=10)
    await until(lambda: not bridge.calls)


@pytest.mark.parametrize("settings", [{"max_call_s": 3.0}], indirect=True)
async def test_a_call_the_gateway_ends_is_hung_up_with_its_reason(bridge: SipBridge, gateway: Gateway,
                                                                  tmp_path) -> None:
    audio = tmp_path / "phone.ulaw"
    audio.write_bytes(ulaw(microphone(20.0, seed=2)[::2]))
    scenario = hung_up_scenario(audio, r'SIP;cause=200;text="gateway max_duration"')
    await run_scenario(tmp_path / "sipp", scenario, direct_uri(bridge).rsplit("@", 1)[1], "gemini")
    await until(lambda: len(gateway.calls) == 0)


@pytest.mark.parametrize("settings", [{"max_calls": 0}], indirect=True)
async def test_a_full_gateway_gives_the_phone_486(bridge: SipBridge, make_phone) -> None:
    phone = await make_phone()
    await phone.dial(direct_uri(bridge))
    closed = await phone.wait_for("CALL_CLOSED")
    assert "486" in closed.get("param", ""), closed


async def test_an_offer_the_gateway_cannot_use_gives_the_phone_488(bridge: SipBridge, gateway: Gateway,
                                                                    make_phone) -> None:
    phone = await make_phone(codec="gsm")
    await phone.dial(direct_uri(bridge))
    closed = await phone.wait_for("CALL_CLOSED")
    assert "488" in closed.get("param", ""), closed
    assert len(gateway.calls) == 0


@pytest.mark.parametrize("settings", [{"api_tokens": ("bridge-s3cret:phone",)}], indirect=True)
async def test_a_gateway_that_wants_a_token_takes_calls_from_a_bridge_that_has_one(
        janus, gateway: Gateway, no_leaks: None, make_phone) -> None:
    for token, expected in ((None, "503"), ("bridge-s3cret", None)):
        settings = BridgeSettings(janus_url=janus.url, gateway_url=gateway.url, gateway_token=token)
        async with running_bridge(settings) as bridge:
            phone = await make_phone(name=f"with-{token}", seconds=30.0)
            if expected:  # refused (401): the phone is told the service is unavailable
                await phone.dial(direct_uri(bridge))
                assert expected in (await phone.wait_for("CALL_CLOSED")).get("param", "")
                continue
            await call_through(bridge, gateway, phone)
            await phone.command("hangup")
            await until(lambda: len(gateway.calls) == 0)
