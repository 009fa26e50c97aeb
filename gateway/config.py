"""Settings for the process (flags and GATEWAY_* environment variables) and conversation profiles (TOML).

Precedence: command-line flag, then environment variable, then the default here. Credentials for Gemini come
from the variables the google-genai SDK itself reads (GEMINI_API_KEY / GOOGLE_API_KEY, or Vertex AI's).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Mapping

DEFAULT_MODEL = "gemini-3.8-live"
SECRET_FIELDS = ("gemini_api_key", "api_tokens", "ice_servers", "token_keys", "turn_secret", "redis_url")  # never shown
DEFAULT_INSTRUCTION = (
    "You are a friendly voice assistant on a live call. Answer briefly and naturally, "
    "in the caller's language, and let them interrupt you."
)


# Codecs the gateway speaks; a profile's `codecs` orders them for the offers the gateway makes itself.
CODECS = ("opus", "g722", "pcmu", "pcma")


class ConfigError(ValueError):
    """A setting or profile that cannot be used; the message names it."""


class LiveBackend(StrEnum):
    GEMINI = "gemini"  # Gemini Developer API with an API key
    VERTEX = "vertex"  # Vertex AI with project and location
    CUSTOM = "custom"  # GATEWAY_LIVE_BASE_URL: a standalone emulator or a proxy in front of Gemini
    EMULATOR = "emulator"  # no credentials: the embedded emulator


@dataclass(frozen=True)
class VadProfile:
    """Gemini's automatic activity detection, as sent in `realtimeInputConfig`."""

    disabled: bool = False
    start_sensitivity: str = "high"  # high | low
    end_sensitivity: str = "high"  # high | low
    prefix_padding_ms: int = 40
    silence_duration_ms: int = 500


@dataclass(frozen=True)
class CompressionProfile:
    """Context window compression (sliding window), on by default so sessions are not capped at 15 minutes."""

    enabled: bool = True
    trigger_tokens: int = 25_600
    target_tokens: int = 12_800


@dataclass(frozen=True)
class Profile:
    """How one conversation is configured: what the caller picks with `profile`."""

    name: str
    description: str = ""
    model: str = DEFAULT_MODEL
    voice: str | None = "Kore"
    language: str | None = None
    system_instruction: str = DEFAULT_INSTRUCTION
    transcription: bool = True
    vad: VadProfile = VadProfile()
    compression: CompressionProfile = CompressionProfile()
    # Cut playback on the caller's own speech before Gemini says `interrupted` (an energy VAD on the uplink).
    local_barge_in: bool = False
    local_barge_in_threshold_dbfs: float = -35.0
    tools: tuple[dict[str, Any], ...] = ()
    codecs: tuple[str, ...] = CODECS  # offered in this order when the gateway makes the offer (a dialled phone)
    dtmf_to_model: bool = False  # each key the caller presses is also told to the model, as text

    def public(self) -> dict[str, Any]:
        """What a client may see of the profile (no instructions, no tool internals)."""
        return {"name": self.name, "description": self.description, "model": self.model, "voice": self.voice}


BUILTIN_PROFILES: dict[str, Profile] = {
    "default": Profile(name="default", description="General voice assistant"),
    # Tuned for 8 kHz G.711 callers behind a SIP bridge: phone lines carry noise and the handset's echo of
    # the model's own voice, which must neither start a turn nor cut a reply; first syllables arrive softened
    # by narrowband codecs; G.711 first, which no trunk has to transcode.
    "phone": Profile(
        name="phone",
        description="Phone agent: short answers, cuts itself off as soon as the caller talks",
        system_instruction=DEFAULT_INSTRUCTION + (
            " You are on a phone line: keep every answer to one or two sentences, say numbers digit by digit,"
            " and never use lists or formatting."),
        vad=VadProfile(start_sensitivity="low", prefix_padding_ms=100),
        local_barge_in=True,
        local_barge_in_threshold_dbfs=-30.0,
        codecs=("pcmu", "pcma", "g722"),
        dtmf_to_model=True,
    ),
}


