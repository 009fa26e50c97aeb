"""The bridge's settings: SIP_BRIDGE_* variables, flags winning, and the accounts file (the shipped example too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.bridges.bridge import target_uri
from gateway.bridges.phone_call import DialFailed
from gateway.bridges.settings import DIRECT, BridgeConfigError, BridgeSettings

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "compose" / "sip-accounts.example.toml"


def test_variables_are_read_and_flags_win() -> None:
    settings = BridgeSettings.load({"port": 9999}, {"SIP_BRIDGE_PORT": "1", "SIP_BRIDGE_RING_SECONDS": "12.5",
                                                   "SIP_BRIDGE_API_TOKENS": "a, b"})
    assert (settings.port, settings.ring_s, settings.api_tokens) == (9999, 12.5, ("a", "b"))
    assert settings.direct and [line.name for line in settings.lines()] == [DIRECT]
    with pytest.raises(BridgeConfigError, match="SIP_BRIDGE_PORT='x'"):
        BridgeSettings.load({}, {"SIP_BRIDGE_PORT": "x"})


def test_the_example_accounts_file_loads_with_its_secret_from_the_environment() -> None:
    settings = BridgeSettings.load({"accounts_file": EXAMPLE}, {"SUPPORT_SIP_SECRET": "s3cret"})
    (account,) = settings.lines()
    assert (account.name, account.secret, account.proxy) == ("support", "s3cret", "sip:pbx.example.com:5060")
    assert account.profile_for("+15551230002") == "sales" and account.profile_for("+1999") == "phone"
    with pytest.raises(BridgeConfigError, match="SUPPORT_SIP_SECRET is not set"):
        BridgeSettings.load({"accounts_file": EXAMPLE}, {})


def test_an_account_without_a_secret_or_with_unknown_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text('[accounts.a]\nusername = "sip:a@pbx"\n')
    with pytest.raises(BridgeConfigError, match="needs a sip: username and a secret"):
        BridgeSettings.load({"accounts_file": path}, {})
    path.write_text('[accounts.a]\nusername = "sip:a@pbx"\nsecret = "x"\nregistrar = "pbx"\n')
    with pytest.raises(BridgeConfigError, match="registrar"):
        BridgeSettings.load({"accounts_file": path}, {})


def test_a_number_is_dialled_at_the_accounts_registrar() -> None:
    assert target_uri("+4930123", "sip:me@pbx.example", "sip:proxy.example:5060", False) == \
        "sip:+4930123@proxy.example:5060"
    assert target_uri("0800", "sip:me@pbx.example;transport=udp", None, False) == "sip:0800@pbx.example"
    assert target_uri("sip:bob@host:5070", "sip:me@pbx", None, True) == "sip:bob@host:5070"
    for bad, direct in (("0800", True), ("bob", False), ("sip:nobody", False)):
        with pytest.raises(DialFailed):
            target_uri(bad, "sip:me@pbx", None, direct)
