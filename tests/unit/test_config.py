"""Settings from flags and GATEWAY_* variables: flags win, values are converted, bad ones are named."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, LiveBackend, Settings


def test_environment_values_are_converted_and_flags_win() -> None:
    env = {
        "GATEWAY_PORT": "9000",
        "GATEWAY_CALL_RATE_PER_MINUTE": "12.5",
        "GATEWAY_CALL_BURST": "3",
        "GATEWAY_CLIENT_IP_HEADER": "X-Forwarded-For",
        "GATEWAY_ICE_ADDRESSES": "127.0.0.1, ::1",
        "GATEWAY_ICE_RELAY_ONLY": "yes",
    }
    settings = Settings.load({"port": 9100, "host": None}, env)
    assert settings.port == 9100 and settings.host == "127.0.0.1"
    assert (settings.call_rate_per_minute, settings.call_burst) == (12.5, 3)
    assert settings.client_ip_header == "X-Forwarded-For"
    assert settings.ice_addresses == ("127.0.0.1", "::1") and settings.ice_relay_only
    assert settings.live_backend is LiveBackend.EMULATOR


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_CALL_BURST='many'"):
        Settings.load({}, {"GATEWAY_CALL_BURST": "many"})


def test_secrets_are_masked_when_described() -> None:
    described = Settings.load({}, {"GEMINI_API_KEY": "k", "GATEWAY_API_TOKENS": "a,b"}).describe()
    assert described["gemini_api_key"] == described["api_tokens"] == "***"


def test_a_profiles_codecs_are_read_and_checked(tmp_path) -> None:
    from gateway.config import BUILTIN_PROFILES, load_profiles

    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.trunk]\ncodecs = ["pcma", "pcmu"]\n')
    assert load_profiles(path)["trunk"].codecs == ("pcma", "pcmu")
    assert BUILTIN_PROFILES["phone"].codecs[0] == "pcmu"
    path.write_text('[profiles.trunk]\ncodecs = ["g729"]\n')
    with pytest.raises(ConfigError, match="codecs must be some of"):
        load_profiles(path)