@dataclass(frozen=True)
class Settings:
    """Everything the process needs; build with `Settings.load()` (CLI) or directly (tests)."""

    host: str = "127.0.0.1"
    port: int = 8080
    config_file: Path | None = None
    log_level: str = "INFO"
    profiles: Mapping[str, Profile] = field(default_factory=lambda: dict(BUILTIN_PROFILES))

    # The Live side.
    gemini_api_key: str | None = None
    vertex: bool = False
    vertex_project: str | None = None
    vertex_location: str | None = None
    live_base_url: str | None = None
    live_ca_file: Path | None = None
    live_api_version: str | None = None
    live_retry_budget_s: float = 30.0  # give up reconnecting a call's Live session after this long
    live_stall_s: float = 20.0  # the caller finished a turn and Live said nothing for this long: reconnect
    emulator_mode: str = "burst"
    emulator_seed: int | None = None

    # WebRTC.
    ice_servers: tuple[dict[str, Any], ...] = ()  # RTCIceServer dicts; none by default (no STUN lookups)
    ice_addresses: tuple[str, ...] = ()  # local addresses for host candidates; empty = every interface
    ice_relay_only: bool = False
    ice_port_range: range | None = None  # UDP ports for host candidates; None = any the kernel picks
    ice_public_address: str | None = None  # 1:1 NAT: the address callers reach, advertised in host candidates

    # Limits and lifecycle.
    max_calls: int = 100
    max_call_s: float = 4 * 3600.0
    idle_timeout_s: float = 600.0  # no caller speech and no model audio for this long ends the call
    connect_timeout_s: float = 30.0  # offer answered -> media flowing, else the call ends
    answer_timeout_s: float = 120.0  # the gateway's own offer (a dialled phone) unanswered this long: the call ends
    caller_grace_s: float = 30.0  # a vanished caller may resume within this window
    caller_silence_s: float = 10.0  # nothing at all from the caller's peer for this long = vanished (RTP alone: never)
    drain_s: float = 30.0  # on shutdown, calls get this long to finish
    max_body_bytes: int = 64 * 1024
    api_tokens: tuple[str, ...] = ()  # bearer tokens accepted on /v1 and /whip; empty = open
    call_rate_per_minute: float = 60.0  # calls (and resumes) one client may place a minute; 0 = no limit
    call_burst: int = 20  # ... and at once
    client_ip_header: str | None = None  # e.g. X-Forwarded-For, set by a proxy you run; else the peer address

    # The server-side events stream, and calls remembered after they end.
    events_backlog: int = 500  # events a call keeps for GET /v1/calls/<id>/events (the newest)
    ended_call_s: float = 600.0  # an ended call's snapshot and events stay readable for this long
    ended_calls: int = 1000  # ... for at most this many calls, the oldest forgotten first

    # Fleet mode: replicas share a call registry in Redis and forward follow-ups to a call's owner.
    redis_url: str | None = None  # e.g. redis://redis:6379/0; unset = one replica on its own
    advertise_url: str | None = None  # how the other replicas reach this one; default http://<host>:<port>

    @property
    def fleet_url(self) -> str:
        """This replica's internal URL, for the other replicas (fleet mode)."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        if self.host in ("0.0.0.0", "::", ""):
            raise ConfigError("GATEWAY_ADVERTISE_URL is needed with GATEWAY_REDIS_URL when listening on every "
                              "address: the other replicas must know where to reach this one")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # Access (README "Access"): client tokens, per-call TURN credentials, browser origins. Checked below.
    token_keys: tuple[str, ...] = ()  # "KID:SECRET" keys for client tokens; the first signs, all verify
    token_ttl_s: float = 300.0  # a client token's life when POST /v1/tokens asks for none
    token_max_ttl_s: float = 3600.0  # the longest life POST /v1/tokens may ask for
    turn_secret: str | None = None  # coturn's static-auth-secret: per-call TURN credentials (TURN REST API)
    turn_urls: tuple[str, ...] = ()  # the turn: URLs those credentials are for; the gateway uses the first
    turn_ttl_s: float | None = None  # how long TURN credentials are valid; None = max_call_s
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed besides the gateway's own; "*" = any

    def __post_init__(self) -> None:
        check_access(self)

    @property
    def live_backend(self) -> LiveBackend:
        if self.live_base_url:
            return LiveBackend.CUSTOM
        if self.vertex:
            return LiveBackend.VERTEX
        if self.gemini_api_key:
            return LiveBackend.GEMINI
        return LiveBackend.EMULATOR

    @classmethod
    def load(cls, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from flags (None = not given), then the environment, then defaults."""
        env = os.environ if env is None else env
        flags = {k: v for k, v in (flags or {}).items() if v is not None}
        values: dict[str, Any] = {}
        for spec in _ENV_FIELDS:
            raw = flags.get(spec.name, env.get(spec.env))
            if raw is not None and raw != "":
                values[spec.name] = _convert(spec, raw)
        values["gemini_api_key"] = env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY") or None
        values["vertex"] = env.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("1", "true", "yes")
        values["vertex_project"] = env.get("GOOGLE_CLOUD_PROJECT") or None
        values["vertex_location"] = env.get("GOOGLE_CLOUD_LOCATION") or None
        if values["vertex"] and not (values["vertex_project"] and values["vertex_location"]):
            raise ConfigError("GOOGLE_GENAI_USE_VERTEXAI needs GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION")
        config_file = values.get("config_file")
        if config_file is not None:
            values["profiles"] = load_profiles(config_file)
        settings = cls(**values)
        if settings.redis_url:
            settings.fleet_url  # fails early when the other replicas could not reach this one
        return settings

    def describe(self) -> dict[str, Any]:
        """The settings as loggable JSON, secrets masked."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            elif f.name == "profiles":
                value = sorted(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, range):
                value = f"{value.start}-{value[-1]}"
            out[f.name] = value
        return out


@dataclass(frozen=True)
class _EnvField:
    name: str
    env: str
    kind: str  # str | int | float | bool | path | csv | json | port_range | ip


_ENV_FIELDS = (
    _EnvField("host", "GATEWAY_HOST", "str"),
    _EnvField("port", "GATEWAY_PORT", "int"),
    _EnvField("config_file", "GATEWAY_CONFIG", "path"),
    _EnvField("log_level", "GATEWAY_LOG_LEVEL", "str"),
    _EnvField("live_base_url", "GATEWAY_LIVE_BASE_URL", "str"),
    _EnvField("live_ca_file", "GATEWAY_LIVE_CA_FILE", "path"),
    _EnvField("live_api_version", "GATEWAY_LIVE_API_VERSION", "str"),
    _EnvField("live_retry_budget_s", "GATEWAY_LIVE_RETRY_SECONDS", "float"),
    _EnvField("live_stall_s", "GATEWAY_LIVE_STALL_SECONDS", "float"),
    _EnvField("emulator_mode", "GATEWAY_EMULATOR_MODE", "str"),
    _EnvField("emulator_seed", "GATEWAY_EMULATOR_SEED", "int"),
    _EnvField("ice_servers", "GATEWAY_ICE_SERVERS", "json"),
    _EnvField("ice_addresses", "GATEWAY_ICE_ADDRESSES", "csv"),
    _EnvField("ice_relay_only", "GATEWAY_ICE_RELAY_ONLY", "bool"),
    _EnvField("ice_port_range", "GATEWAY_ICE_PORT_RANGE", "port_range"),
    _EnvField("ice_public_address", "GATEWAY_ICE_PUBLIC_ADDRESS", "ip"),
    _EnvField("max_calls", "GATEWAY_MAX_CALLS", "int"),
    _EnvField("max_call_s", "GATEWAY_MAX_CALL_SECONDS", "float"),
    _EnvField("idle_timeout_s", "GATEWAY_IDLE_TIMEOUT_SECONDS", "float"),
    _EnvField("connect_timeout_s", "GATEWAY_CONNECT_TIMEOUT_SECONDS", "float"),
    _EnvField("answer_timeout_s", "GATEWAY_ANSWER_TIMEOUT_SECONDS", "float"),
    _EnvField("caller_grace_s", "GATEWAY_CALLER_GRACE_SECONDS", "float"),
    _EnvField("caller_silence_s", "GATEWAY_CALLER_SILENCE_SECONDS", "float"),
    _EnvField("drain_s", "GATEWAY_DRAIN_SECONDS", "float"),
    _EnvField("max_body_bytes", "GATEWAY_MAX_BODY_BYTES", "int"),
    _EnvField("api_tokens", "GATEWAY_API_TOKENS", "csv"),
    _EnvField("call_rate_per_minute", "GATEWAY_CALL_RATE_PER_MINUTE", "float"),
    _EnvField("call_burst", "GATEWAY_CALL_BURST", "int"),
    _EnvField("client_ip_header", "GATEWAY_CLIENT_IP_HEADER", "str"),
    _EnvField("redis_url", "GATEWAY_REDIS_URL", "str"),
    _EnvField("advertise_url", "GATEWAY_ADVERTISE_URL", "str"),
    # The server-side events stream, and calls remembered after they end.
    _EnvField("events_backlog", "GATEWAY_EVENTS_BACKLOG", "int"),
    _EnvField("ended_call_s", "GATEWAY_ENDED_CALL_SECONDS", "float"),
    _EnvField("ended_calls", "GATEWAY_ENDED_CALLS", "int"),
    _EnvField("token_keys", "GATEWAY_TOKEN_KEYS", "csv"),
    _EnvField("token_ttl_s", "GATEWAY_TOKEN_TTL_SECONDS", "float"),
    _EnvField("token_max_ttl_s", "GATEWAY_TOKEN_MAX_TTL_SECONDS", "float"),
    _EnvField("turn_secret", "GATEWAY_TURN_SECRET", "str"),
    _EnvField("turn_urls", "GATEWAY_TURN_URLS", "csv"),
    _EnvField("turn_ttl_s", "GATEWAY_TURN_TTL_SECONDS", "float"),
    _EnvField("allowed_origins", "GATEWAY_ALLOWED_ORIGINS", "csv"),
)


def _convert(spec: _EnvField, raw: Any) -> Any:
    if not isinstance(raw, str):
        return tuple(raw) if spec.kind == "csv" else raw
    try:
        match spec.kind:
            case "int":
                return int(raw)
            case "float":
                return float(raw)
            case "bool":
                return raw.strip().lower() in ("1", "true", "yes", "on")
            case "path":
                return Path(raw)
            case "csv":
                return tuple(part.strip() for part in raw.split(",") if part.strip())
            case "json":
                value = json.loads(raw)
                return tuple(value if isinstance(value, list) else [value])
            case "port_range":
                return _port_range(raw)
            case "ip":
                return str(ipaddress.ip_address(raw.strip()))
            case _:
                return raw
    except ValueError as exc:
        shown = "(not shown: it holds a secret)" if spec.name in SECRET_FIELDS else repr(raw)
        raise ConfigError(f"{spec.env}={shown}: {exc}") from None


def _port_range(raw: str) -> range:
    """`40000-40099` (both ends included) as a range of port numbers."""
    first, dash, last = raw.partition("-")
    ports = range(int(first), int(last if dash else first) + 1)
    if not ports or ports.start < 1 or ports.stop > 65536:
        raise ValueError("want FIRST-LAST, two port numbers from 1 to 65535, FIRST <= LAST")
    return ports


def load_profiles(path: Path) -> dict[str, Profile]:
    """Profiles from a TOML file with `[profiles.<name>]` tables; the built-in ones stay unless redefined."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    profiles = dict(BUILTIN_PROFILES)
    for name, table in data.get("profiles", {}).items():
        profiles[name] = profile_from_table(name, table)
    return profiles


