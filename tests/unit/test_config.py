"""Settings from flags and GATEWAY_* variables: flags win, values are converted, bad ones are named."""

from __future__ import annotations

import re

import pytest

from gateway.config import BUILTIN_PROFILES, ConfigError, LiveBackend, Settings


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


def test_fleet_mode_needs_an_advertised_url_when_listening_on_every_address() -> None:
    env = {"GATEWAY_REDIS_URL": "redis://r:6379/0", "GATEWAY_HOST": "0.0.0.0"}
    with pytest.raises(ConfigError, match="GATEWAY_ADVERTISE_URL"):
        Settings.load({}, env)
    settings = Settings.load({}, {**env, "GATEWAY_ADVERTISE_URL": "http://10.0.0.7:8080/"})
    assert settings.fleet_url == "http://10.0.0.7:8080"
    assert Settings.load({"port": 9000}, {"GATEWAY_REDIS_URL": "redis://r"}).fleet_url == "http://127.0.0.1:9000"
    assert Settings.load({}, env | {"GATEWAY_ADVERTISE_URL": "http://x"}).describe()["redis_url"] == "***"


def test_a_profiles_codecs_are_read_and_checked(tmp_path) -> None:
    from gateway.config import BUILTIN_PROFILES, load_profiles

    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.trunk]\ncodecs = ["pcma", "pcmu"]\n')
    assert load_profiles(path)["trunk"].codecs == ("pcma", "pcmu")
    assert BUILTIN_PROFILES["phone"].codecs[0] == "pcmu"
    path.write_text('[profiles.trunk]\ncodecs = ["g729"]\n')
    with pytest.raises(ConfigError, match="codecs must be some of"):
        load_profiles(path)


def test_the_media_port_range_and_public_address_are_parsed_and_checked() -> None:
    settings = Settings.load({}, {"GATEWAY_ICE_PORT_RANGE": "40000-40099", "GATEWAY_ICE_PUBLIC_ADDRESS": " 203.0.113.7"})
    assert settings.ice_port_range == range(40000, 40100) and settings.ice_public_address == "203.0.113.7"
    assert settings.describe()["ice_port_range"] == "40000-40099"
    assert Settings.load({}, {"GATEWAY_ICE_PORT_RANGE": "40000"}).ice_port_range == range(40000, 40001)
    for bad in ("40099-40000", "0-10", "40000-70000", "forty"):
        with pytest.raises(ConfigError, match=f"GATEWAY_ICE_PORT_RANGE='{bad}'"):
            Settings.load({}, {"GATEWAY_ICE_PORT_RANGE": bad})
    with pytest.raises(ConfigError, match="GATEWAY_ICE_PUBLIC_ADDRESS='gateway.example'"):
        Settings.load({}, {"GATEWAY_ICE_PUBLIC_ADDRESS": "gateway.example"})


def test_a_bad_value_that_holds_a_secret_is_named_without_it() -> None:
    with pytest.raises(ConfigError, match=r"GATEWAY_ICE_SERVERS=\(not shown") as refused:
        Settings.load({}, {"GATEWAY_ICE_SERVERS": '[{"urls": "turn:h", "credential": "pw-123"'})
    assert "pw-123" not in str(refused.value)


def test_access_secrets_are_masked_and_bad_access_settings_are_named_without_them() -> None:
    env = {"GATEWAY_TOKEN_KEYS": "k1:" + "s" * 32, "GATEWAY_TURN_SECRET": "t", "GATEWAY_TURN_URLS": "turn:h:3478",
           "GATEWAY_API_TOKENS": "a,b:phone+default", "GATEWAY_ALLOWED_ORIGINS": "https://app.example"}
    settings = Settings.load({}, env)
    assert settings.allowed_origins == ("https://app.example",)
    described = settings.describe()
    assert described["token_keys"] == described["turn_secret"] == "***"
    for env, message, secret in (
        ({"GATEWAY_TOKEN_KEYS": "k1:short-secret"}, "entry 1 (k1): the secret needs 32", "short-secret"),
        ({"GATEWAY_TOKEN_KEYS": "no-colon-" + "x" * 32}, "entry 1 needs the form KID:SECRET", "x" * 32),
        ({"GATEWAY_API_TOKENS": "a,b-secret:nope"}, "GATEWAY_API_TOKENS entry 2: no profile 'nope'", "b-secret"),
        ({"GATEWAY_TURN_SECRET": "t-secret"}, "GATEWAY_TURN_SECRET and GATEWAY_TURN_URLS go together", "t-secret"),
        ({"GATEWAY_TURN_SECRET": "t-secret", "GATEWAY_TURN_URLS": "stun:h"}, "is not a turn: or turns: URL",
         "t-secret"),
        ({"GATEWAY_TOKEN_TTL_SECONDS": "7200"}, "at most GATEWAY_TOKEN_MAX_TTL_SECONDS", "7200"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)) as refused:
            Settings.load({}, env)
        assert secret not in str(refused.value)


def test_phone_bridge_settings_have_their_defaults_and_variables() -> None:
    defaults = Settings.load({}, {})
    assert (defaults.caller_silence_s, defaults.events_backlog, defaults.ended_call_s, defaults.ended_calls) == (
        10.0, 500, 600.0, 1000)
    env = {"GATEWAY_EVENTS_BACKLOG": "50", "GATEWAY_ENDED_CALL_SECONDS": "60", "GATEWAY_ENDED_CALLS": "7"}
    settings = Settings.load({}, env)
    assert (settings.events_backlog, settings.ended_call_s, settings.ended_calls) == (50, 60.0, 7)
    assert BUILTIN_PROFILES["phone"].dtmf_to_model and not BUILTIN_PROFILES["default"].dtmf_to_model