def profile_from_table(name: str, table: Mapping[str, Any]) -> Profile:
    """One profile from its TOML table; unknown keys are an error, so typos do not pass silently."""
    table = dict(table)
    try:
        vad = VadProfile(**table.pop("vad", {}))
        compression = CompressionProfile(**table.pop("context_compression", {}))
        tools = tuple(table.pop("tools", ()))
        codecs = tuple(table.pop("codecs", CODECS))
        profile = Profile(name=name, vad=vad, compression=compression, tools=tools, codecs=codecs, **table)
    except TypeError as exc:
        raise ConfigError(f"profile {name!r}: {exc}") from None
    for tool in profile.tools:
        if not isinstance(tool, dict) or "name" not in tool:
            raise ConfigError(f"profile {name!r}: every tool needs a name")
    if not profile.codecs or not set(profile.codecs) <= set(CODECS):
        raise ConfigError(f"profile {name!r}: codecs must be some of {', '.join(CODECS)}")
    for label, value in (("start", profile.vad.start_sensitivity), ("end", profile.vad.end_sensitivity)):
        if value not in ("high", "low"):
            raise ConfigError(f"profile {name!r}: vad.{label}_sensitivity must be 'high' or 'low'")
    return profile


# ----- access settings (README "Access"); messages name the entry, never a secret -----

MIN_SECRET_CHARS = 32  # HS256 wants a key as long as its hash (RFC 7518 section 3.2)


def check_access(settings: Settings) -> None:
    """Refuse access settings that cannot work, at start-up rather than on the first request."""
    for index, entry in enumerate(settings.token_keys, 1):
        kid, _, secret = entry.partition(":")
        if not kid or not secret:
            raise ConfigError(f"GATEWAY_TOKEN_KEYS entry {index} needs the form KID:SECRET")
        if len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"GATEWAY_TOKEN_KEYS entry {index} ({kid}): the secret needs "
                              f"{MIN_SECRET_CHARS} characters or more")
    if not 0 < settings.token_ttl_s <= settings.token_max_ttl_s:
        raise ConfigError("GATEWAY_TOKEN_TTL_SECONDS must be above 0 and at most GATEWAY_TOKEN_MAX_TTL_SECONDS")
    for index, entry in enumerate(settings.api_tokens, 1):
        for name in split_api_token(entry)[1] or ():
            if name not in settings.profiles:
                raise ConfigError(f"GATEWAY_API_TOKENS entry {index}: no profile {name!r}")
    if bool(settings.turn_secret) != bool(settings.turn_urls):
        raise ConfigError("GATEWAY_TURN_SECRET and GATEWAY_TURN_URLS go together")
    for url in settings.turn_urls:
        if not url.startswith(("turn:", "turns:")):
            raise ConfigError(f"GATEWAY_TURN_URLS: {url!r} is not a turn: or turns: URL")


def split_api_token(entry: str) -> tuple[str, frozenset[str] | None]:
    """A `GATEWAY_API_TOKENS` entry, `TOKEN` or `TOKEN:PROFILE+PROFILE`: the token, and its profiles (None = any)."""
    token, colon, names = entry.partition(":")
    return token, (frozenset(name for name in names.split("+") if name) if colon else None)
